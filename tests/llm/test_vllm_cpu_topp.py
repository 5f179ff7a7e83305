"""evo's CPU top-p for vLLM (evo/llm/vllm_cpu_topp.py) against vLLM's own full-sort function:
the same nucleus on peaked, flat, tied and mixed rows, the fallback where the candidates do
not hold ``p`` of the mass, top-k left to vLLM, and the plugin hook switched off by default."""

from __future__ import annotations

import pytest
import torch

from evo.llm import vllm_cpu_topp
from evo.llm.vllm_cpu_topp import fast_top_p, nucleus_from_candidates


def full_sort_top_p(logits: torch.Tensor, k, p: torch.Tensor) -> torch.Tensor:
    """vLLM 0.32's apply_top_k_top_p_pytorch for top-p alone (sort ascending, cut the tail)."""
    assert k is None
    logits_sort, logits_idx = logits.sort(dim=-1, descending=False)
    probs_sum = torch.cumsum(logits_sort.softmax(dim=-1), dim=-1)
    mask = probs_sum <= 1 - p.unsqueeze(dim=1)
    mask[:, -1] = False
    logits_sort.masked_fill_(mask, -float("inf"))
    return logits.scatter_(dim=-1, index=logits_idx, src=logits_sort)


def rows(vocab: int = 5000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    peaked = torch.randn(6, vocab, generator=g) * 4  # a small nucleus
    flat = torch.randn(3, vocab, generator=g) * 0.01  # the nucleus is most of the vocabulary
    one_hot = torch.full((1, vocab), -30.0)
    one_hot[0, 7] = 10.0
    return torch.cat([peaked, flat, one_hot])


def test_same_nucleus_as_vllms_full_sort_with_fallback_rows():
    logits = rows()
    p = torch.tensor([0.95, 0.9, 0.5, 0.99, 0.8, 1.0, 0.95, 0.9, 0.95, 0.95])
    expected = full_sort_top_p(logits.clone(), None, p)
    calls = []

    def vllm_function(x, k, pp):
        calls.append(len(x))
        return full_sort_top_p(x, k, pp)

    got = fast_top_p(vllm_function)(logits.clone(), None, p)
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    assert torch.equal(got[~torch.isinf(got)], expected[~torch.isinf(expected)])
    assert calls == [4]  # p = 1.0 and the three flat rows: their nucleus passes the candidates


def test_candidates_cover_the_nucleus_only_when_they_hold_p():
    logits = rows()
    masked, covered = nucleus_from_candidates(logits, torch.full((10,), 0.95), candidates=1024)
    assert covered[:6].all() and not covered[6:9].any() and covered[9]
    assert int((~torch.isinf(masked[9])).sum()) == 1  # the one-hot row keeps its one token
    kept = (~torch.isinf(masked[:6])).sum(dim=1)
    assert (kept >= 1).all() and (kept <= 1024).all()


def test_ties_at_the_edge_and_top_k_go_to_vllm():
    tied = torch.zeros(2, 100)  # all equal: any 95 tokens are a valid nucleus
    calls = []

    def vllm_function(x, k, pp):
        calls.append((len(x), k is not None))
        return full_sort_top_p(x, k, pp) if k is None else x

    out = fast_top_p(vllm_function)(tied.clone(), None, torch.tensor([0.95, 0.95]))
    assert ((~torch.isinf(out)).sum(dim=1) >= 95).all()
    fast_top_p(vllm_function)(tied.clone(), torch.tensor([5, 5]), torch.tensor([0.9, 0.9]))
    assert calls[-1] == (2, True)


def test_plugin_does_nothing_unless_asked(monkeypatch):
    pytest.importorskip("vllm")
    from vllm.v1.sample.ops import topk_topp_sampler

    calls = []

    def vllm_function(x, k, pp):
        calls.append(len(x))
        return full_sort_top_p(x, k, pp)

    # a vLLM engine built earlier in this process may have swapped it in already
    monkeypatch.setattr(topk_topp_sampler, "apply_top_k_top_p", vllm_function)
    monkeypatch.delenv(vllm_cpu_topp.ENV_FLAG, raising=False)
    vllm_cpu_topp.register()
    assert topk_topp_sampler.apply_top_k_top_p is vllm_function
    monkeypatch.setenv(vllm_cpu_topp.ENV_FLAG, "1")
    vllm_cpu_topp.register()
    vllm_cpu_topp.register()  # loaded twice (vLLM may): wrapped once
    patched = topk_topp_sampler.apply_top_k_top_p
    assert patched is not vllm_function and patched.evo_fast_top_p
    logits, p = rows(), torch.full((10,), 0.9)
    got = patched(logits.clone(), None, p)
    assert calls == [3]  # only the flat rows reach vLLM's sort, once
    assert torch.equal(torch.isinf(got), torch.isinf(full_sort_top_p(logits.clone(), None, p)))
