"""The result record of one run: what the runner writes as ``result.json`` and the leaderboard ingests.

``RunRecord`` is the one typed form of it. ``to_json`` gives the JSON object (key order as
written since ``ferbench-result/1``: schema, run_id, run_name, created_at, recipe, protocol,
repeat, fold, seed, datasets, code_version, metrics, environment, predictions, then ``model`` when
the record has it), so run directories written before this class existed load unchanged. ``load``
reads a record file (or the one in a run directory); a file that is not valid JSON, holds another schema, or lacks a field the leaderboard
reads is refused with a one-line ``FerbenchError`` naming the file. Keys a record has beyond these
are kept (``extra``) and written back.

Nested sections stay JSON objects (``REQUIRED`` lists the keys a record must have in them: those
the leaderboard reads). What the runner writes in each:

* ``recipe``: name, hash (the recipe's content hash: what the leaderboard calls an entry), model,
  modality, input_size, channels, pretrained, epochs, batch_size, input_norm (from, mean, std), eval
  (bootstrap, ci), reported (the published figure: one object, a list of them, or null), and (absent
  in older records) ``file`` (the recipe file the run's recipe was compared with, or null), ``located``
  ("given": the recipe named its file; "by name": found as ``recipes/**/<name>.yaml``) and
  ``overrides`` (``{dotted key: [file value, run value]}``: how the run's resolved recipe differs
  from that file, ``runtime`` left out; null when no file was found);
* ``protocol``: name, version, manifest_hash, seed, params, n_folds, n_repeats, classes, leakage;
* ``datasets``: one object per dataset (name, title, fingerprint, synthetic, num_rows, path);
* ``metrics``: the run's ``metrics.json`` (classes, test, val, baselines, selection, n,
  train_class_counts);
* ``environment``: git state, package versions (and ``ferbench_version``), hardware, precision,
  world size, wall time, speed;
* ``model`` (optional: absent in older records): parameter count (``params``, ``trainable_params``),
  ``gflops`` of one forward pass at ``flops_input`` (batch 1, counted by ``flops_counter``: a
  multiply-add is 2 FLOPs; null with ``flops_error`` when it could not be counted), ``pretrained``,
  ``pretrained_source``, ``checkpoint`` and its ``checkpoint_sha256`` when one was loaded.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from .errors import FerbenchError

RESULT = "result.json"
RESULT_SCHEMA = "ferbench-result/1"
PREDICTIONS = "predictions.parquet"
#: Fields left out of the JSON when None (added after ``ferbench-result/1`` was first written).
OPTIONAL = ("model",)

#: Keys (dotted for nested objects) each section must have: what the leaderboard reads.
REQUIRED: dict[str, tuple[str, ...]] = {
    "recipe": ("name", "hash", "model", "modality", "input_size", "channels", "pretrained", "eval.bootstrap", "eval.ci"),
    "protocol": ("name", "manifest_hash", "n_folds", "n_repeats", "classes"),
    "metrics": ("classes", "test.confusion", "test.per_class_recall", "baselines", "selection.rule", "selection.epoch",
                "selection.epochs_ran", "selection.stopped_early", "n", "train_class_counts"),
    "datasets[]": ("name", "fingerprint"),
}


@dataclass(kw_only=True)
class RunRecord:
    """One run's result record (``result.json``); ``run_dir`` is where it was loaded from (not written)."""

    SCHEMA: ClassVar[str] = RESULT_SCHEMA

    run_id: str
    run_name: str
    created_at: str
    recipe: dict[str, Any]
    protocol: dict[str, Any]
    repeat: int
    fold: int
    seed: int
    datasets: list[dict[str, Any]]
    code_version: str
    metrics: dict[str, Any]
    environment: dict[str, Any]
    predictions: str = PREDICTIONS
    model: dict[str, Any] | None = None  # optional: left out of the JSON when None
    extra: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = field(default=None, compare=False)

    # -- reading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "RunRecord":
        """The record in ``path`` (a ``result.json``, or a run directory holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / RESULT
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise FerbenchError(f"{path}: cannot read the run record ({_one_line(exc)})") from None
        record = cls.from_json(text, source=str(path))
        record.run_dir = path.parent
        return record

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any], source: str = "run record") -> "RunRecord":
        """A record from JSON text or an already parsed object; ``source`` names it in errors."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise FerbenchError(f"{source}: not a {RESULT_SCHEMA} record (invalid JSON: {_one_line(exc)})") from None
        problem = _problem(data)
        if problem:
            raise FerbenchError(f"{source}: not a {RESULT_SCHEMA} record ({problem})")
        known = {f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "run_dir")}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known and k != "schema"})

    # -- writing -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``result.json``: ``schema`` first, then the fields in order, then ``extra``."""
        out: dict[str, Any] = {"schema": self.SCHEMA}
        out.update((f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                   if f.name not in ("extra", "run_dir") and not (f.name in OPTIONAL and getattr(self, f.name) is None))
        out.update(self.extra)
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str) + "\n"

    def write(self, run_dir: str | Path) -> Path:
        """Write ``result.json`` into ``run_dir``; returns its path."""
        path = Path(run_dir) / RESULT
        path.write_text(self.dumps())
        return path

    # -- what readers ask for ----------------------------------------------------------------------
    @property
    def predictions_path(self) -> Path:
        """The run's predictions file (relative to the run directory when the record was not loaded)."""
        return (self.run_dir or Path()) / self.predictions

    @property
    def manifest_hash(self) -> str:
        return self.protocol["manifest_hash"]

    @property
    def recipe_hash(self) -> str:
        return self.recipe["hash"]

    @property
    def classes(self) -> list[str]:
        return self.protocol["classes"]

    @property
    def selection(self) -> dict[str, Any]:
        return self.metrics["selection"]

    @property
    def reported(self) -> list[dict[str, Any]]:
        """The published figures the recipe reproduces (its ``reported`` block: one or several)."""
        rep = self.recipe.get("reported")
        return [] if not rep else [rep] if isinstance(rep, dict) else [r for r in rep if isinstance(r, dict)]


def _problem(data: Any) -> str | None:
    """What keeps ``data`` from being a record, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    if data.get("schema") != RESULT_SCHEMA:
        return f"schema {data.get('schema')!r}" if "schema" in data else "no schema"
    types = {"run_id": str, "run_name": str, "created_at": str, "code_version": str, "predictions": str,
             "repeat": int, "fold": int, "seed": int, "recipe": dict, "protocol": dict, "metrics": dict,
             "environment": dict, "datasets": list, "model": dict}
    for key, typ in types.items():
        if key not in data or (key in OPTIONAL and data[key] is None):
            if key != "predictions" and key not in OPTIONAL:
                return f"no {key!r}"
        elif not isinstance(data[key], typ) or (typ is int and isinstance(data[key], bool)):
            return f"{key!r} is {type(data[key]).__name__}, not {typ.__name__}"
    for section, keys in REQUIRED.items():
        items = data[section[:-2]] if section.endswith("[]") else [data[section]]
        for i, item in enumerate(items):
            where = f"{section[:-2]}[{i}]" if section.endswith("[]") else section
            missing = next((k for k in keys if not _has(item, k)), None)
            if missing:
                return f"no {where}.{missing}"
    return None


def _has(obj: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return False
        obj = obj[part]
    return True


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
