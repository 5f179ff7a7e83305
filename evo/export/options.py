"""ExportConfig: the options of one export, each with its flag and help text.

One model drives the three places that used to spell the options out: the ``evo export``
command's options (:func:`evo.cli.data.export`), :func:`~evo.export.export_campaign`'s
keyword arguments, and the reproducing command in the dataset card
(:func:`export_command`). The order of the fields is the order of that command line.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evo.errors import EvoError

__all__ = ["DECONTAMINATE", "FILE_FORMATS", "FORMATS", "TASKS", "ExportConfig", "export_command"]

FORMATS = ("sft", "dpo", "kto")  # what a row is: an SFT example, a preference pair, a KTO row
FILE_FORMATS = ("jsonl", "parquet", "hf")
TASKS = ("generate", "solve", "both")
DECONTAMINATE = ("drop", "flag", "off")


def _opt(default: Any, help: str, *flags: str, reproduce: bool = True, invert: str | None = None) -> Any:
    """A field with its CLI flags (the first is the long one; default ``--field-name``);
    ``invert``: a bool shown on the command line as this off-switch (``--no-seeds``);
    ``reproduce``: False for options that do not change the data (``--force``)."""
    return Field(default, description=help,
                 json_schema_extra={"flags": list(flags), "reproduce": reproduce, "invert": invert})


class ExportConfig(BaseModel):
    """What to export and how; the values are checked by ``export_campaign`` (with the
    messages the CLI shows), the types here."""

    model_config = ConfigDict(extra="forbid")

    format: str = _opt("sft", "sft rows, dpo pairs or kto rows (jsonl, parquet or hf here mean sft rows in "
                       "that file format)", "--format", "-f")
    files: str = _opt("jsonl", "jsonl, parquet or hf")
    task: str = _opt("generate", "sft framing: generate, solve or both")
    seed: int = _opt(0, "random seed of the split")
    decontaminate: str = _opt("drop", "drop, flag or off: items overlapping a held-out benchmark")
    against: list[str] | None = _opt(None, "benchmark name or file of items (repeat; default: every "
                                     "benchmark the installed domains bring)")
    min_fitness: float | None = _opt(None, "keep items with fitness >= X")
    per_cell: int | None = _opt(None, "keep up to N best items per cell")
    split: float | None = _opt(None, "train share, e.g. 0.9 (in (0, 1])")
    dedup: float | None = _opt(None, "drop near-duplicates above this cosine similarity")
    split_threshold: float | None = _opt(None, "similarity that keeps items on one side of the split "
                                         "[default: --dedup or 0.95]")
    include_history: bool = _opt(False, "every valid candidate, not only the elites")
    reverify: bool = _opt(False, "re-run the verifier, drop failures")
    include_seeds: bool = _opt(True, "leave the seed items out", invert="--no-seeds")
    force: bool = _opt(False, "replace a non-empty --out", reproduce=False)

    @model_validator(mode="before")
    @classmethod
    def _file_format_as_format(cls, data: Any) -> Any:
        # for compatibility: a file format given as ``format`` means sft rows in that file format
        if isinstance(data, dict) and data.get("format") in FILE_FORMATS:
            data = {**data, "files": data["format"], "format": "sft"}
        return data

    @classmethod
    def of(cls, **options: Any) -> ExportConfig:
        """The config from keyword arguments, a type error as an EvoError."""
        try:
            return cls(**options)
        except ValidationError as exc:
            raise EvoError(f"bad export options: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None

    @classmethod
    def flag(cls, name: str) -> str:
        """The field's long flag on the command line (its off-switch for an inverted bool)."""
        extra = cls.model_fields[name].json_schema_extra
        return extra["invert"] or (extra["flags"] or ["--" + name.replace("_", "-")])[0]

    @classmethod
    def cli_flags(cls, name: str) -> list[str]:
        extra = cls.model_fields[name].json_schema_extra
        return [extra["invert"]] if extra["invert"] else extra["flags"] or ["--" + name.replace("_", "-")]


def export_command(directory: Path, out: Path, options: ExportConfig | None = None, **o: Any) -> str:
    """The ``evo export`` command line that reproduces an export with these options (an
    ExportConfig, or its fields as keywords)."""
    options = options or ExportConfig.of(**o)
    args = ["evo", "export", str(directory), "--out", str(out)]
    for name, field in ExportConfig.model_fields.items():
        extra, value = field.json_schema_extra, getattr(options, name)
        if not extra["reproduce"] or value is None:
            continue
        if isinstance(value, bool):
            if value != bool(extra["invert"]):  # an inverted flag is written when the value is off
                args.append(ExportConfig.flag(name))
        elif isinstance(value, list):
            for item in value:
                args += [ExportConfig.flag(name), str(item)]
        else:
            args += [ExportConfig.flag(name), str(value)]
    return shlex.join(args)
