"""Model registry: ``@register_model`` on a builder function, ``create_model(name, ...)`` as the one door.

A builder has the signature ``fn(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module``
and is registered with its default config::

    @register_model(default_cfg=dict(input_size=(3, 64, 64), mean=(0.5,) * 3, std=(0.5,) * 3,
                                     modalities=("rgb",), paper="...", license="..."))
    def my_net(num_classes, in_chans, pretrained=False, **kw): ...

Every timm architecture is reachable as ``timm/<name>`` (built with ``pretrained=False``; its input
size and normalisation come from timm's pretrained config). Nothing is ever downloaded: pretrained
weights come from a local ``checkpoint=`` file or from a cache that is already filled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from difflib import get_close_matches
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable

from ..errors import FerbenchError
from ..registry import Registry, UnknownNameError

TIMM_PREFIX = "timm/"
#: Keys every default config has (filled from ``DEFAULT_CFG`` where a model leaves them out).
DEFAULT_CFG: dict[str, Any] = {
    "input_size": (3, 224, 224),
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "modalities": ("rgb",),
    "paper": None,
    "license": None,
}


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder and its default config."""

    fn: Callable[..., Any]
    cfg: dict[str, Any]


#: The registered model builders (timm models are not members: they are reached as ``timm/<name>``).
MODELS: Registry[ModelEntry] = Registry("model", populate=("ferbench.models",))


def register_model(fn: Callable | None = None, *, default_cfg: dict[str, Any] | None = None, name: str | None = None):
    """Register a model builder under its function name (or ``name``), with its default config."""

    def wrap(f: Callable) -> Callable:
        key = name or f.__name__
        if key.startswith(TIMM_PREFIX):
            raise FerbenchError(f"model names may not start with {TIMM_PREFIX!r}: {key}")
        unknown = set(default_cfg or {}) - set(DEFAULT_CFG)
        if unknown:
            raise FerbenchError(f"model {key!r}: unknown default_cfg keys {sorted(unknown)}; known: {sorted(DEFAULT_CFG)}")
        if key in MODELS and MODELS[key].fn is f:  # the same builder again (module reload)
            return f
        cfg = {**DEFAULT_CFG, **(default_cfg or {}), "architecture": key}
        MODELS.register(key, ModelEntry(f, cfg), origin=getattr(f, "__module__", None))
        return f

    return wrap(fn) if fn is not None else wrap


def list_models(pattern: str = "*", include_timm: bool = False) -> list[str]:
    """Registered model names matching a glob; timm's as ``timm/<name>`` too with ``include_timm``
    or when the pattern starts with ``timm/`` (e.g. ``timm/resnet*``)."""
    names = MODELS.names(pattern)
    if include_timm or pattern.startswith(TIMM_PREFIX):
        import timm

        names += [TIMM_PREFIX + n for n in timm.list_models() if fnmatchcase(TIMM_PREFIX + n, pattern)]
    return names


def model_cfg(name: str) -> dict[str, Any]:
    """The default config of a model: input_size (C, H, W), mean, std, modalities, paper, license."""
    if name.startswith(TIMM_PREFIX):
        return _timm_cfg(name[len(TIMM_PREFIX):])
    return dict(_entry(name).cfg)


def create_model(
    name: str,
    num_classes: int,
    in_chans: int = 3,
    pretrained: bool = False,
    checkpoint: str | Path | None = None,
    **kw: Any,
):
    """Build model ``name`` with a ``num_classes`` head for ``in_chans`` input channels.

    ``checkpoint`` loads local weights (``.pth``/``.pt``/``.safetensors``; tensors whose shape does
    not fit, e.g. another head, are skipped and listed in ``model.ferbench_cfg``). ``pretrained=True``
    without a checkpoint only works where the weights are already on disk; nothing is downloaded.
    The returned module carries ``model.ferbench_cfg`` (the default config adapted to ``in_chans``).
    """
    cfg = model_cfg(name)
    if name.startswith(TIMM_PREFIX):
        model = _create_timm(name[len(TIMM_PREFIX):], num_classes, in_chans, pretrained and checkpoint is None, **kw)
    else:
        model = _entry(name).fn(num_classes=num_classes, in_chans=in_chans, pretrained=pretrained and checkpoint is None, **kw)
    cfg = adapt_cfg(cfg, in_chans)
    cfg.update(name=name, num_classes=num_classes, pretrained=bool(pretrained or checkpoint))
    if checkpoint is not None:
        cfg["checkpoint"] = str(checkpoint)
        cfg["checkpoint_skipped"] = load_checkpoint(model, checkpoint)
    model.ferbench_cfg = cfg
    return model


def adapt_cfg(cfg: dict[str, Any], in_chans: int) -> dict[str, Any]:
    """A config whose mean/std/input_size have ``in_chans`` entries: 1 → channel average; a 1-channel
    config asked for more channels repeats its value (grayscale brought to RGB); extra channels
    beyond 3 (depth) are padded with 0.5."""
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if in_chans == 1 and len(mean) != 1:
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    elif len(mean) == 1 and in_chans > 1:
        mean, std = mean * min(in_chans, 3), std * min(in_chans, 3)
        mean, std = mean + (0.5,) * (in_chans - len(mean)), std + (0.5,) * (in_chans - len(std))
    elif in_chans > len(mean):
        mean, std = mean + (0.5,) * (in_chans - len(mean)), std + (0.5,) * (in_chans - len(std))
    else:
        mean, std = mean[:in_chans], std[:in_chans]
    return {**cfg, "input_size": (in_chans, *tuple(cfg["input_size"])[1:]), "mean": mean, "std": std, "in_chans": in_chans}


def no_pretrained_weights(name: str) -> FerbenchError:
    """The error a builder raises for ``pretrained=True`` when it has no weights on disk."""
    return FerbenchError(
        f"no pretrained weights for {name!r} on this machine, and ferbench never downloads at run time.\n"
        f"Pass a local file instead: create_model({name!r}, ..., checkpoint='/path/to/weights.pth' or "
        f"'.safetensors') — in a recipe: model.checkpoint=/path/to/weights.safetensors.\n"
        f"For timm models you may also pass pretrained_cfg_overlay=dict(file='/path/to/weights.safetensors') "
        f"(recipe: model.kwargs.pretrained_cfg_overlay.file=...), or fill the Hugging Face cache beforehand."
    )


def load_checkpoint(model, path: str | Path) -> list[str]:
    """Load a local state dict into ``model``; returns the keys skipped because they are absent or misfit."""
    path = Path(path)
    if not path.is_file():
        raise FerbenchError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict_ema", "state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
                break
    state = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state.items()}
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not fit:
        raise FerbenchError(f"checkpoint {path} shares no tensor with the model (wrong architecture?)")
    model.load_state_dict(fit, strict=False)
    return sorted(set(state) - set(fit)) + sorted(set(own) - set(state))


def model_version(name: str) -> str:
    """What identifies a model's code: the source hash of its module, or the timm version."""
    if name.startswith(TIMM_PREFIX):
        import timm

        return f"timm-{timm.__version__}"
    import sys

    from ..fingerprint import source_hash

    return source_hash(sys.modules[_entry(name).fn.__module__])


def _entry(name: str) -> ModelEntry:
    if name in MODELS:
        return MODELS[name]
    tail = "any timm model as timm/<name>"
    if "did you mean" not in MODELS.unknown(name) and _is_timm(name):
        tail = f"timm has it: use {TIMM_PREFIX + name!r}"
    raise UnknownNameError(f"{MODELS.unknown(name)}; {tail}")


def _is_timm(arch: str) -> bool:
    import timm

    return bool(timm.is_model(arch))


def _timm_cfg(arch: str) -> dict[str, Any]:
    import timm
    from timm.models import get_pretrained_cfg

    if not timm.is_model(arch):
        hint = get_close_matches(arch, timm.list_models(), n=1)
        extra = f" (did you mean 'timm/{hint[0]}'?)" if hint else ""
        raise UnknownNameError(f"timm has no model {arch!r}{extra}")
    pc = get_pretrained_cfg(arch)
    # timm adapts the stem to any in_chans, so every modality fits
    cfg = {**DEFAULT_CFG, "architecture": TIMM_PREFIX + arch, "modalities": ("rgb", "depth", "rgbd")}
    if pc is not None:
        cfg.update(input_size=tuple(pc.input_size), mean=tuple(pc.mean), std=tuple(pc.std), license=pc.license)
        cfg["paper"] = pc.paper_ids or pc.paper_name
    return cfg


def _create_timm(arch: str, num_classes: int, in_chans: int, pretrained: bool, **kw: Any):
    import timm

    overlay = kw.pop("pretrained_cfg_overlay", None)
    if pretrained and not (overlay and overlay.get("file")):
        cached = _cached_timm_weights(arch)
        if cached is None:
            raise no_pretrained_weights(TIMM_PREFIX + arch)
        overlay = {**(overlay or {}), "file": cached}
    return timm.create_model(
        arch, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, pretrained_cfg_overlay=overlay, **kw
    )


def _cached_timm_weights(arch: str) -> str | None:
    """A weights file timm would use for ``arch`` that is already on disk (HF cache or torch hub), else None."""
    from timm.models import get_pretrained_cfg

    pc = get_pretrained_cfg(arch)
    if pc is None:
        return None
    if pc.file and os.path.isfile(pc.file):
        return pc.file
    if pc.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        names = [pc.hf_hub_filename] if pc.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for filename in names:
            found = try_to_load_from_cache(pc.hf_hub_id, filename)
            if isinstance(found, str):
                return found
    if pc.url:
        import torch

        local = Path(torch.hub.get_dir()) / "checkpoints" / Path(pc.url).name
        if local.is_file():
            return str(local)
    return None
