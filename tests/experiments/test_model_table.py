"""experiments/model_table.py: the table says "not run" for a part that has no row (never a
blank or a zero that reads as a measurement), and the token counter counts every sample."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]

import model_table  # noqa: E402

ROW = {"model": "qwen2.5-coder-1.5b", "part": "passk", "style": "chat_free", "puzzles": 30, "n": 10,
       "pass@1": 0.07, "pass@1_ci": [0.02, 0.12], "pass@10": 0.2, "pass@10_ci": [0.07, 0.33], "solved": 6,
       "tok_s": 68.0, "wall_s": 1.0, "cpu": "Xeon", "flags": "avx2", "load": "0.1", "date": "2026-12-02"}


def test_a_part_without_a_row_reads_not_run():
    md = model_table.table([ROW], 10)
    line = next(x for x in md.splitlines() if x.startswith("| qwen2.5-coder-1.5b"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1].startswith("0.07 [0.02, 0.12]") and "6 solved" in cells[2] and cells[3] == "68"
    assert cells[4:] == ["not run"] * 5
    assert "smollm2-135m" not in md  # a model with no row at all is not listed


def test_counting_llm_counts_samples_and_falls_back_to_the_tokenizer():
    rows = [[SimpleNamespace(text="a b c", num_tokens=3), SimpleNamespace(text="x y", num_tokens=0)]]
    inner = SimpleNamespace(generate=lambda prompts, params: rows, tokenizer="tok")
    llm = model_table.CountingLLM(inner, lambda text: len(text.split()))
    assert llm.generate(["p"], None) is rows
    assert llm.tokens == 5 and llm.seconds >= 0 and llm.tokenizer == "tok"


def test_the_solve_style_is_the_one_chosen_on_train_families(tmp_path, monkeypatch):
    monkeypatch.setattr(model_table, "RESULTS", tmp_path)
    assert model_table.solve_style("m") == "completion"  # nothing chosen yet
    (tmp_path / "solve_prompt_m.json").write_text('{"chosen": "chat_free"}')
    assert model_table.solve_style("m") == "chat_free"
