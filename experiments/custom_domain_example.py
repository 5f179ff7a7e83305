"""A complete custom domain in one file: arithmetic expressions with their values.

The LLM writes ``expression = value`` lines; the sandbox checks the value; longer
expressions with more distinct operators score higher. Use it without installing
anything (the folder holding this file must be importable, e.g. on PYTHONPATH):

    domain: custom_domain_example:ArithmeticDomain

or register it from your own package's pyproject.toml:

    [project.entry-points."evo.domains"]
    arithmetic = "my_package.arith:ArithmeticDomain"
"""

from __future__ import annotations

import re
from typing import Any

from evo.domain import Domain, EvalContext, ParseError, Score, Verification

SEEDS = ["2 + 3 * 4 = 14", "(7 - 2) * 6 = 30", "100 // 7 + 1 = 15", "2 ** 5 - 10 = 22",
         "(1 + 2) * (3 + 4) = 21", "81 % 10 * 3 = 3"]


class ArithmeticDomain(Domain):
    name = "arithmetic"
    preamble = "Arithmetic facts, one per line, each checked with Python:\n"
    open_prefix = ""  # the model continues the list directly
    stop = ["\n"]
    mutation_instructions = ["a longer expression", "an expression using different operators"]

    def __init__(self, max_len: int = 60) -> None:  # domain_options arrive as keywords
        self.max_len = max_len

    def seeds(self) -> list[dict[str, Any]]:
        return [self.parse(s) for s in SEEDS]

    def render(self, item: dict[str, Any]) -> str:  # one complete example in a prompt
        return f"{item['expr']} = {item['value']}\n"

    def parse(self, text: str) -> dict[str, Any]:  # malformed text -> ParseError, never a crash
        m = re.fullmatch(r"\s*([\d\s+\-*/%()]+?)\s*=\s*(-?\d+)\s*", text.split("\n")[0])
        if not m or len(m.group(1)) > self.max_len:
            raise ParseError("not 'expression = integer' (digits, + - * / % ( ) only)")
        return {"expr": " ".join(m.group(1).split()), "value": int(m.group(2))}

    def from_record(self, record: dict[str, Any]) -> str:
        return self.render(record)

    def verify(self, items: list[dict[str, Any]], sandbox: Any) -> list[Verification]:
        # Untrusted text only ever runs in the sandbox (2 ** 9 ** 9 would hang this process).
        verdicts = sandbox.run_many([("", it["expr"]) for it in items])
        out = []
        for it, v in zip(items, verdicts):
            if not v.ok:
                out.append(Verification("invalid", f"{v.status}: {v.error}"))
            elif v.value != it["value"]:
                out.append(Verification("invalid", f"evaluates to {v.value!r}, not {it['value']}"))
            elif re.fullmatch(r"-?\d+", it["expr"]):
                out.append(Verification("trivial", "a bare number"))
            else:
                out.append(Verification("valid"))
        return out

    def score(self, items: list[dict[str, Any]], ctx: EvalContext) -> list[Score]:
        out = []
        for it in items:
            ops = set(re.findall(r"\*\*|//|[+\-*/%]", it["expr"]))
            out.append(Score(fitness=len(ops) / 6 + min(len(it["expr"]), 40) / 80,
                             parts={"operators": len(ops), "length": len(it["expr"])}))
        return out

    def text(self, item: dict[str, Any]) -> str:  # what the descriptor embeds
        return item["expr"]


if __name__ == "__main__":  # a tiny campaign with a scripted stand-in generator
    import sys
    import tempfile

    from evo.campaign import Campaign
    from evo.config import CampaignConfig
    from evo.llm import ScriptedStandInLLM

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    cfg = CampaignConfig(domain="custom_domain_example:ArithmeticDomain", iterations=2,
                         prompts_per_iteration=4, max_seeds=4, archive={"dims": [4, 4]})
    fake = ScriptedStandInLLM(lambda prompt, j: f"({len(prompt) % 9} + {j}) * 3 = {(len(prompt) % 9 + j) * 3}")
    campaign = Campaign(cfg, tempfile.mkdtemp() + "/run", generator=fake)  # omit generator= for the real LLM
    print(campaign.run())
    campaign.close()
