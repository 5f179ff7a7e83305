"""Shared by the adversarial corpus tests: read a corpus file, and verify its items the
way ``evo verify`` does (a record that does not parse is an invalid verdict for it)."""

import json
from pathlib import Path

from evo.domain import Domain, ParseError, Verification
from evo.sandbox import Sandbox, SandboxLimits

CORPUS_DIR = Path(__file__).parent / "adversarial"


def load_corpus(name: str) -> list[dict]:
    """The cases of ``tests/adversarial/NAME.jsonl``, one JSON object per line."""
    text = (CORPUS_DIR / f"{name}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def corpus_verdicts(domain: Domain, corpus: list[dict], timeout_s: float = 3.0) -> dict[str, Verification]:
    """Each case's verdict by id: parsed from its record, then verified in one sandbox."""
    out, items = {}, {}
    for c in corpus:
        try:
            items[c["id"]] = domain.parse(domain.from_record(c))
        except ParseError as exc:
            out[c["id"]] = Verification("invalid", f"ParseError: {exc}")
    with Sandbox(SandboxLimits(timeout_s=timeout_s)) as sandbox:
        out.update(zip(items, domain.verify(list(items.values()), sandbox)))
    return out
