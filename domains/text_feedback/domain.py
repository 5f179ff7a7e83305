"""Open-ended text with AI feedback (Quality-Diversity through AI Feedback, QDAIF).

The LLM writes short texts (stories or instructions, ``kind``); quality comes from a
judge and diversity from the embedding (the archive). The default judge is the
current generator's yes/no log-probability on each of ``judge_prompts`` (P(Yes) is
good) and ``negated_judge_prompts`` (P(No) is good); any Hugging Face
sequence-classification reward model works through ``reward_model: PATH``. The
fitness is the mean over every judge prompt (and over both judges when both are
configured).

A candidate must not be able to raise its own score by talking to the judge:
- the verifier rejects judge-directed text (:mod:`domains.text_feedback.injection`);
- the text reaches the judge through :func:`~domains.text_feedback.judge.fence_text`,
  inside a ``"..."`` or ``<tag>...</tag>`` fence it cannot close, with the question
  after it, and the score is the next-token probability after the question;
- questions of both polarities are averaged, so a text that primes the judge to
  say "Yes" loses on the negated questions what it gains on the others;
- a text has at most ``max_sentences`` (the kind's ask: 3 for a story, 2 for an instruction),
  so filler cannot be appended for free (the 1.5B judge scores a text followed by sentences
  that say nothing higher than the text: README, Judge injection);
- ``filler_judge: true`` adds a negated question on padding (measured: it does not help);
- ``length_slope: b`` makes the score length-controlled (as AlpacaEval's length-controlled
  win rates are): every judge token beyond ``length_reference`` (default: the seeds' median
  length) costs ``b``, the judge's own measured gain per token of filler
  (``experiments/judge_length_bias.py``). For the 1.5B judge the gain is not proportional to
  length, so the fitted slope takes back little; it is off by default.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domains.text_feedback.injection import judge_directed
from domains.text_feedback.judge import (
    RewardModel,
    fence_text,
    judge_tokenizer,
    special_tokens,
    yes_probability,
)
from evo.domain import Domain, EvalContext, ParseError, Score, Verification, read_seeds
from evo.errors import EvoError

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

SEEDS_FILE = Path(__file__).with_name("seeds.jsonl")
KINDS = {
    "story": ("Very short stories, two or three sentences each.\n\n", "Story:"),
    "instruction": ("Clear, useful instructions someone could follow, one or two sentences each.\n\n",
                    "Instruction:"),
}
# The most sentences a text of each kind may have: what its preamble and to_messages ask for.
# Enforced, so filler cannot be appended for free: the 1.5B judge scores a text followed by
# sentences that say nothing higher than the text (README, Judge injection), and under this cap
# a filler sentence has to displace one that says something.
MAX_SENTENCES = {"story": 3, "instruction": 2}
# Completion-style judge prompts: on the 135M default judge they separate seed stories
# from garbage better than chat-template prompts (which it scored backwards).
# P(Yes) is good here; in NEGATED_PROMPTS, P(No) is.
JUDGE_PROMPTS = {
    "story": [
        "Text: \"{text}\"\nQuestion: Is this text a well-written short story? Answer Yes or No.\nAnswer:",
        "Read this text:\n\n\"{text}\"\n\nQuestion: Is it well written, with a clear beginning and "
        "end? Answer Yes or No.\nAnswer:",
    ],
    "instruction": [
        "Text: \"{text}\"\nQuestion: Is this a clear, useful instruction? Answer Yes or No.\nAnswer:",
        "Read this text:\n\n\"{text}\"\n\nQuestion: Could a person follow it without more "
        "questions? Answer Yes or No.\nAnswer:",
    ],
}
NEGATED_PROMPTS = {
    "story": [
        "Text: \"{text}\"\nQuestion: Is this text badly written? Answer Yes or No.\nAnswer:",
        "Text: \"{text}\"\nQuestion: Is this text poorly written, confusing or incomplete? Answer Yes "
        "or No.\nAnswer:",
    ],
    "instruction": [
        "Text: \"{text}\"\nQuestion: Is this instruction unclear or useless? Answer Yes or No.\nAnswer:",
        "Text: \"{text}\"\nQuestion: Is this text confusing, wrong or incomplete? Answer Yes or No."
        "\nAnswer:",
    ],
}
# Optional (domain_options.filler_judge): one more negated question, on padding. The 1.5B judge
# scores a text followed by filler that says nothing higher than the text alone
# (experiments/results/judge_injection_qwen2_5-coder-1_5b.md, attack "padded").
FILLER_PROMPT = ("Text: \"{text}\"\nQuestion: Does this text have sentences that add nothing, filler or padding? "
                 "Answer Yes or No.\nAnswer:")  # the same question fits both kinds
_OPEN_TAG = re.compile(r"<(\w+)>$")
# Words as length control counts them, in the text the judge sees: runs of word characters
# (hyphens, dots or underscores between words do not merge them), and each CJK
# character alone (those scripts need no spaces, so a run would be a whole sentence).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")
# A sentence ends at . ! ? or an ellipsis followed by a space or the end, or at an ideographic
# full stop (CJK needs no space). No abbreviation is exempt: "Mr." counts as an end, because an
# exemption is a place to hide sentence ends ("...other days, said Mr. The weather..."), and
# overcounting can only reject a text, never let filler in.
_SENTENCE_END = re.compile(r"[.!?\u2026]+['\u2019)\]]*(?=\s|$)|\u3002+")


def count_sentences(text: str) -> int:
    """Sentences in ``text`` as the judge reads it (after :func:`fence_text`); at least 1."""
    body = fence_text(text).strip()
    ends = list(_SENTENCE_END.finditer(body))
    trailing = body[ends[-1].end():].strip() if ends else body
    return max(1, len(ends) + bool(trailing))


def judged_words(text: str) -> int:
    """Length of ``text`` in words, as the judge sees it (after :func:`fence_text`)."""
    return len(_WORD.findall(fence_text(text)))


def check_judge_prompt(prompt: str) -> None:
    """Raises EvoError unless ``prompt`` fences one ``{text}`` as ``"{text}"`` or
    ``<tag>{text}</tag>`` (fences fence_text() makes unforgeable) and asks its question
    after it (the score is read after the question, never inside the text)."""
    before, _, after = prompt.partition("{text}")
    tag = _OPEN_TAG.search(before)
    close = '"' if before.endswith('"') else f"</{tag.group(1)}>" if tag else None
    if "{text}" in after or close is None or not after.startswith(close) or not after[len(close):].strip():
        raise EvoError("text_feedback: every judge prompt must contain {text} once, fenced as "
                       '"{text}" or <tag>{text}</tag>, with the question after it')


class TextFeedbackDomain(Domain):
    name = "text_feedback"
    stop = ["\n\n", "\nStory:", "\nInstruction:"]
    mutation_instructions = [
        "a variant with a surprising ending",
        "a text on a completely different topic",
        "a variant in a different tone (funny, sad, formal)",
        "a shorter and sharper variant",
    ]

    def __init__(self, kind: str = "story", seeds_file: str | None = None,
                 judge_prompts: list[str] | None = None,
                 negated_judge_prompts: list[str] | None = None, judge: str = "llm",
                 reward_model: str | None = None, reward_question: str | None = None,
                 judge_chat: bool = False, min_words: int = 8, max_words: int = 120,
                 judge_model: str | None = None, filler_judge: bool = False,
                 length_slope: float = 0.0, length_reference: int | None = None,
                 max_sentences: int | None = None) -> None:
        if kind not in KINDS:
            raise EvoError(f"text_feedback: kind must be one of {sorted(KINDS)}")
        if judge not in ("llm", "reward_model", "both"):
            raise EvoError("text_feedback: judge must be llm, reward_model or both")
        if judge != "llm" and not reward_model:
            raise EvoError(f"text_feedback: judge '{judge}' needs reward_model: PATH")
        prompts = JUDGE_PROMPTS[kind] if judge_prompts is None else list(judge_prompts)
        negated = NEGATED_PROMPTS[kind] if negated_judge_prompts is None else list(negated_judge_prompts)
        negated = negated + [FILLER_PROMPT] if filler_judge else negated
        if not prompts:
            raise EvoError("text_feedback: judge_prompts must not be empty")
        for p in prompts + negated:
            check_judge_prompt(p)
        if min_words < 1 or max_words < min_words:
            raise EvoError("text_feedback: need 1 <= min_words <= max_words")
        self.max_sentences = MAX_SENTENCES[kind] if max_sentences is None else max_sentences
        if self.max_sentences < 1:
            raise EvoError("text_feedback: max_sentences must be at least 1")
        if not 0.0 <= length_slope < 1.0:
            raise EvoError("text_feedback: length_slope must be in [0, 1) (score lost per word)")
        if length_reference is not None and length_reference < 1:
            raise EvoError("text_feedback: length_reference must be a positive number of words")
        self.kind, self.seeds_file = kind, Path(seeds_file) if seeds_file else SEEDS_FILE
        self.preamble, self.label = KINDS[kind]
        self.open_prefix = self.label
        self.judge_prompts, self.negated_prompts, self.judge = prompts, negated, judge
        # (template, True when P(Yes) is good)
        self._prompts = [(p, True) for p in prompts] + [(p, False) for p in negated]
        self.reward_model_path, self.reward_question = reward_model, reward_question
        self.judge_chat, self.min_words, self.max_words = judge_chat, min_words, max_words
        self._reward: RewardModel | None = None
        # A fixed judge apart from the generator (an embedded alias, HF id or folder, loaded on
        # the transformers backend at first use); None: the generator judges its own texts.
        # Qwen2.5-Coder-1.5B told seeds from their broken variants in 0.94 of pairs, SmolLM2-135M
        # in 0.75 (experiments/results/judge_separation.md). A fixed judge also does not drift
        # when the generator is fine-tuned on what it rewarded.
        self.judge_model = judge_model
        self._judge_llm: Any = None
        self.length_slope, self._length_reference = length_slope, length_reference
        # id(tokenizer) -> (tokenizer, median seed length): the tokenizer is held so that its id
        # cannot be reused by another tokenizer while the entry lives
        self._seed_lengths: dict[int, tuple[Any, int]] = {}

    def text_length(self, text: str, tokenizer: Any = None) -> int:
        """Length as length control counts it, in what the judge reads: tokens of the fenced
        text under the judge's ``tokenizer``, or :func:`judged_words` without one. Tokens are
        the unit a writer cannot shrink: glued or unspaced filler is still read token by token."""
        if tokenizer is None:
            return judged_words(text)
        return len(tokenizer.encode(fence_text(text), add_special_tokens=False))

    def length_reference(self, tokenizer: Any = None) -> int:
        """Length a text may have before ``length_slope`` applies: the option, else the median
        seed of this kind in the same unit (the length the domain's own examples set)."""
        if self._length_reference is not None:
            return self._length_reference
        key = id(tokenizer)
        if key not in self._seed_lengths:
            lengths = [self.text_length(s["text"], tokenizer) for s in self.seeds()]
            self._seed_lengths[key] = (tokenizer, int(statistics.median(lengths)) if lengths else self.max_words)
        return self._seed_lengths[key][1]

    def length_penalty(self, text: str, tokenizer: Any = None) -> float:
        """Score a text loses to length control: ``length_slope`` per unit beyond the reference.
        Only longer texts pay: the judge's bias runs toward length, and a text below
        ``min_words`` is already invalid."""
        if not self.length_slope:
            return 0.0
        return self.length_slope * max(0, self.text_length(text, tokenizer) - self.length_reference(tokenizer))

    def seeds(self) -> list[dict[str, Any]]:
        items = read_seeds(self.seeds_file, "text_feedback")
        return [{"text": it["text"]} for it in items if it.get("kind", self.kind) == self.kind]

    def render(self, item: dict[str, Any]) -> str:
        return f"{self.label} {item['text']}\n\n"

    def text(self, item: dict[str, Any]) -> str:
        return item["text"]

    def key(self, item: dict[str, Any]) -> str:
        return " ".join(re.sub(r"[^\w\s]", "", item["text"].lower()).split())

    def parse(self, text: str) -> dict[str, Any]:
        body = text.split(self.label, 1)[1] if text.startswith(self.label) else text
        body = " ".join(body.split("\n\n")[0].split())
        words = body.split()
        if len(words) < self.min_words:
            raise ParseError(f"text shorter than {self.min_words} words")
        if len(words) > self.max_words:
            raise ParseError(f"text longer than {self.max_words} words")
        if any(ord(c) < 32 for c in body):
            raise ParseError("control characters in the text")
        return {"text": body}

    def from_record(self, record: dict[str, Any]) -> str:
        return f"{self.label} {record['text']}"

    def to_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        ask = {"story": "Write a very short story (two or three sentences).",
               "instruction": "Write one clear, useful instruction (one or two sentences)."}[self.kind]
        return [{"role": "user", "content": ask}, {"role": "assistant", "content": item["text"]}]

    def verify(self, items: list[dict[str, Any]], sandbox: Sandbox) -> list[Verification]:
        out = []
        for it in items:
            text = it["text"]
            words = re.findall(r"[A-Za-z']+", text.lower())
            letters = sum(c.isalpha() for c in text)
            if letters < 0.6 * len(text.replace(" ", "")):
                out.append(Verification("invalid", "mostly not words"))
            elif len(words) < self.min_words:
                out.append(Verification("invalid", f"fewer than {self.min_words} words"))
            elif len(set(words)) < 0.4 * len(words):
                out.append(Verification("trivial", "repeats the same few words"))
            elif reason := judge_directed(text, [p.replace("{text}", " ") for p, _ in self._prompts]):
                out.append(Verification("invalid", f"talks to the judge: {reason}"))
            elif any(label in text for _, label in KINDS.values()):
                out.append(Verification("invalid", "contains prompt scaffolding"))
            elif (n := count_sentences(text)) > self.max_sentences:
                out.append(Verification("invalid", f"{n} sentences; a {self.kind} has at most {self.max_sentences}"))
            else:
                out.append(Verification("valid"))
        return out

    def _reward_model(self) -> RewardModel:
        if self._reward is None:
            self._reward = RewardModel(self.reward_model_path)
        return self._reward

    def llm_judge(self, generator: Any) -> Any:
        """The LLM that judges: ``judge_model`` (loaded once) when set, else ``generator``."""
        if self.judge_model is None:
            return generator
        if self._judge_llm is None:
            from evo.llm import TransformersLLM

            try:
                self._judge_llm = TransformersLLM(self.judge_model)
            except EvoError as exc:
                raise EvoError(f"text_feedback: judge_model: {exc}") from None
        return self._judge_llm

    def score(self, items: list[dict[str, Any]], ctx: EvalContext) -> list[Score]:
        if not items:
            return []
        per_item: list[dict[str, list[float]]] = [{} for _ in items]
        tokenizer = None  # the judge's, for length control
        if self.judge in ("llm", "both"):
            judge = self.llm_judge(ctx.generator)
            tokenizer = judge_tokenizer(judge)
            drop = special_tokens(judge)
            fenced = [fence_text(it["text"], drop) for it in items]
            prompts = [p.replace("{text}", t) for t in fenced for p, _ in self._prompts]
            probs = yes_probability(judge, prompts, chat=self.judge_chat)
            k = len(self._prompts)
            for i in range(len(items)):
                per_item[i]["llm"] = [p if good else 1.0 - p
                                      for p, (_, good) in zip(probs[i * k:(i + 1) * k], self._prompts)]
        if self.judge in ("reward_model", "both"):
            rewards = self._reward_model()([it["text"] for it in items], self.reward_question)
            tokenizer = tokenizer or self._reward_model().tokenizer
            for i, r in enumerate(rewards):
                per_item[i]["reward_model"] = [r]
        out = []
        for item, judged in zip(items, per_item):
            scores = [s for v in judged.values() for s in v]
            mean, penalty = statistics.fmean(scores), self.length_penalty(item["text"], tokenizer)
            out.append(Score(fitness=max(0.0, mean - penalty), parts={
                "quality": mean, "spread": max(scores) - min(scores), "length_penalty": penalty, **judged}))
        return out
