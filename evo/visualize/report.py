"""``evo report DIR [DIR_B]``: one self-contained HTML file (no network needed to open it).

The static plots are inlined as base64 PNGs, the elites and their ancestors as JSON, and
the archive as an inline SVG heatmap: hovering a cell shows that elite (puzzle, solution,
fitness, operator, lineage), clicking pins it, and clicking a parent walks the lineage.
Two campaigns get their curves drawn on shared axes and a side-by-side summary.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evo.rundir import REPORT_FILE
from evo.summary import summary_rows
from evo.visualize.page import PAGE, SCRIPT, STYLE
from evo.visualize.plot import (
    CMAP,
    _fitness_range,
    draw_curves,
    draw_fitness,
    draw_heatmap,
    draw_valid_rates,
)
from evo.visualize.view import CampaignView, axis_ends, load_campaign, project_2d

LINEAGE_DEPTH = 8  # ancestors of an elite carried in the page, in generations


def build_report(directories: Sequence[str | Path], out: str | Path | None = None,
                 on_step: Callable[[str], None] | None = None) -> Path:
    """Writes the report of one campaign (or a comparison of several); returns its path."""
    step = on_step or (lambda _msg: None)
    views = []
    for d in directories:
        step(f"loading {d}")
        views.append(load_campaign(d))
    out = Path(out) if out else Path(directories[0]) / REPORT_FILE
    sections, data = [], []
    if len(views) > 1:
        step("comparison curves")
        sections.append(_comparison(views))
    for k, view in enumerate(views):
        step(f"plots of {view.label}")
        sections.append(_campaign_section(view, k))
        data.append(_page_data(view))
    title = "evo report: " + " vs ".join(v.label for v in views)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    page = PAGE.format(title=html.escape(title), style=STYLE, script=SCRIPT, data=payload,
                       body="\n".join(sections))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _png(draw: Callable[..., None], *args: Any) -> str:
    buf = io.BytesIO()
    draw(*args, buf)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{html.escape(alt)}">'


def _summary_rows(view: CampaignView) -> list[tuple[str, str]]:
    s, cfg = view.summary, view.config
    archive = (f"grid {'×'.join(map(str, view.dims))} over PCA axes" if view.kind == "pca"
               else f"CVT, {view.num_cells} cells")
    return [
        ("directory", str(view.directory)),
        ("domain", cfg.domain),
        ("archive", archive),
        ("iterations", f"{s['iterations']} of {cfg.iterations}"),
        *summary_rows(s),
    ]


def _table(views: Sequence[CampaignView]) -> str:
    rows = [_summary_rows(v) for v in views]
    head = "".join(f"<th>{html.escape(v.label)}</th>" for v in views)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{html.escape(r[i][1])}</td>" for r in rows)
        + "</tr>" for i, (name, _) in enumerate(rows[0]))
    return f'<table class="summary"><tr><th></th>{head}</tr>{body}</table>'


def _comparison(views: Sequence[CampaignView]) -> str:
    return ('<section class="comparison"><h2>Comparison</h2>' + _table(views)
            + _img(_png(draw_curves, views), "QD-score, coverage and max fitness per iteration")
            + "</section>")


def _campaign_section(view: CampaignView, k: int) -> str:
    plots = [_png(draw_heatmap, view), _png(draw_curves, [view]), _png(draw_valid_rates, view),
             _png(draw_fitness, view)]
    alts = ["archive heatmap", "QD-score, coverage and max fitness per iteration",
            "valid rate per operator and generator version", "fitness histogram"]
    return (f'<section class="campaign" id="campaign-{k}"><h2>{html.escape(view.label)}</h2>'
            f"{_table([view])}<h3>Archive (hover a cell to see its elite, click to pin it)</h3>"
            f'<div class="explore">{svg_heatmap(view, k)}'
            f'<div class="detail" id="detail-{k}"><p class="hint">Hover or click a coloured cell.</p>'
            f"</div></div><h3>Plots</h3>"
            + "".join(_img(p, a) for p, a in zip(plots, alts)) + "</section>")


def _colour(view: CampaignView) -> Callable[[float], str]:
    import matplotlib
    from matplotlib.colors import to_hex

    cmap = matplotlib.colormaps[CMAP]
    lo, hi = _fitness_range(view)
    return lambda f: to_hex(cmap((f - lo) / (hi - lo)))


def svg_heatmap(view: CampaignView, k: int, size: int = 440) -> str:
    """The archive as inline SVG: one ``.cell.filled`` shape per elite, carrying its id."""
    pad, colour, shapes = 46, _colour(view), []
    ends = axis_ends(view) if view.kind == "pca" else [("", "")] * 2
    if view.kind == "pca" and view.measures.dim == 2:
        nx, ny = view.dims
        cw, ch = size / nx, size / ny
        filled = {e["cell"]: e for e in view.elites}
        for cell in range(view.num_cells):
            i, j = (int(v) for v in view.archive.ribs.int_to_grid_index([cell])[0])
            x, y = pad + i * cw, pad + (ny - 1 - j) * ch
            e = filled.get(cell)
            attrs = (f'class="cell filled" data-cid="{e["candidate_id"]}" fill="{colour(e["fitness"])}"'
                     if e else 'class="cell empty"')
            shapes.append(f'<rect {attrs} data-cell="{cell}" x="{x:.1f}" y="{y:.1f}" '
                          f'width="{cw:.1f}" height="{ch:.1f}"/>')
    else:
        empties = view.measures.centroids if view.kind == "cvt" else None
        pts_e = [view.measures.centroids[e["cell"]] if view.kind == "cvt" else e["measures"]
                 for e in view.elites]
        allp = project_2d(view, list(pts_e) + (list(empties) if empties is not None else []))
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        span = (hi - lo) + (hi - lo == 0)
        xy = pad + 10 + (allp - lo) / span * (size - 20)
        xy[:, 1] = 2 * pad + size - xy[:, 1]
        if empties is not None:
            used = {e["cell"] for e in view.elites}
            for cell, (x, y) in enumerate(xy[len(pts_e):]):
                if cell not in used:
                    shapes.append(f'<circle class="cell empty" data-cell="{cell}" cx="{x:.1f}" '
                                  f'cy="{y:.1f}" r="7"/>')
        for e, (x, y) in zip(view.elites, xy[: len(pts_e)]):
            shapes.append(f'<circle class="cell filled" data-cid="{e["candidate_id"]}" '
                          f'data-cell="{e["cell"]}" fill="{colour(e["fitness"])}" cx="{x:.1f}" '
                          f'cy="{y:.1f}" r="7"/>')
    w = size + 2 * pad
    axis_x = "PCA axis 1" if view.kind == "pca" else "centroid axis 1"
    axis_y = "PCA axis 2" if view.kind == "pca" else "centroid axis 2"
    (xlo, xhi), (ylo, yhi) = (ends + [("", "")] * 2)[:2]
    esc = html.escape
    labels = (f'<text x="{pad}" y="{w - 28}" class="end">◀ {esc(xlo)}</text>'
              f'<text x="{pad + size}" y="{w - 28}" class="end" text-anchor="end">{esc(xhi)} ▶</text>'
              f'<text x="{pad + size / 2}" y="{w - 8}" text-anchor="middle">{axis_x}</text>'
              f'<text transform="translate({pad - 10},{pad + size}) rotate(-90)" class="end">◀ {esc(ylo)}</text>'
              f'<text transform="translate({pad - 10},{pad}) rotate(-90)" class="end" '
              f'text-anchor="end">{esc(yhi)} ▶</text>'
              f'<text transform="translate({pad - 30},{pad + size / 2}) rotate(-90)" '
              f'text-anchor="middle">{axis_y}</text>')
    return (f'<svg class="heatmap" data-campaign="{k}" width="{w}" height="{w}" '
            f'viewBox="0 0 {w} {w}" role="img" aria-label="archive heatmap">'
            f'<rect class="frame" x="{pad}" y="{pad}" width="{size}" height="{size}"/>'
            + "".join(shapes) + labels + "</svg>")


def _page_data(view: CampaignView) -> dict[str, Any]:
    """Elites and their ancestors (up to LINEAGE_DEPTH generations), keyed by candidate id."""
    by_id = {c.id: c for c in view.seeds + view.generated}
    elite_cells = {e["candidate_id"]: e["cell"] for e in view.elites}
    wanted, frontier = set(elite_cells), set(elite_cells)
    for _ in range(LINEAGE_DEPTH):
        frontier = {p for cid in frontier for p in by_id[cid].parents if p in by_id} - wanted
        wanted |= frontier
    cands = {}
    for cid in sorted(wanted):
        c = by_id[cid]
        cands[cid] = {"id": cid, "name": view.short_name(c) if c.is_seed else None, "seed": c.is_seed,
                      "fitness": c.fitness, "operator": c.operator, "parents": c.parents,
                      "iteration": c.iteration, "version": c.generator_version, "verdict": c.verdict,
                      "cell": elite_cells.get(cid), **view.texts(c.item)}
    return {"label": view.label, "cands": cands}
