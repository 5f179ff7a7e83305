"""Static plots of a campaign (matplotlib, Agg): ``evo plot DIR`` writes them to DIR/plots/.

- ``heatmap.png``: the archive (pyribs grid/CVT heatmap for 2-D measures, parallel axes
  for more; CVT archives over full embeddings are shown projected to 2-D);
- ``curves.png``: QD-score, coverage and max fitness per iteration;
- ``valid_rates.png``: share of valid candidates per operator and per generator version;
- ``fitness.png``: fitness histogram of valid candidates and of the elites.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from evo.rundir import PLOTS_DIR  # noqa: E402
from evo.visualize.view import CampaignView, axis_ends, load_campaign, project_2d, valid_rates  # noqa: E402

CMAP = "viridis"
Out = Path | IO[bytes]


def heatmap(directory: str | Path, out_png: str | Path) -> Path:
    """Draws the archive heatmap of the campaign in ``directory`` to ``out_png``."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_heatmap(load_campaign(directory), out)
    return out


def plot_campaign(directory: str | Path,
                  on_step: Callable[[str], None] | None = None) -> list[Path]:
    """Writes every plot of the campaign to ``directory/plots/``; returns their paths."""
    view = load_campaign(directory)
    out_dir = Path(directory) / PLOTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Callable[[CampaignView, Path], None]]] = [
        ("heatmap.png", draw_heatmap),
        ("curves.png", lambda v, p: draw_curves([v], p)),
        ("valid_rates.png", draw_valid_rates),
        ("fitness.png", draw_fitness),
    ]
    paths = []
    for name, draw in steps:
        if on_step:
            on_step(name)
        draw(view, out_dir / name)
        paths.append(out_dir / name)
    return paths


def _save(fig: plt.Figure, out: Out) -> None:
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _title(view: CampaignView) -> str:
    s = view.summary
    return (f"{view.label}: {s['num_elites']} elites in {view.num_cells} cells "
            f"({s['coverage']:.0%}), QD-score {s['qd_score']:.2f}")


def _fitness_range(view: CampaignView) -> tuple[float, float]:
    f = [e["fitness"] for e in view.elites] or [0.0]
    lo, hi = min(f), max(f)
    return (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo, hi)


def draw_heatmap(view: CampaignView, out: Out) -> None:
    from ribs.visualize import cvt_archive_heatmap, grid_archive_heatmap, parallel_axes_plot

    vmin, vmax = _fitness_range(view)
    cbar_kw = {"label": "fitness"}
    dim = view.measures.dim
    if view.kind == "pca" and dim == 2:
        fig, ax = plt.subplots(figsize=(7.5, 6.2))
        grid_archive_heatmap(view.archive.ribs, ax=ax, cmap=CMAP, vmin=vmin, vmax=vmax,
                             cbar_kwargs=cbar_kw)
        _label_pca_axes(view, ax)
    elif view.kind == "pca" or dim == 2:
        fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * dim), 5.5))
        if dim == 2:
            cvt_archive_heatmap(view.archive.ribs, ax=ax, cmap=CMAP, vmin=vmin, vmax=vmax,
                                cbar_kwargs=cbar_kw)
        elif len(view.archive.ribs):
            ends = axis_ends(view)
            order = [(d, f"PC{d + 1}\n{lo} … {hi}") for d, (lo, hi) in enumerate(ends)]
            parallel_axes_plot(view.archive.ribs, ax=ax, cmap=CMAP, vmin=vmin, vmax=vmax,
                               measure_order=order, cbar_kwargs=cbar_kw)
            ax.tick_params(axis="x", labelsize=7)
    else:
        fig, ax = plt.subplots(figsize=(7.5, 6.2))
        _cvt_projection(view, ax, vmin, vmax)
    ax.set_title(_title(view), fontsize=10)
    _save(fig, out)


def _label_pca_axes(view: CampaignView, ax: plt.Axes) -> None:
    """Names each end of both PCA axes with the seed puzzle that lies furthest out there."""
    (xlo, xhi), (ylo, yhi) = axis_ends(view)[:2]
    ax.set_facecolor("0.94")  # empty cells
    ax.set_xlabel("PCA axis 1 of puzzle embeddings (ends: the seed puzzles furthest out)",
                  fontsize=9, labelpad=16)
    ax.set_ylabel("PCA axis 2 of puzzle embeddings", fontsize=9, labelpad=22)
    kw = dict(xycoords="axes fraction", textcoords="offset points", fontsize=8, color="tab:red")
    ax.annotate(f"◀ {xlo}", (0, 0), xytext=(0, -20), ha="left", va="top", **kw)
    ax.annotate(f"{xhi} ▶", (1, 0), xytext=(0, -20), ha="right", va="top", **kw)
    ax.annotate(f"◀ {ylo}", (0, 0), xytext=(-38, 0), ha="right", va="bottom", rotation=90, **kw)
    ax.annotate(f"{yhi} ▶", (0, 1), xytext=(-38, 0), ha="right", va="top", rotation=90, **kw)


def _cvt_projection(view: CampaignView, ax: plt.Axes, vmin: float, vmax: float) -> None:
    cent = project_2d(view, view.measures.centroids)
    ax.scatter(cent[:, 0], cent[:, 1], s=60, facecolors="none", edgecolors="0.75",
               label="cell centroids (empty)")
    if view.elites:
        cells = [e["cell"] for e in view.elites]
        sc = ax.scatter(cent[cells, 0], cent[cells, 1], s=60, c=[e["fitness"] for e in view.elites],
                        cmap=CMAP, vmin=vmin, vmax=vmax, edgecolors="k", linewidths=0.5,
                        label="filled cells")
        plt.colorbar(sc, ax=ax, label="fitness")
    ax.set_xlabel("main axis 1 of the CVT centroids (embedding space)")
    ax.set_ylabel("main axis 2 of the CVT centroids")
    ax.legend(loc="best", fontsize=8)


def draw_curves(views: Sequence[CampaignView], out: Out) -> None:
    """QD-score, coverage and max fitness per iteration; several campaigns share the axes."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [("qd_score", "QD-score", 1.0), ("coverage", "coverage (%)", 100.0),
              ("obj_max", "max fitness", 1.0)]
    for view in views:
        for ax, (key, label, scale) in zip(axes, panels):
            ys = [i[key] * scale for i in view.iterations]
            xs = [i["iteration"] for i in view.iterations]
            ax.plot(xs, ys, marker="o", ms=3, label=view.label)
            ax.set_title(label, fontsize=10)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(views) > 1:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out)


def draw_valid_rates(view: CampaignView, out: Out) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key, label in ((axes[0], "operator", "operator"),
                           (axes[1], "generator_version", "generator version")):
        rows = valid_rates(view.generated, key)
        names = [r[0] for r in rows]
        rates = [100.0 * v / t for _, v, t in rows]
        bars = ax.bar(names, rates, color="tab:blue" if key == "operator" else "tab:green")
        for bar, (_, v, t) in zip(bars, rows):
            ax.annotate(f"{v}/{t}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, 110)
        ax.set_ylabel("valid (%)")
        ax.set_title(f"valid rate per {label}", fontsize=10)
        ax.set_xlabel(label)
        if not rows:
            ax.text(0.5, 0.5, "no generated candidates yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    _save(fig, out)


def draw_fitness(view: CampaignView, out: Out) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    valid = [c.fitness for c in view.generated if c.verdict == "valid" and c.fitness is not None]
    elite = [e["fitness"] for e in view.elites]
    lo, hi = min(valid + elite, default=0.0), max(valid + elite, default=1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 21)
    ax.hist(valid, bins=bins, alpha=0.6, label=f"valid generated candidates ({len(valid)})")
    ax.hist(elite, bins=bins, alpha=0.6, label=f"archive elites ({len(elite)})", histtype="step",
            linewidth=2, color="tab:red")
    ax.set_xlabel("fitness")
    ax.set_ylabel("count")
    ax.set_title("fitness distribution", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out)
