"""The model registry: one door (create_model), tiny models, timm passthrough, local weights only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferbench.errors import FerbenchError
from ferbench.models import create_model, list_models, model_cfg, register_model


@pytest.mark.parametrize("name", ["tiny_cnn", "tiny_vit"])
@pytest.mark.parametrize("in_chans", [1, 3, 4])
def test_tiny_models_any_channels_and_size(name, in_chans):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=in_chans)
    for side in (64, 48):
        assert model(torch.randn(2, in_chans, side, side)).shape == (2, 7)
    cfg = model.ferbench_cfg
    assert cfg["input_size"] == (in_chans, 64, 64) and len(cfg["mean"]) == len(cfg["std"]) == in_chans
    assert cfg["name"] == name and cfg["num_classes"] == 7 and not cfg["pretrained"]
    assert sum(p.numel() for p in model.parameters()) < 200_000  # CI-sized


def test_registry_lists_and_suggests():
    assert {"tiny_cnn", "tiny_vit"} <= set(list_models())
    assert list_models("tiny_c*") == ["tiny_cnn"]
    with pytest.raises(FerbenchError, match="did you mean 'tiny_cnn'"):
        create_model("tiny_cn", 3, 3)


def test_register_model_contract():
    @register_model(default_cfg=dict(input_size=(1, 48, 48), mean=(0.5,), std=(0.2,), modalities=("rgb",),
                                     paper="test", license="MIT"))
    def _test_linear_model(num_classes: int, in_chans: int, pretrained: bool = False, width: int = 4, **kw) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.Linear(width, num_classes))

    assert model_cfg("_test_linear_model")["input_size"] == (1, 48, 48)
    model = create_model("_test_linear_model", 2, 1, width=8)
    assert model(torch.randn(3, 1, 48, 48)).shape == (3, 2)
    assert model.ferbench_cfg["paper"] == "test"
    with pytest.raises(FerbenchError, match="registered twice"):
        register_model(lambda num_classes, in_chans, pretrained=False: None, name="_test_linear_model")
    with pytest.raises(FerbenchError, match="unknown default_cfg keys"):
        register_model(default_cfg={"inputsize": (3, 8, 8)}, name="_bad_cfg")(lambda **kw: None)


def test_pretrained_without_local_weights_explains_checkpoint():
    for name in ("tiny_cnn", "timm/test_resnet"):
        with pytest.raises(FerbenchError, match="checkpoint=") as err:
            create_model(name, 5, 3, pretrained=True)
        assert "never downloads" in str(err.value)


def test_local_checkpoint_loads_and_skips_a_mismatched_head(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = create_model("tiny_cnn", 7, 3)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "w.pth")
    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    for path in (tmp_path / "w.pth", tmp_path / "w.safetensors"):
        torch.manual_seed(2)
        model = create_model("tiny_cnn", 5, 3, checkpoint=path)
        assert torch.equal(model.features[0][0].weight, source.features[0][0].weight)
        assert model.ferbench_cfg["checkpoint_skipped"] == ["head.2.bias", "head.2.weight"]
        assert model.ferbench_cfg["pretrained"]


def test_timm_passthrough_reads_timm_config():
    cfg = model_cfg("timm/test_resnet")
    assert cfg["input_size"][0] == 3 and len(cfg["mean"]) == 3
    model = create_model("timm/test_resnet", 4, 1)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 4)
    assert model.ferbench_cfg["input_size"] == (1, *cfg["input_size"][1:]) and len(model.ferbench_cfg["mean"]) == 1
    with pytest.raises(FerbenchError, match="timm has no model"):
        model_cfg("timm/resnet_does_not_exist")


def test_timm_pretrained_from_a_local_file(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(3)
    source = create_model("timm/test_resnet", 4, 3)
    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    model = create_model("timm/test_resnet", 4, 3, pretrained=True,
                         pretrained_cfg_overlay=dict(file=str(tmp_path / "w.safetensors"), num_classes=4))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
