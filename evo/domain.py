"""The domain protocol and registry.

A domain is a plugin: seeds, how an item looks in a prompt, a parser, a verifier,
a fitness function and the text to embed. ``evo`` never imports a concrete domain;
it finds them by name through the ``evo.domains`` entry-point group, or by a
``"package.module:Class"`` path for domains that are not installed as packages.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evo.errors import EvoError
from evo.llm.base import LLM

if TYPE_CHECKING:
    from evo.sandbox import Sandbox


class ParseError(ValueError):
    """A completion that does not contain a well-formed item; the message is the reason."""


@dataclass
class Verification:
    """The verifier's word on one item: ``verdict`` is "valid", "invalid" or "trivial"."""

    verdict: str
    reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"


@dataclass
class Score:
    """Fitness of a valid item, and the parts it was computed from."""

    fitness: float
    parts: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalContext:
    """What a domain may use to score items: the current generator and the sandbox."""

    generator: LLM
    sandbox: Sandbox
    seed: int = 0


@dataclass
class Benchmark:
    """A domain's held-out set, ready to sample: one prompt per problem and a checker.

    ``prompts`` are plain text (completion style) or chat messages (a list of
    ``{"role", "content"}``; a final assistant message is a prefix the answer continues).
    ``check(completions, sandbox)`` takes the sampled completions per problem and returns
    per problem, per completion, whether it is correct.
    """

    name: str
    split: str
    ids: list[str]
    prompts: list[Any]
    check: Callable[[list[list[str]], Sandbox], list[list[bool]]]
    stop: list[str] = field(default_factory=list)
    max_new_tokens: int = 128
    meta: dict[str, Any] = field(default_factory=dict)


class Domain:
    """Base class for domains. Items are plain JSON-able dicts.

    Prompt pieces, used by the operators:
      ``preamble``: text that opens every prompt (what the items are);
      ``open_prefix``: text that ends a prompt and starts the next item; the parser
      sees ``open_prefix + completion``;
      ``stop``: stop strings for generation;
      ``mutation_instructions``: rewrite instructions for instruction mutation.
    """

    name: str = "domain"
    preamble: str = ""
    open_prefix: str = ""
    stop: list[str] = []
    mutation_instructions: list[str] = []

    def seeds(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def render(self, item: dict[str, Any]) -> str:
        """The item as it appears in a prompt (a complete example)."""
        raise NotImplementedError

    def parse(self, text: str) -> dict[str, Any]:
        """``open_prefix + completion`` -> item; raises :class:`ParseError`."""
        raise NotImplementedError

    def from_record(self, record: dict[str, Any]) -> str:
        """A user's record (e.g. a JSONL line) as text for :meth:`parse`."""
        raise NotImplementedError

    def verify(self, items: list[dict[str, Any]], sandbox: Sandbox) -> list[Verification]:
        raise NotImplementedError

    def resolve(self, items: list[dict[str, Any]],
                ctx: EvalContext) -> list[tuple[dict[str, Any], Verification] | None]:
        """A second chance for items that failed verification: e.g. the generator solves
        a puzzle afresh when its own solution was wrong. Per item, the repaired item and
        its verification, or None. The default gives none."""
        return [None] * len(items)

    def score(self, items: list[dict[str, Any]], ctx: EvalContext) -> list[Score]:
        """Fitness of verified-valid items (may call the generator, e.g. difficulty)."""
        raise NotImplementedError

    def score_without_generator(self, items: list[dict[str, Any]], sandbox: Sandbox) -> list[Score] | None:
        """A fitness that needs no generator, for valid items just verified by :meth:`verify`
        (``evo verify`` reports it), or None: the domain's fitness is relative to a generator
        (the default)."""
        return None

    def benchmark(self, split: str = "test", limit: int | None = None, seed: int = 0,
                  prompt_style: str = "completion") -> Benchmark:
        """The domain's held-out benchmark (``evo eval``): ``limit`` problems of ``split`` in a
        ``seed``-ed order, prompted in ``prompt_style`` ("completion" or "chat"). None by default."""
        raise EvoError(f"domain '{self.name}' has no benchmark")

    def text(self, item: dict[str, Any]) -> str:
        """The text the descriptor embeds."""
        return self.render(item)

    def key(self, item: dict[str, Any]) -> str:
        """A normalised form: items with equal keys are duplicates."""
        return " ".join(self.render(item).split())

    def fields(self, item: dict[str, Any]) -> dict[str, Any]:
        """Named dataset columns for an exported item (default: the item's own keys)."""
        return dict(item)

    def to_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        """The item as a chat example (TRL SFT ``messages``): the generation instruction
        as the user turn, the rendered item as the assistant turn."""
        ask = self.preamble.strip() or f"Write a new {self.name} example."
        return [{"role": "user", "content": ask},
                {"role": "assistant", "content": self.render(item).strip()}]

    def to_solve_messages(self, item: dict[str, Any]) -> list[dict[str, str]] | None:
        """The item as a solve example (``evo export --task solve``): the problem in the
        user turn, its verified solution in the assistant turn. None: the domain has no
        solve framing (the default)."""
        return None

    def contamination_sources(self) -> dict[str, Callable[[], list[BenchmarkItem]]]:
        """Held-out benchmarks this domain knows, to check exported data against
        (``evo export`` drops overlaps): name -> a loader of its items. A loader raises
        :class:`~evo.errors.EvoError` when its data is not available. Default: none."""
        return {}


@dataclass
class BenchmarkItem:
    """One item of a held-out benchmark, as the contamination check sees it: ``text`` for
    n-gram and MinHash overlap, ``embed`` for embedding similarity (default ``text``),
    ``key`` for an exact match with :meth:`Domain.key` of the domain named ``domain``."""

    id: str
    text: str
    embed: str | None = None
    key: str | None = None
    domain: str | None = None


def read_seeds(path: str | Path, domain: str) -> list[dict[str, Any]]:
    """A domain's seeds file: one JSON object per line (blank lines skipped)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise EvoError(f"{domain}: cannot read seeds file {path}: {exc.strerror}") from None
    items = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise EvoError(f"{domain}: seeds file {path} line {n} is not JSON: {exc.msg}") from None
    return items


def available_domains() -> list[str]:
    """Names registered in the ``evo.domains`` entry-point group."""
    return sorted(ep.name for ep in entry_points(group="evo.domains"))


def get_domain(name: str, **options: Any) -> Domain:
    """Instantiates the domain registered as ``name`` (or at ``"module:Class"``)."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise EvoError(f"cannot import domain '{name}': {exc}") from None
    else:
        found = [ep for ep in entry_points(group="evo.domains") if ep.name == name]
        if not found:
            known = ", ".join(available_domains()) or "none installed"
            raise EvoError(f"unknown domain '{name}' (known: {known})")
        cls = found[0].load()
    try:
        return cls(**options)
    except TypeError as exc:
        raise EvoError(f"bad options for domain '{name}': {exc}") from None
