"""Campaign configuration: one YAML file, validated by pydantic, plus CLI overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evo.errors import EvoError
from evo.sandbox import SandboxLimits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeneratorConfig(_Strict):
    """The LLM that proposes candidates (the mutation operator's engine)."""

    # "auto": vllm when CUDA and vllm are present, else transformers; "openai": any server
    # speaking the OpenAI completions API at base_url (vllm serve, llama.cpp, Ollama).
    # "scripted-stand-in" (model = "module:function") exists for plumbing tests only.
    # "ctranslate2": the fast CPU engine (int8 weights; dtype auto = int8, float32 = exact
    # weights); a LoRA adapter is merged into the weights and the result converted once
    backend: Literal["transformers", "ctranslate2", "vllm", "openai", "auto",
                     "scripted-stand-in"] = "transformers"
    # embedded alias, Hugging Face id or local folder; "qwen2.5-coder-auto" becomes
    # qwen2.5-coder-1.5b with a GPU or native CPU bf16, else qwen2.5-coder-0.5b (3x faster in
    # float32), once, when the config is loaded: the campaign's store records which
    model: str = "smollm2-135m"
    batch_size: int = Field(16, gt=0)  # sequences per forward pass
    device: str = "auto"
    # "auto": bfloat16 on CUDA and on CPUs with native bf16 matmuls (AVX512-BF16/AMX), else float32
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(160, gt=0)
    # backend openai: the server, where its API key is (env var name), parallel requests
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(8, gt=0)
    timeout_s: float = Field(60.0, gt=0)  # per request
    max_retries: int = Field(4, ge=0)  # connection errors, timeouts, 429 and 5xx; backoff doubles
    # backend vllm: more vllm.LLM engine options, e.g. {gpu_memory_utilization: 0.6,
    # max_model_len: 4096, tensor_parallel_size: 2}; they win over evo's defaults
    engine: dict[str, Any] = {}
    # backend vllm, a fine-tuned generator: "request" applies the LoRA adapter to every token
    # (hot-swapped, the base weights stay loaded); "merge" merges it into a cached copy of the
    # weights and restarts the engine on that (~2 min a swap; on vLLM's CPU build a LoRA
    # request generated 3.5-4x slower than the merged weights: 406 s against 97 s per 16
    # held-out puzzles x 10 samples, Qwen2.5-Coder-1.5B, 2026-12-04); "auto": merge on vLLM's
    # CPU build, request on a GPU (its LoRA kernels cost little; a restart costs more there)
    lora_serving: Literal["auto", "request", "merge"] = "auto"

    @model_validator(mode="after")
    def _server(self) -> GeneratorConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("generator.backend openai needs generator.base_url")
        if self.backend != "openai" and self.model.endswith("-auto"):  # imports torch: only then
            from evo.llm.embedded import resolve_auto_model

            self.model = resolve_auto_model(self.model, self.device)
        return self


class ExecutorConfig(_Strict):
    """Where evaluations (and optionally generators) run: this process, or a Ray cluster."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = None  # ray: cluster address ("auto", "ray://host:10001"); None = local Ray
    num_cpus: int | None = Field(None, gt=0)  # ray, local instance only: CPUs it may use
    generators: int = Field(0, ge=0)  # ray: generator actors (0 = generate in this process)
    gpus_per_generator: float = Field(1.0, ge=0)  # ray: GPUs each generator actor holds


class PipelineConfig(_Strict):
    """``staleness: 1``: the generator writes batch i+1 while batch i is verified, scored,
    embedded and stored, so parents may miss the last batch's elites. 0: one step at a time."""

    staleness: Literal[0, 1] = 0


OperatorName = Literal["lmx", "mutation", "scratch", "continuation"]  # evo.operators builds each


class OperatorConfig(_Strict):
    """How often each operator builds a prompt, and how many parents it shows."""

    weights: dict[OperatorName, float] = {
        "lmx": 0.5, "mutation": 0.3, "scratch": 0.2}
    parents: int = Field(3, gt=0)

    @model_validator(mode="after")
    def _positive(self) -> OperatorConfig:
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("operator weights must be >= 0 with a positive sum")
        return self


class ArchiveConfig(_Strict):
    """A grid over PCA of the embeddings, or a CVT over the full embedding."""

    kind: Literal["grid", "cvt"] = "grid"
    dims: list[int] = [20, 20]  # grid: cells per PCA axis
    cells: int = Field(32, gt=1)  # cvt: centroids from k-means on seed embeddings
    margin: float = Field(0.1, ge=0)  # grid bounds: seed range widened by this share

    @model_validator(mode="after")
    def _dims(self) -> ArchiveConfig:
        if not self.dims or any(d < 1 for d in self.dims):
            raise ValueError("archive.dims must be a non-empty list of positive ints")
        return self


class StrategyConfig(_Strict):
    """MAP-Elites, or a baseline on the same budget (see :mod:`evo.strategy`)."""

    kind: Literal["map_elites", "plain", "best_of_n", "novelty", "beam", "best_first"] = "map_elites"
    # map_elites parent selection: uniform, curiosity (parents whose children got in), or
    # sparse (elites far from their nearest fellow elites: the archive's frontier)
    selection: Literal["uniform", "curiosity", "sparse"] = "uniform"
    novelty_threshold: float = Field(0.85, gt=0, le=1)  # novelty: max cosine to kept items
    # beam / best_first (evo.search): an iteration is beam_depth rounds; each round expands
    # beam_width nodes (roots: seeds) into beam_expansions samples each, verified and scored
    # before the next round. width x expansions x depth must equal prompts_per_iteration x
    # samples_per_prompt: every strategy spends the same samples per iteration
    beam_width: int = Field(4, gt=0)  # nodes expanded per round (beam: the beam's size)
    beam_expansions: int = Field(2, gt=0)  # samples per expanded node
    beam_depth: int = Field(2, gt=0)  # rounds per iteration
    # best_first: exploration weight of the UCB bonus c * sqrt(ln(1 + expansions so far) /
    # (1 + the node's expansions)), in fitness units; 0 = greedy on the value alone
    search_ucb: float = Field(0.3, ge=0)


class DescriptorConfig(_Strict):
    embedder: str = "all-MiniLM-L6-v2"  # embedded alias or a sentence-transformers path


class FinetuneConfig(_Strict):
    """Self-improvement: LoRA fine-tuning of the generator on its elites (``every`` > 0 turns
    it on in the loop; ``evo finetune DIR`` runs one round by hand)."""

    every: int = Field(0, ge=0)  # fine-tune every K iterations; 0 = off
    lora_r: int = Field(16, gt=0, le=512)  # vLLM serves ranks up to 512 (its max_lora_rank)
    lora_alpha: int = Field(32, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)  # > 0 overrides epochs
    lr: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, gt=0)  # examples per forward pass (per device)
    grad_accum: int = Field(1, gt=0)  # forward passes per optimizer step: batch_size x grad_accum examples a step
    # recompute activations in backward: a fraction of the memory for ~30% more compute;
    # None = on on CUDA, and on CPU for models over 1B parameters (the 1.5B at batch 8 ran out
    # of 24 GiB without it)
    gradient_checkpointing: bool | None = None
    # "auto": bfloat16 base weights and autocast on CUDA and on CPUs with native bf16 matmuls
    # (AVX512-BF16, AMX); float32 elsewhere, where bf16 is emulated and several times slower
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    max_length: int = Field(384, gt=16)  # tokens per example (prompt + completion)
    max_examples: int | None = Field(None, gt=0)  # cap on archive examples per round
    # only elites whose fitness is above this are trained on (None: all). P3's fitness is 0
    # for a puzzle that showed no difficulty: all or none of its solve attempts succeeded and
    # the search found no hard-won answer (AZR pays nothing for such a task)
    fitness_above: float | None = None
    # leave out elites whose solution is a fresh solve attempt (their author's own failed):
    # the solver's answer, in the solver's style, not a puzzle and its solution written together
    own_solutions_only: bool = False
    seed_share: float = Field(0.1, ge=0, lt=1)  # share of real seed examples in every round's mix
    accumulate: bool = True  # keep earlier rounds' examples (anti-collapse anchor)
    kl_coef: float = Field(0.0, ge=0)  # KL(tuned || frozen base) on the training batches; 0 = off
    solve_examples: bool = True  # also train on (puzzle -> verified solution)
    # tokenize prompt and completion apart, as the engine sees a prompt at run time; False is
    # TRL's joint tokenization (a token merged across the boundary shifts the prompt's end),
    # kept so that an experiment begun on it trains every arm the same way
    tokenize_apart: bool = True
    rescore: bool = True  # re-score the elites with the new generator after a swap
    eval_limit: int = Field(0, ge=0)  # > 0: held-out P3 pass@k on this many test puzzles per round
    eval_k: int = Field(4, gt=0)


class CampaignConfig(_Strict):
    """Everything a campaign needs; ``evo run --config FILE`` reads one of these."""

    name: str = "campaign"
    domain: str = "p3"
    domain_options: dict[str, Any] = {}
    seed: int = 0
    max_seeds: int | None = Field(None, gt=0)  # seeds inserted; the descriptor fits on all
    iterations: int = Field(5, ge=0)
    prompts_per_iteration: int = Field(8, gt=0)
    samples_per_prompt: int = Field(2, gt=0)
    generator: GeneratorConfig = GeneratorConfig()
    operators: OperatorConfig = OperatorConfig()
    archive: ArchiveConfig = ArchiveConfig()
    strategy: StrategyConfig = StrategyConfig()
    descriptor: DescriptorConfig = DescriptorConfig()
    sandbox: SandboxLimits = SandboxLimits()
    executor: ExecutorConfig = ExecutorConfig()
    pipeline: PipelineConfig = PipelineConfig()
    finetune: FinetuneConfig = FinetuneConfig()

    @model_validator(mode="after")
    def _search_budget(self) -> CampaignConfig:
        s = self.strategy
        if s.kind not in ("beam", "best_first"):
            return self
        shape = s.beam_width * s.beam_expansions * s.beam_depth
        budget = self.prompts_per_iteration * self.samples_per_prompt
        if shape != budget:
            raise ValueError(
                f"strategy {s.kind}: beam_width x beam_expansions x beam_depth ({s.beam_width}x"
                f"{s.beam_expansions}x{s.beam_depth}={shape}) must equal prompts_per_iteration x "
                f"samples_per_prompt ({self.prompts_per_iteration}x{self.samples_per_prompt}={budget}), "
                "the samples every strategy spends per iteration")
        if self.pipeline.staleness:
            raise ValueError(f"strategy {s.kind} runs its rounds one after another: pipeline.staleness must be 0")
        return self


# Keys that say where and how fast a campaign runs, not what it is: a resumed campaign
# may change them (move to a GPU, a server or a cluster, a longer budget).
RUNTIME_KEYS = {
    "iterations": None,
    "executor": None,
    "generator": ("backend", "batch_size", "device", "dtype", "base_url", "api_key_env", "concurrency",
                  "timeout_s", "max_retries", "engine", "lora_serving"),
    "sandbox": ("workers", "isolation"),
}


def same_campaign(a: CampaignConfig, b: CampaignConfig) -> bool:
    """Whether ``b`` may continue the campaign configured by ``a`` (runtime keys aside)."""
    da, db = a.model_dump(), b.model_dump()
    for key, sub in RUNTIME_KEYS.items():
        for d in (da, db):
            if sub is None:
                d.pop(key, None)
            else:
                for k in sub:
                    d[key].pop(k, None)
    return da == db


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise EvoError(f"override '{dotted}': '{key}' is not a section")
    node[leaf] = value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["iterations=3", "generator.batch_size=8"]`` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise EvoError(f"override '{pair}' is not KEY=VALUE")
        _set_path(out, key.strip(), yaml.safe_load(raw))
    return out


def merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` laid over ``base``, section by section (a nested dict merges, anything else replaces)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge_overrides(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _describe(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "config"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {e['msg']}{more}"


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> CampaignConfig:
    """Reads and validates a campaign config; every problem is one :class:`EvoError` line."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except OSError as exc:
            raise EvoError(f"cannot read config {p}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise EvoError(f"config {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise EvoError(f"config {p} must be a mapping of keys to values")
    return validate_config(data, overrides)


def validate_config(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> CampaignConfig:
    """Validates a config mapping (plus overrides) into a :class:`CampaignConfig`."""
    try:
        return CampaignConfig.model_validate(merge_overrides(data, overrides or {}))
    except ValidationError as exc:
        raise EvoError(f"bad config: {_describe(exc)}") from None
