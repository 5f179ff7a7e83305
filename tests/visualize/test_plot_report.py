"""Plots and the HTML report from a small recorded campaign, the report in a real headless
browser (Debian chromium driven by Playwright), and the CLI's errors on bad input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archives import CampaignStore
from evo.cli import app
from evo.errors import EvoError
from evo.visualize.plot import heatmap, plot_campaign
from evo.visualize.report import build_report
from evo.visualize.view import load_campaign

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_campaign_writes_real_images(small_campaign: Path) -> None:
    paths = plot_campaign(small_campaign)
    assert {p.name for p in paths} == {"heatmap.png", "curves.png", "valid_rates.png", "fitness.png"}
    for p in paths:
        assert p.parent == small_campaign / "plots"
        w, h = _png_size(p)
        assert w >= 300 and h >= 200, (p, w, h)
        assert p.stat().st_size > 10_000, p  # a drawn figure, not an empty canvas


def test_heatmap_public_function(small_campaign: Path, tmp_path: Path) -> None:
    out = heatmap(small_campaign, tmp_path / "card" / "archive.png")
    assert out == tmp_path / "card" / "archive.png"
    assert _png_size(out)[0] >= 300


def test_axis_ends_are_named_after_seeds(small_campaign: Path) -> None:
    from evo.visualize.view import axis_ends

    view = load_campaign(small_campaign)
    seed_names = {s.item["name"] for s in view.seeds}
    ends = axis_ends(view)
    assert len(ends) == 2
    assert all(lo in seed_names and hi in seed_names and lo != hi for lo, hi in ends)


def test_report_is_self_contained(small_campaign: Path, tmp_path: Path) -> None:
    out = build_report([small_campaign], tmp_path / "report.html")
    page = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page and "@import" not in page
    assert page.count('src="data:image/png;base64,') == 4
    view = load_campaign(small_campaign)
    assert page.count('class="cell filled"') == len(view.archive)


def test_report_compares_two_campaigns(small_campaign: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(small_campaign, other, ignore=shutil.ignore_patterns("plots", "*.html"))
    out = build_report([small_campaign, other], tmp_path / "cmp.html")
    page = out.read_text()
    assert "Comparison" in page
    assert page.count('<svg class="heatmap"') == 2
    assert page.count('src="data:image/png;base64,') == 1 + 2 * 4  # shared curves + 4 each


def test_cli_plot_and_report(small_campaign: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["plot", str(small_campaign)])
    assert res.exit_code == 0, res.output
    assert "heatmap.png" in res.output
    res = runner.invoke(app, ["report", str(small_campaign), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").stat().st_size > 10_000
    res = runner.invoke(app, ["status", str(small_campaign), "--follow", "--interval", "0.1"])
    assert res.exit_code == 0, res.output  # finished campaign: renders once and returns
    assert "iteration 3/3" in res.output


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EvoError, match="not a campaign directory"):
        plot_campaign(tmp_path)
    with pytest.raises(EvoError, match="not a campaign directory"):
        build_report([tmp_path / "missing"])
    # a campaign whose store has no iterations yet
    (tmp_path / "empty").mkdir()
    CampaignStore(tmp_path / "empty" / "campaign.sqlite").close()
    (tmp_path / "empty" / "measures.npz").write_bytes(b"")
    with pytest.raises(EvoError, match="no recorded iterations"):
        plot_campaign(tmp_path / "empty")


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    for cmd in (["plot", str(tmp_path)], ["report", str(tmp_path)]):
        res = subprocess.run([sys.executable, "-c", "from evo.cli import main; main()", *cmd],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res
        assert res.stderr.strip().startswith("error:") and "not a campaign directory" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is missing (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


def test_report_in_headless_browser(small_campaign: Path, tmp_path: Path, browser) -> None:
    out = build_report([small_campaign], tmp_path / "report.html")
    view = load_campaign(small_campaign)
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(f"network request: {r.url}")
            if not r.url.startswith(("file:", "data:")) else None)
    page.goto(out.as_uri())
    page.wait_for_load_state("load")

    filled = page.locator("svg.heatmap .cell.filled")
    assert filled.count() == len(view.archive) == len(view.elites)

    # click an evolved elite (not a seed): its puzzle, solution and parents appear
    evolved = next(e for e in view.elites if not e["candidate"].is_seed)
    cand = evolved["candidate"]
    page.locator(f'svg.heatmap .cell.filled[data-cid="{cand.id}"]').click()
    detail = page.locator("#detail-0")
    assert detail.locator("pre.puzzle").inner_text().strip() == cand.item["f"].strip()
    assert detail.locator("pre.solution").inner_text().strip() == cand.item["g"].strip()
    text = detail.inner_text()
    assert f"elite #{cand.id}" in text and cand.operator in text
    for p in cand.parents:
        assert f"#{p}" in text
    # walking the lineage: clicking a parent shows the parent's puzzle
    by_id = {c.id: c for c in view.seeds + view.generated}
    if cand.parents:
        detail.locator("button.parent").first.click()
        first = by_id[cand.parents[0]]
        assert detail.locator("pre.puzzle").inner_text().strip() == first.item["f"].strip()
    assert errors == []
    page.close()
