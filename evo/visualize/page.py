"""The static parts of the HTML report: page skeleton, CSS and the vanilla JS that makes
the heatmap interactive. Nothing here loads anything from the network."""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{style}</style></head>
<body><h1>{title}</h1>
{body}
<script type="application/json" id="evo-data">{data}</script>
<script>{script}</script>
</body></html>
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1250px; color: #222; }
h1 { font-size: 1.4em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
section { margin-bottom: 2.5em; }
table.summary { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
table.summary th, table.summary td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
table.summary tr > th:first-child { background: #f6f6f6; }
img { max-width: 100%; display: block; margin: .8em 0; }
.explore { display: flex; gap: 1.2em; align-items: flex-start; flex-wrap: wrap; }
svg.heatmap { flex: none; font-size: 11px; }
svg.heatmap .frame { fill: #f0f0f0; stroke: #999; }
svg.heatmap .cell.empty { fill: #f0f0f0; stroke: #ddd; stroke-width: .5; }
svg.heatmap circle.cell.empty { fill: none; stroke: #bbb; }
svg.heatmap .cell.filled { stroke: #fff; stroke-width: .6; cursor: pointer; }
svg.heatmap .cell.filled:hover { stroke: #000; stroke-width: 2; }
svg.heatmap .cell.selected { stroke: #d00; stroke-width: 3; }
svg.heatmap .end { fill: #c22; font-size: 10px; }
.detail { flex: 1; min-width: 340px; max-width: 700px; font-size: .9em; }
.detail pre { background: #f7f7f7; border: 1px solid #e4e4e4; padding: .6em; overflow-x: auto;
              white-space: pre-wrap; font-size: .95em; }
.detail table td, .detail table th { padding: .1em .6em .1em 0; text-align: left; vertical-align: top; }
.detail button.parent { margin: 0 .3em .2em 0; cursor: pointer; }
.hint { color: #777; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("evo-data").textContent);
  const pinned = {};

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(table, key, value) {
    const tr = el("tr");
    tr.appendChild(el("th", key));
    const td = el("td");
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
    tr.appendChild(td);
    table.appendChild(tr);
  }

  function show(k, id) {
    const c = DATA[k].cands[id];
    const panel = document.getElementById("detail-" + k);
    panel.replaceChildren();
    if (!c) { panel.appendChild(el("p", "candidate #" + id + " is not in this report", "hint")); return; }
    const title = c.cell === null ? "ancestor #" + c.id : "elite #" + c.id + " (cell " + c.cell + ")";
    panel.appendChild(el("h4", title + (c.seed ? " — seed " + (c.name || "") : "")));
    const t = el("table");
    row(t, "fitness", c.fitness === null ? "-" : Number(c.fitness).toFixed(3));
    row(t, "operator", c.operator);
    row(t, "iteration", c.iteration);
    row(t, "generator version", c.version);
    if (c.cell === null) row(t, "verdict", c.verdict);
    const lineage = el("span");
    if (!c.parents.length) lineage.textContent = c.seed ? "(seed)" : "(none: written from scratch)";
    c.parents.forEach(function (p) {
      const parent = DATA[k].cands[p];
      const b = el("button", "#" + p + (parent && parent.seed ? " " + (parent.name || "seed") : ""), "parent");
      b.type = "button";
      b.addEventListener("click", function () { show(k, p); });
      lineage.appendChild(b);
    });
    row(t, "parents", lineage);
    panel.appendChild(t);
    panel.appendChild(el("h5", "Puzzle"));
    panel.appendChild(el("pre", c.puzzle, "puzzle"));
    if (c.solution) {
      panel.appendChild(el("h5", "Solution"));
      panel.appendChild(el("pre", c.solution, "solution"));
    }
  }

  document.querySelectorAll("svg.heatmap").forEach(function (svg) {
    const k = Number(svg.dataset.campaign);
    svg.addEventListener("mouseover", function (ev) {
      const cell = ev.target.closest(".filled");
      if (cell && pinned[k] === undefined) show(k, cell.dataset.cid);
    });
    svg.addEventListener("click", function (ev) {
      const cell = ev.target.closest(".filled");
      svg.querySelectorAll(".selected").forEach(function (s) { s.classList.remove("selected"); });
      if (!cell) { delete pinned[k]; return; }
      pinned[k] = cell.dataset.cid;
      cell.classList.add("selected");
      show(k, cell.dataset.cid);
    });
  });
})();
"""
