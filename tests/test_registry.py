"""The one Registry type: its contract, the registries built on it, and every registered model building."""

from __future__ import annotations

import sys
import textwrap
import types

import pytest
import torch

from ferbench.errors import FerbenchError
from ferbench.registry import Registry, UnknownNameError


def _module(name: str, code: str, **env) -> types.ModuleType:
    """Run ``code`` as the body of a module called ``name`` (so registration sees that module)."""
    mod = types.ModuleType(name)
    mod.__dict__.update(env)
    exec(textwrap.dedent(code), mod.__dict__)
    return mod


# -- the contract -----------------------------------------------------------------------------------
def test_duplicate_name_names_both_modules():
    reg: Registry = Registry("widget")
    code = """
    @reg.decorator(lambda f: f.__name__)
    def spanner():
        pass
    """
    first = _module("plugins.first", code, reg=reg)
    with pytest.raises(FerbenchError, match=r"widget 'spanner' registered twice: in plugins\.first and in plugins\.second"):
        _module("plugins.second", code, reg=reg)
    assert reg["spanner"] is first.spanner and reg.origin("spanner") == "plugins.first"
    reg.register("spanner", first.spanner)  # the same member again (a module reload) is fine
    assert reg.names() == ["spanner"]


def test_unknown_name_is_one_line_with_the_closest_name():
    reg: Registry = Registry("widget")
    for name in ("spanner", "hammer", "screwdriver"):
        reg.register(name, object(), origin="here")
    with pytest.raises(UnknownNameError) as err:
        reg.get("spaner")
    message = str(err.value)
    assert "\n" not in message and "unknown widget 'spaner'" in message and "(did you mean 'spanner'?)" in message
    assert message.endswith("known: hammer, screwdriver, spanner")
    with pytest.raises(UnknownNameError) as far:
        reg["xyzzy"]
    assert "did you mean" not in str(far.value)
    assert isinstance(far.value, FerbenchError)


def test_glob_listing_membership_and_iteration():
    reg: Registry = Registry("widget")
    for name in ("rgb_a", "rgb_b", "rgbd_a", "depth_a"):
        reg.register(name, name.upper(), origin="here")
    assert reg.names() == ["depth_a", "rgb_a", "rgb_b", "rgbd_a"]
    assert reg.names("rgb_*") == ["rgb_a", "rgb_b"]
    assert reg.names("rgb?_a") == ["rgbd_a"]
    assert reg.names("[dr]*_a") == ["depth_a", "rgb_a", "rgbd_a"]
    assert reg.names("RGB*") == []  # case-sensitive
    assert reg.items()[0] == ("depth_a", "DEPTH_A")
    assert "rgb_a" in reg and "rgb" not in reg and list(reg) == reg.names() and len(reg) == 4


def test_populate_imports_on_first_lookup_only(tmp_path, monkeypatch):
    holder = types.ModuleType("_registry_test_holder")
    holder.REG = Registry("gadget", populate=("_registry_test_members",))
    monkeypatch.setitem(sys.modules, holder.__name__, holder)
    (tmp_path / "_registry_test_members.py").write_text(
        "from _registry_test_holder import REG\nREG.register('lamp', 1)\nREG.register('lantern', 2)\nIMPORTS = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "_registry_test_members", raising=False)
    reg = holder.REG
    assert "_registry_test_members" not in sys.modules  # creating the registry imports nothing
    assert reg.get("lamp") == 1  # the first lookup fills it
    members = sys.modules["_registry_test_members"]
    assert reg.names("lan*") == ["lantern"] and "lamp" in reg and reg.origin("lantern") == "_registry_test_members"
    with pytest.raises(UnknownNameError, match="did you mean 'lamp'"):
        reg.get("lamb")
    assert sys.modules["_registry_test_members"] is members and members.IMPORTS == 1  # imported once


# -- the registries built on it -----------------------------------------------------------------------
def _registries() -> dict[str, tuple[Registry, str, str]]:
    """Each project registry with a misspelt name and the member its hint should name."""
    from ferbench.datasets import DATASETS
    from ferbench.merges import MERGES
    from ferbench.models import MODELS
    from ferbench.protocols.base import PROTOCOLS
    from ferbench.train.losses import LOSSES
    from ferbench.train.optim import OPTIMIZERS, SCHEDULERS

    return {
        "model": (MODELS, "tiny_cn", "tiny_cnn"),
        "loss": (LOSSES, "focl", "focal"),
        "optimizer": (OPTIMIZERS, "adam", "adamw"),
        "scheduler": (SCHEDULERS, "cosin", "cosine"),
        "merge": (MERGES, "globl", "global"),
        "dataset": (DATASETS, "ckpls", "ckplus"),
        "protocol": (PROTOCOLS, "ckplus7x", "ckplus7"),
    }


@pytest.mark.parametrize("kind", sorted(_registries()))
def test_every_registry_is_a_registry_with_hints(kind):
    reg, typo, meant = _registries()[kind]
    assert isinstance(reg, Registry) and reg.kind == kind and meant in reg
    assert reg.origin(meant).startswith("ferbench.")
    with pytest.raises(UnknownNameError, match=f"did you mean '{meant}'"):
        reg.get(typo)


def test_models_merges_and_components_keep_their_doors(tmp_path):
    from ferbench.merges import merge
    from ferbench.models import create_model, model_cfg

    with pytest.raises(UnknownNameError, match="did you mean 'avfer'"):
        merge("avfr", [], tmp_path / "out")
    with pytest.raises(UnknownNameError, match="timm has it: use 'timm/resnet18'"):
        model_cfg("resnet18")
    with pytest.raises(UnknownNameError, match="did you mean 'tiny_vit'"):
        create_model("tiny_vt", 3)


def test_model_globs_reach_timm(capsys):
    from ferbench.models import list_models

    assert "tiny_cnn" in list_models("tiny_*") and not any(n.startswith("timm/") for n in list_models())
    timm_resnets = list_models("timm/resnet1*")
    assert "timm/resnet18" in timm_resnets and all(n.startswith("timm/resnet1") for n in timm_resnets)
    assert "timm/resnet18" in list_models("*resnet18", include_timm=True)
    assert _models_command("timm/resnet1*") == 0  # `ferbench models 'timm/resnet1*'`
    assert "timm/resnet18" in capsys.readouterr().out.split()
    assert _models_command("resnet18") == 1
    assert "timm/..." in capsys.readouterr().err


def _models_command(pattern: str) -> int:
    import argparse

    from ferbench.commands import models

    parser = argparse.ArgumentParser()
    models.register(parser.add_subparsers())
    args = parser.parse_args(["models", pattern])
    return args.func(args)


# -- every registered model builds ----------------------------------------------------------------------
#: Models left out of the CPU build check, with the reason. Every model builds and runs one image at its
#: default size in under 2 s on one CPU core today (vit_b16_mlp5, 86 M parameters, is the slowest).
TOO_HEAVY_FOR_CPU: dict[str, str] = {}


def _model_names() -> list[str]:
    from ferbench.models import list_models

    return [n for n in list_models() if not n.startswith("_")]  # "_..." are test-registered models


@pytest.mark.parametrize("name", _model_names())
def test_every_registered_model_builds_and_runs(name):
    from ferbench.models import create_model, model_cfg

    if name in TOO_HEAVY_FOR_CPU:
        pytest.skip(TOO_HEAVY_FOR_CPU[name])
    size = model_cfg(name)["input_size"]
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_chans=size[0]).eval()
    with torch.no_grad():
        out = model(torch.randn(1, *size))
    assert out.shape == (1, 3) and torch.isfinite(out).all()
    assert model.ferbench_cfg["input_size"] == tuple(size) and model.ferbench_cfg["num_classes"] == 3
