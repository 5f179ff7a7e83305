"""Top-p for vLLM's CPU sampler without sorting the whole vocabulary at every step.

vLLM 0.32 applies top-p on CPU by sorting each row's logits over the full vocabulary at
every decode step (``apply_top_k_top_p_pytorch``). On the demo workload (SmolLM2's 49,152
tokens, 32 rows) that sort costs about a third of generation time: 322.9 against 454.6
tokens/s with this module (2 cores, AVX-512, 2026-11-24;
experiments/results/bench_generation_vllm_ablation.md).

The nucleus is the smallest set of most likely tokens whose mass reaches ``p``; in sorted
order, token ``r`` stays iff the mass of the tokens above it is below ``p``. So when the
``CANDIDATES`` most likely tokens already hold at least ``p`` of the mass, every token
outside them is cut, and the nucleus can be computed on those candidates alone (one
``topk`` and one ``logsumexp`` instead of a full sort). Rows where they hold less (a flat
distribution, or ``p`` = 1) go through vLLM's own function. The result is the same mask up
to float rounding at the nucleus edge, which ``tests/llm/test_vllm_cpu_topp.py`` checks against
vLLM's function.

It runs inside vLLM's engine processes as a general plugin (the ``vllm.general_plugins``
entry point in pyproject.toml), and only where ``EVO_VLLM_CPU_TOP_P=1``, which
:class:`~evo.llm.vllm_backend.VLLMGenerator` sets on CPU: a ``vllm serve`` started from
the same environment keeps vLLM's sampler.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

CANDIDATES = 1024  # tokens looked at per row before falling back to the full sort
ENV_FLAG = "EVO_VLLM_CPU_TOP_P"


def nucleus_from_candidates(logits: torch.Tensor, p: torch.Tensor,
                            candidates: int = CANDIDATES) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked, covered)``: for the rows in ``covered`` (bool, per row), ``masked`` holds
    the row's logits with every token outside its top-``p`` nucleus set to -inf; other rows
    are not computed (their nucleus may reach past the candidates)."""
    k = min(candidates, logits.shape[-1])
    top, index = logits.topk(k, dim=-1)  # descending
    probs = (top - torch.logsumexp(logits, dim=-1, keepdim=True)).exp()
    above = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above each one
    p = p.to(probs.dtype).unsqueeze(1)
    covered = (above[:, -1:] + probs[:, -1:] >= p).squeeze(1)
    kept = above < p  # the most likely token always stays (nothing above it)
    masked = torch.full_like(logits, float("-inf"))
    masked.scatter_(1, index, top.masked_fill(~kept, float("-inf")))
    return masked, covered


def fast_top_p(original: Callable) -> Callable:
    """vLLM's ``apply_top_k_top_p(logits, k, p)`` with the candidate path for top-p alone."""

    def apply_top_k_top_p(logits: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None) -> torch.Tensor:
        if p is None or k is not None or logits.device.type != "cpu":
            return original(logits, k, p)
        masked, covered = nucleus_from_candidates(logits, p)
        if not bool(covered.all()):
            rest = ~covered
            masked[rest] = original(logits[rest].clone(), None, p[rest])
        return masked

    apply_top_k_top_p.evo_fast_top_p = True  # type: ignore[attr-defined]
    return apply_top_k_top_p


def register() -> None:
    """vLLM general-plugin hook: swaps in :func:`fast_top_p` in this process when asked."""
    if os.environ.get(ENV_FLAG) != "1":
        return
    try:
        from vllm.platforms import current_platform
        from vllm.v1.sample.ops import topk_topp_sampler
    except ImportError as exc:  # another vLLM layout: keep vLLM's sampler
        log.warning("evo's CPU top-p is not applied: %s", exc)
        return
    current = getattr(topk_topp_sampler, "apply_top_k_top_p", None)
    if not current_platform.is_cpu() or current is None or getattr(current, "evo_fast_top_p", False):
        return
    topk_topp_sampler.apply_top_k_top_p = fast_top_p(current)
