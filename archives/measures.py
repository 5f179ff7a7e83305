"""Measures from embeddings, fitted once on the seeds and then frozen.

Grid archives use PCA to as many axes as the grid has, with bounds taken from the
seed projections widened by a margin; CVT archives keep the full embedding and take
their centroids from k-means on the seed embeddings. Fitted state is saved next to
the campaign so that a resumed or rebuilt archive uses exactly the same space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA


class Measures:
    """Maps embeddings to archive measures (``transform``) within ``ranges``."""

    def __init__(self, kind: str, ranges: np.ndarray, mean: np.ndarray | None = None,
                 components: np.ndarray | None = None, centroids: np.ndarray | None = None) -> None:
        self.kind = kind
        self.ranges = np.asarray(ranges, dtype=np.float64)
        self.mean = mean
        self.components = components
        self.centroids = centroids

    @classmethod
    def fit_pca(cls, seed_embeddings: np.ndarray, dims: int, margin: float) -> Measures:
        pca = PCA(n_components=dims, random_state=0).fit(seed_embeddings)
        proj = pca.transform(seed_embeddings)
        lo, hi = proj.min(axis=0), proj.max(axis=0)
        pad = (hi - lo) * margin
        return cls("pca", np.stack([lo - pad, hi + pad], axis=1), pca.mean_, pca.components_)

    @classmethod
    def fit_cvt(cls, seed_embeddings: np.ndarray, cells: int, seed: int = 0) -> Measures:
        km = KMeans(n_clusters=cells, n_init=4, random_state=seed).fit(seed_embeddings)
        dim = seed_embeddings.shape[1]
        # Unit-norm embeddings lie in [-1, 1] on every axis.
        return cls("cvt", np.tile([-1.0, 1.0], (dim, 1)), centroids=km.cluster_centers_)

    @property
    def dim(self) -> int:
        return len(self.ranges)

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        if self.kind == "pca":
            return (embeddings - self.mean) @ self.components.T
        return np.asarray(embeddings, dtype=np.float64)

    def on_border(self, measures: np.ndarray) -> np.ndarray:
        """True where a point falls outside the bounds (pyribs clips it into an edge cell)."""
        m = np.atleast_2d(measures)
        return ((m < self.ranges[:, 0]) | (m > self.ranges[:, 1])).any(axis=1)

    def save(self, path: Path) -> None:
        arrays = {k: v for k, v in {"mean": self.mean, "components": self.components,
                                    "centroids": self.centroids}.items() if v is not None}
        with open(path, "wb") as fh:
            np.savez(fh, kind=np.array(self.kind), ranges=self.ranges, **arrays)

    @classmethod
    def load(cls, path: Path) -> Measures:
        with np.load(path) as z:
            get = lambda k: z[k] if k in z.files else None  # noqa: E731
            return cls(str(z["kind"]), z["ranges"], get("mean"), get("components"), get("centroids"))
