"""Judges for AI feedback: an LLM's yes/no log-probability (as in Quality-Diversity
through AI Feedback) or a Hugging Face sequence-classification reward model.

A candidate text reaches a judge only through :func:`fence_text`: the judge sees the
text on one line, with nothing in it that can close the fence around it (double
quotes, angle brackets), start a chat turn (special tokens of any tokenizer) or
look like the prompt's own ``Question:``/``Answer:`` labels. The score is read from
the judge's next-token probabilities at one fixed position, after the question,
never from text the judge writes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from evo.errors import EvoError

YES = ("Yes", " Yes", "yes", " yes", "YES")
NO = ("No", " No", "no", " no", "NO")


# Invisible and layout characters: zero-width, bidi overrides, soft hyphen, BOM, C0/C1 controls.
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# Special-token look-alikes of common tokenizers: <|im_start|>, <s>, </s>, <file_sep>,
# [INST], [SEP], <<SYS>>. Removed until none is left (nesting cannot rebuild one).
_SPECIAL = re.compile(r"<\|[^<>]{0,60}?\|>|</?[A-Za-z_][\w:.\-]{0,40}>|\[/?[A-Z][A-Z_]{1,15}\]|<</?[A-Z]{2,10}>>")
_DOUBLE_QUOTES = re.compile(r"[\"\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033\u301d\u301e]")
# The labels judge prompts are built from; inside the fence they lose their colon.
_LABELS = re.compile(r"\b(question|answer|text|story|instruction|system|assistant|user|human|judge)(\s*):",
                     re.IGNORECASE)


def fence_text(text: str, tokens: Iterable[str] = ()) -> str:
    """The candidate as a judge sees it: one line that cannot end the fence it sits in.

    NFKC first (a full-width ``＂`` or ``｜`` becomes the ASCII one it imitates), then
    invisible characters go, special tokens (the judge tokenizer's own and the common
    look-alikes) are removed until none is left, double quotes become ``'``, angle
    brackets become ``‹ ›``, prompt labels lose their colon, whitespace becomes single
    spaces. Deterministic: the same text always gets the same prompt (and score).
    """
    s = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    drop = sorted({t for t in tokens if t and t.strip()}, key=len, reverse=True)
    previous = None
    while previous != s:
        previous = s
        for tok in drop:
            s = s.replace(tok, " ")
        s = _SPECIAL.sub(" ", s)
    s = _DOUBLE_QUOTES.sub("'", s).replace("<", "\u2039").replace(">", "\u203a")
    s = _LABELS.sub(lambda m: f"{m.group(1)} -", s)
    return " ".join(s.split())


def judge_tokenizer(llm: Any) -> Any:
    """The judge's tokenizer (seen through wrappers), or None for a backend without one."""
    return getattr(_unwrap(llm), "tokenizer", None)


def special_tokens(llm: Any) -> list[str]:
    """Every special or added token of the judge's tokenizer (empty when it has none)."""
    tokenizer = judge_tokenizer(llm)
    if tokenizer is None:
        return []
    found = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        found.add(getattr(added, "content", str(added)))
    return sorted(found)


def _unwrap(llm: Any) -> Any:
    """Sees through wrappers such as evo.llm.timing.TimedLLM (which keep the model as ``.llm``)."""
    seen = 0
    while not hasattr(llm, "yes_probability") and not hasattr(llm, "model") and hasattr(llm, "llm") and seen < 8:
        llm, seen = llm.llm, seen + 1
    return llm


def _token_ids(tokenizer: Any, words: tuple[str, ...]) -> list[int]:
    ids = set()
    for w in words:
        toks = tokenizer.encode(w, add_special_tokens=False)
        if len(toks) == 1:
            ids.add(toks[0])
    return sorted(ids)


def yes_probability(llm: Any, prompts: list[str], *, chat: bool = True) -> list[float]:
    """P(yes) / (P(yes) + P(no)) for the next token after each judge prompt.

    Uses ``llm.yes_probability(prompts)`` when the backend has one, else the
    ``.model`` / ``.tokenizer`` of a transformers backend; any other backend (no
    logits) is a clear :class:`EvoError`. ``chat`` wraps each prompt in the
    tokenizer's chat template as a user turn.

    Each prompt runs alone, unpadded: its score is a function of its own tokens, never of
    its batch-mates'. Batched with left padding, a bfloat16 judge (the default on CPUs with
    native bf16) moved scores by up to 0.045 on an AMX Xeon, so the same text scored
    differently in different batches. Alone costs 1.6x the padded batches in bfloat16 and
    is still faster than float32 batched (experiments/results/bench_judge.md).
    """
    inner = _unwrap(llm)
    if hasattr(inner, "yes_probability"):
        return [float(p) for p in inner.yes_probability(prompts)]
    return next_token_odds(inner, prompts, YES, NO, chat=chat,
                           missing=f"the LLM judge needs log-probabilities; backend '{getattr(llm, 'name', llm)}' "
                                   "has none (use the transformers backend or a reward_model)")


def next_token_odds(llm: Any, prompts: list[str], first: tuple[str, ...], second: tuple[str, ...], *,
                    chat: bool = True, missing: str = "this judge needs log-probabilities (a transformers-backend model)"
                    ) -> list[float]:
    """P(first) / (P(first) + P(second)) for the next token after each prompt, from a
    transformers backend's ``.model`` and ``.tokenizer``; ``first`` and ``second`` are the
    spellings of the two answers (only single-token ones count). Each prompt runs alone,
    unpadded (see :func:`yes_probability`). The yes/no judge and the pairwise A/B judge
    both read their verdicts this way; ``missing`` is the error where the backend has no logits."""
    inner = _unwrap(llm)
    model, tokenizer = getattr(inner, "model", None), getattr(inner, "tokenizer", None)
    if model is None or tokenizer is None:
        raise EvoError(missing)
    import torch

    a_ids, b_ids = _token_ids(tokenizer, first), _token_ids(tokenizer, second)
    if not a_ids or not b_ids:
        raise EvoError(f"the judge's tokenizer has no single-token '{first[0]}'/'{second[0]}'")
    if chat and getattr(tokenizer, "chat_template", None):
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True) for p in prompts]
    else:
        texts = list(prompts)
    out: list[float] = []
    device = next(model.parameters()).device
    with torch.inference_mode():
        for text in texts:
            enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
            logp = torch.log_softmax(model(**enc).logits[:, -1, :].float(), dim=-1)
            out += torch.sigmoid(torch.logsumexp(logp[:, a_ids], -1) - torch.logsumexp(logp[:, b_ids], -1)).tolist()
    return out


class RewardModel:
    """A Hugging Face ``AutoModelForSequenceClassification`` reward model, by path or id.

    One logit: ``sigmoid(logit)``; several: the softmax of the last label. Inputs are
    ``(question, text)`` pairs when ``question`` is given, else the text alone; the text
    passes :func:`fence_text` first, so a ``[SEP]`` or ``<|im_start|>`` in it cannot
    split the pair or fake a turn. Each text runs alone, unpadded, as in
    :func:`yes_probability`: a score never depends on the texts scored beside it.
    """

    def __init__(self, path: str, device: str = "cpu", max_length: int = 512) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
        except (OSError, ValueError) as exc:
            raise EvoError(f"cannot load reward model '{path}': {str(exc).splitlines()[0]}") from None
        self.device, self.max_length = device, max_length
        self.special = special_tokens(self)

    def __call__(self, texts: list[str], question: str | None = None) -> list[float]:
        import torch

        out: list[float] = []
        with torch.inference_mode():
            for text in texts:
                fenced = fence_text(text, self.special)
                args = (question, fenced) if question else (fenced,)
                enc = self.tokenizer(*args, return_tensors="pt", truncation=True,
                                     max_length=self.max_length).to(self.device)
                logits = self.model(**enc).logits.float()
                scores = torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else logits.softmax(-1)[:, -1]
                out += scores.tolist()
        return out
