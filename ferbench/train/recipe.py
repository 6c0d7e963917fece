"""Recipes: strict YAML experiment descriptions with a base to inherit from and dotted overrides.

A recipe names the data, the protocol and seeds, the model and its input, augmentation, sampler,
loss, optimiser, schedule, training and evaluation settings (see the dataclasses below for every
key and its default). Loading is strict: an unknown key is an error that names the closest valid
key. ``base: other.yaml`` (relative to the recipe's folder) inherits; mappings merge key by key,
lists are replaced, and a component section (``loss``, ``optimizer``, ``scheduler``, ``sampler``)
whose ``name`` changes is replaced as a whole. Overrides are ``dotted.key=value`` with the value
read as YAML (``train.epochs=3``, ``seeds=[0,1]``, ``optimizer.name=sgd``).

Component sections hold ``name`` plus that component's keyword parameters, checked against the
factory registered under ``name`` (``ferbench.train.losses.LOSSES`` etc.).

The recipe hash covers what changes results; it leaves out the recipe's name and description,
the ``reported`` block (the published figure the recipe reproduces, shown on the leaderboard beside
the measured one), the ``runtime`` section, the ``data`` section and ``protocol.manifest`` (the data
are identified by the dataset fingerprints and the manifest's content hash instead), and the
seed/fold/repeat selection (each job carries its own).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from ..fingerprint import hash_obj
from .recipe_checks import check_semantics
from .recipe_yaml import COMPONENT_SECTIONS, RecipeError, Source, apply_override, merge, parent_key, read_with_bases

__all__ = ["COMPONENT_SECTIONS", "Recipe", "RecipeError", "apply_override", "from_dict", "in_chans", "load_recipe",
           "merge", "recipe_params", "registry", "resolve_recipe_path"]
NOT_HASHED = ("name", "description", "reported", "runtime", "data", "seeds", "folds", "repeats", "protocol.manifest")


@dataclass
class DataCfg:
    #: converted dataset dirs (or one merged set); empty = the paths recorded in the manifest
    dirs: list[str] = field(default_factory=list)
    #: "memory": decode every image once and serve batches from memory; "stream": decode in loader
    #: workers every epoch; "auto": memory when the decoded set fits ``cache_max_gb``
    cache: Literal["auto", "memory", "stream"] = "auto"
    cache_max_gb: float = 4.0
    #: where streamed images are decoded: "cpu" (loader workers), "gpu" (JPEGs decoded on the CUDA
    #: device, ``ferbench.train.device_decode``), or "auto": gpu only where it can run and the CPU
    #: workers decode slower than the model trains (``ferbench.train.throughput``); recorded per run
    decode: Literal["auto", "cpu", "gpu"] = "auto"


@dataclass
class ProtocolCfg:
    #: a protocol of ``ferbench.protocols`` materialised over ``data.dirs`` ...
    name: str | None = None
    #: ... or a manifest file written beforehand (``ferbench split``)
    manifest: str | None = None
    seed: int = 0
    params: dict = field(default_factory=dict)
    allow_leakage: bool = False


@dataclass
class ModelCfg:
    name: str = "tiny_cnn"
    pretrained: bool = False
    checkpoint: str | None = None
    kwargs: dict = field(default_factory=dict)


@dataclass
class InputCfg:
    modality: Literal["rgb", "depth", "rgbd"] = "rgb"
    #: square side in pixels; null = the model's default input size
    size: int | None = None
    #: null = the modality's channels (rgb 3, depth 1, rgbd 4); rgb 1 = grayscale, rgbd 2 = gray + depth
    channels: int | None = None
    #: per-channel normalisation after scaling to [0, 1]; null = the model's default config
    mean: list[float] | None = None
    std: list[float] | None = None
    #: "model": mean/std above (or the model's); "train": each fold's own train-role statistics
    #: (colour over all pixels, depth over valid pixels), recorded in the run's result
    normalize: Literal["model", "train"] = "model"
    #: "minmax": each depth map's valid pixels to [0.1, 1] (0 = no data); "max": divided by its largest
    #: depth (report 003's Eq. 3.1, X / max X); "scale": millimetres / depth_scale_mm
    depth_norm: Literal["minmax", "max", "scale"] = "minmax"
    depth_scale_mm: float = 200.0


@dataclass
class TrainCfg:
    epochs: int = 10
    batch_size: int = 64
    accum_steps: int = 1
    #: auto = bf16 autocast + channels-last where the device computes bf16 natively, else fp32 (or fp16
    #: on an older CUDA GPU), chosen at run time (``loop.resolve_train``) and recorded in the run
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = False
    compile: bool = False
    grad_clip: float | None = None
    #: gradual unfreezing (timm ViTs): the trunk frozen but the head for the first N epochs, then one
    #: more transformer block every N epochs (``models.small_vit.gradual_unfreeze``); null = all trainable
    unfreeze_every: int | None = None
    #: stop after this many epochs without improvement of ``monitor`` on the val role; null = never
    early_stopping: int | None = None
    monitor: Literal["balanced_accuracy", "accuracy", "macro_f1", "loss"] = "balanced_accuracy"
    #: also validate every this fraction of an epoch (e.g. 0.1, as report 003), besides each epoch's end;
    #: selection sees every validation; null = at epoch ends only
    val_every: float | None = None
    #: which epoch's weights are tested: the best on val, the last, or ``on_test``: the best on the test
    #: fold itself, as some publications did (optimistic; only a ``*-published`` protocol may use it,
    #: and the leaderboard marks the entry)
    select: Literal["best", "last", "on_test"] = "best"


@dataclass
class HardSamplesCfg:
    """Report 001's second phase (``ferbench.train.hard_samples``), run after the recipe's training."""

    #: epochs on the training samples the first phase misclassifies (no augmentation)
    epochs: int = 20
    #: then epochs on the whole training set with ``augment`` (early stopping and selection as ``train``)
    augment_epochs: int = 20
    augment: list[dict] = field(default_factory=list)


@dataclass
class ReportedCfg:
    """The published figure a recipe reproduces (documentation: not hashed, shown on the leaderboard)."""

    #: in percent, as published
    value: float
    #: a scalar metric (accuracy, balanced_accuracy, macro_f1, weighted_precision, weighted_recall,
    #: weighted_f1), a per-class one (``precision:<class>``, ``recall:<class>``, ``f1:<class>``), or
    #: ``accuracy_without:<class>``: the argmax over every class scored on the other classes' rows, or a
    #: model figure in its own unit: ``params_m``, ``trainable_params_m`` (millions), ``gmacs`` (10^9 MACs)
    metric: str = "accuracy"
    #: the role the publication's figure corresponds to in this recipe's protocol
    role: Literal["test", "val"] = "test"
    #: report id and table, e.g. "report 000, Table 6.1"
    source: str = ""
    #: what differs between the publication's setup and this recipe
    notes: str = ""


@dataclass
class EvalCfg:
    batch_size: int | None = None
    bootstrap: int = 1000
    ci: float = 0.95


@dataclass
class RuntimeCfg:
    #: auto, cpu, cuda, cuda:N or mps (``ferbench.devices``)
    device: str = "auto"
    #: loader / decode workers; null = min(8, cores)
    workers: int | None = None
    progress: bool = True
    #: run directories land in out_dir/<model>-r<repeat>-f<fold>-s<seed>-<key>/
    out_dir: str = "runs"
    #: keep the selected weights (model.safetensors + model.json) in the run directory
    keep_weights: bool = True


@dataclass
class Recipe:
    name: str | None = None
    description: str = ""
    data: DataCfg = field(default_factory=DataCfg)
    protocol: ProtocolCfg = field(default_factory=ProtocolCfg)
    seeds: list[int] = field(default_factory=lambda: [0])
    folds: list[int] | None = None
    repeats: list[int] | None = None
    model: ModelCfg = field(default_factory=ModelCfg)
    input: InputCfg = field(default_factory=InputCfg)
    augment: list[dict] = field(default_factory=list)
    sampler: dict = field(default_factory=lambda: {"name": "random"})
    loss: dict = field(default_factory=lambda: {"name": "ce"})
    optimizer: dict = field(default_factory=lambda: {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05})
    scheduler: dict = field(default_factory=lambda: {"name": "cosine"})
    train: TrainCfg = field(default_factory=TrainCfg)
    hard_samples: HardSamplesCfg | None = None
    eval: EvalCfg = field(default_factory=EvalCfg)
    #: the published figure(s): one mapping, or a list of them (one per metric and role)
    reported: ReportedCfg | list[ReportedCfg] | None = None
    runtime: RuntimeCfg = field(default_factory=RuntimeCfg)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def figures(self) -> list[ReportedCfg]:
        """The published figures of the ``reported`` block, as a list (empty when there is none)."""
        rep = self.reported
        return list(rep) if isinstance(rep, list) else [] if rep is None else [rep]

    def hash(self) -> str:
        """Hash of everything that changes results (see the module docstring for what is left out)."""
        d = self.to_dict()
        for key in NOT_HASHED:
            *parents, last = key.split(".")
            node = d
            for p in parents:
                node = node[p]
            node.pop(last)
        return hash_obj(d)

    def dump(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# -- loading --------------------------------------------------------------------------------------
def resolve_recipe_path(path: str | Path) -> Path:
    """A recipe file, or the shipped recipe of that name (``fer2013_tiny_cnn``); one-line error otherwise."""
    from .. import recipes

    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise RecipeError(f"{path} is a folder; give a recipe file, e.g. {path}/<name>.yaml")
    shipped = recipes.find(str(path))
    if shipped is not None:
        return shipped
    hint = recipes.suggest(str(path))
    did = f"; did you mean the shipped recipe {hint!r}?" if hint else ""
    raise RecipeError(f"recipe {str(path)!r} not found: no such file, and no shipped recipe of that name{did} "
                      f"(list them: ferbench run --list)")


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file (or a shipped recipe by name), following ``base:``; apply ``key=value``
    overrides; validate strictly. Errors name the file, line and column (or the override) at fault."""
    path = resolve_recipe_path(path)
    source = read_with_bases(path)
    raw = merge(Recipe().to_dict(), source.data)
    raw["name"] = raw["name"] or path.stem
    set_by: dict[str, str] = {}
    for item in overrides:
        set_by[apply_override(raw, item)] = item
    try:
        return from_dict(raw)
    except RecipeError as exc:
        raise _located(exc, source, set_by) from None


def _located(exc: RecipeError, source: Source, set_by: dict[str, str]) -> RecipeError:
    """The error prefixed with the override or the file position that set its key."""
    key = exc.key
    while key:
        if key in set_by:
            return RecipeError(f"override {set_by[key]!r}: {exc}", exc.key)
        key = parent_key(key)
    where = source.locate(exc.key)
    return RecipeError(f"{where}: {exc}", exc.key) if where else exc


def from_dict(raw: dict[str, Any]) -> Recipe:
    """Validate a plain mapping (e.g. a resolved recipe read back) into a ``Recipe``."""
    recipe = _build(Recipe, merge(Recipe().to_dict(), raw), "")
    _check_components(recipe)
    check_semantics(recipe)
    return recipe


# -- validation -----------------------------------------------------------------------------------
def _unknown_key(key: str, valid: list[str], where: str) -> RecipeError:
    hint = get_close_matches(key, valid, n=1, cutoff=0.5)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    return RecipeError(f"unknown key {where + key!r}{extra} (valid here: {', '.join(valid)})", where + key)


def _unknown_name(name: str, known: list[str], where: str) -> RecipeError:
    hint = get_close_matches(name, known, n=1, cutoff=0.5)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    return RecipeError(f"{where}: unknown name {name!r}{extra} (known: {', '.join(known)})", where)


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise RecipeError(f"{where.rstrip('.') or 'recipe'} must be a mapping, got {raw!r}", where.rstrip(".") or None)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            raise _unknown_key(str(key), names, where)
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in raw]
    if required:
        raise RecipeError(f"{where.rstrip('.') or 'recipe'} needs {', '.join(required)}", where.rstrip(".") or None)
    return cls(**{k: _coerce(v, hints[k], where + k) for k, v in raw.items()})


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if dataclasses.is_dataclass(typ):
        return _build(typ, value, where + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) > 1:  # ``X | list[X]``: the list when a list is given
            lists = [a for a in inner if typing.get_origin(a) is list]
            inner = lists if isinstance(value, (list, tuple)) and lists else [a for a in inner if a not in lists]
        return _coerce(value, inner[0], where)
    if origin is Literal:
        if value not in args:
            raise RecipeError(f"{where}: {value!r} is not one of {list(args)}", where)
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {value!r}", where)
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if typ is dict or origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}", where)
        return value
    if typ in (int, float) and not isinstance(value, bool):
        value = _number(value, typ, where)
    if typ in (bool, int, float, str) and (not isinstance(value, typ) or (typ is int and isinstance(value, bool))):
        raise RecipeError(f"{where}: expected {typ.__name__}, got {value!r}", where)
    return value


def _number(value: Any, typ: type, where: str = "") -> Any:
    """An int/float from a number or a numeric string (YAML 1.1 reads ``1e-3`` as a string)."""
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        number = value
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        if typ is float:
            return float(number)
        if float(number).is_integer():
            return int(number)
    raise RecipeError(f"{where}: expected {typ.__name__}, got {value!r}", where or None)


def registry(section: str) -> dict[str, Callable]:
    """The name → factory registry behind a component section."""
    from . import augment, losses, optim, samplers

    return {
        "sampler": samplers.SAMPLERS,
        "augment": augment.AUGMENTATIONS,
        "loss": losses.LOSSES,
        "optimizer": optim.OPTIMIZERS,
        "scheduler": optim.SCHEDULERS,
    }[section]


def recipe_params(factory: Callable) -> dict[str, Any]:
    """The parameters a recipe may set for a factory: its keyword-only arguments, with defaults
    (``inspect.Parameter.empty`` for a required one)."""
    sig = inspect.signature(factory)
    return {n: p.default for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _check_component(section: str, spec: dict[str, Any], where: str) -> None:
    if not isinstance(spec, dict) or "name" not in spec:
        raise RecipeError(f"{where} needs a 'name' (one of {', '.join(sorted(registry(section)))})", where)
    reg = registry(section)
    if spec["name"] not in reg:
        raise _unknown_name(str(spec["name"]), sorted(reg), f"{where}.name")
    allowed = recipe_params(reg[spec["name"]])
    for key, value in spec.items():
        if key == "name":
            continue
        if key not in allowed:
            raise _unknown_key(key, sorted(allowed), f"{where}.")
        default = allowed[key]
        if type(default) in (int, float) and not isinstance(value, bool):
            spec[key] = _number(value, type(default), f"{where}.{key}")
    for key, default in allowed.items():  # resolved: every parameter written out
        if default is inspect.Parameter.empty and key not in spec:
            raise RecipeError(f"{where} ({spec['name']}) needs {key!r}", where)
        spec.setdefault(key, default)


def _check_components(recipe: Recipe) -> None:
    for section in COMPONENT_SECTIONS:
        _check_component(section, getattr(recipe, section), section)
    for i, spec in enumerate(recipe.augment):
        _check_component("augment", spec, f"augment[{i}]")
    for i, spec in enumerate(recipe.hard_samples.augment if recipe.hard_samples else []):
        _check_component("augment", spec, f"hard_samples.augment[{i}]")


def in_chans(r: Recipe) -> int:
    """Number of input channels the recipe feeds the model."""
    return r.input.channels or {"rgb": 3, "depth": 1, "rgbd": 4}[r.input.modality]
