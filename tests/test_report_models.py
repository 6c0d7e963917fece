"""Models of the reference reports: forward + backward at the default input size, parameter counts, structure.

Parameter-count rule for Table 6.1 of report 000 (MCCT/VCCT): every parameter of the module, trainable or
frozen (VCCT's total includes its frozen VGG19 trunk), with an 8-class head; each count must be within 3%
of the table.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferbench.errors import FerbenchError
from ferbench.models import _registry as registry
from ferbench.models import cct, create_model, list_models, model_cfg
from ferbench.models.small_vit import gradual_unfreeze

TABLE_6_1 = {"mcct_1": 3.00e6, "mcct_2": 3.44e6, "mcct_3": 3.89e6, "mcct_6": 5.23e6, "mcct_7": 5.67e6,
             "vcct_1": 11.26e6, "vcct_2": 11.71e6}
REPORT_MODELS = [*TABLE_6_1, "fer_cnn", "fer_cnn_v21", "fer_vit", "vit_b16_mlp5", "rgbd_effnet_b2",
                 "rgbd_effnet_b2_rgb", "rgbd_effnet_b2_sum", "rgbd_effnet_b2_avgpool", "rgbd_fusion_tiny"]

_BUILT: dict[str, nn.Module] = {}


def built(name: str, num_classes: int = 8) -> nn.Module:
    """Each report model is built once per test session (the big ones take seconds)."""
    if name not in _BUILT:
        torch.manual_seed(0)
        _BUILT[name] = create_model(name, num_classes, model_cfg(name)["input_size"][0])
    return _BUILT[name]


def n_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def test_every_report_model_is_registered():
    assert set(REPORT_MODELS) <= set(list_models())


@pytest.mark.parametrize("name", REPORT_MODELS)
def test_forward_backward_at_default_input_size(name):
    model = built(name).train()
    cfg = model_cfg(name)
    assert len(cfg["mean"]) == len(cfg["std"]) == cfg["input_size"][0]
    torch.manual_seed(1)
    x = torch.randn(1, *cfg["input_size"])
    out = model(x)
    assert out.shape == (1, 8) and torch.isfinite(out).all()
    out.sum().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", sorted(TABLE_6_1))
def test_parameter_count_matches_table_6_1(name):
    total = n_params(built(name))
    assert abs(total - TABLE_6_1[name]) / TABLE_6_1[name] < 0.03, (name, total)


def test_cct_parts_follow_the_report():
    mcct, vcct = built("mcct_1"), built("vcct_1")
    with torch.no_grad():
        feats = mcct.backbone(torch.zeros(1, 3, 224, 224))
        assert feats.shape == (1, 512, 14, 14)
        assert mcct.patches(feats).shape == (1, 49, 2, 2)  # the report's 2x2x49 encoder input
        assert vcct.backbone(torch.zeros(1, 3, 224, 224)).shape == (1, 512, 14, 14)
    assert len(built("mcct_7").encoder.layers) == 7 and len(built("vcct_2").encoder.layers) == 2
    assert mcct.encoder.layers[0].self_attn.num_heads == 8
    # each added encoder layer costs the same: the Table 6.1 increments are 0.44-0.45M
    assert n_params(built("mcct_2")) - n_params(mcct) == n_params(mcct.encoder.layers[0])
    assert 0.44e6 <= n_params(mcct.encoder.layers[0]) <= 0.45e6
    # mixed kernel sizes and coordinate attention in the MFN
    kernels = {m.kernel_size[0] for m in mcct.backbone.modules() if isinstance(m, nn.Conv2d) and m.groups > 1}
    assert kernels == {3, 5, 7, 9}
    assert any(isinstance(m, cct.CoordinateAttention) for m in mcct.backbone.modules())


def test_vcct_vgg19_is_frozen_and_counted():
    model = built("vcct_1")
    trunk = n_params(model.backbone)
    assert trunk == 10_585_152  # VGG19's 12 conv layers up to the 4th max-pool
    assert n_params(model.backbone, trainable_only=True) == 0
    assert n_params(model, trainable_only=True) == n_params(model) - trunk
    model.train()
    assert not model.backbone.training and model.head.training


def test_vcct_loads_imagenet_vgg19_from_a_local_file(tmp_path):
    source = cct.VGG19Trunk()
    state = {k: v for k, v in source.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full VGG19 file also holds the classifier
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    model = create_model("vcct_1", 8, 1, backbone_checkpoint=str(path))  # 1 channel: first conv summed over RGB
    got = model.backbone.features[2].weight
    assert torch.equal(got, source.features[2].weight)
    assert torch.allclose(model.backbone.features[0].weight, source.features[0].weight.sum(1, keepdim=True))


def test_pretrained_without_weights_on_disk_is_an_error(monkeypatch):
    monkeypatch.setattr(cct, "_vgg19_weights_on_disk", lambda: None)
    with pytest.raises(FerbenchError, match="checkpoint"):
        create_model("vcct_1", 8, pretrained=True)
    with pytest.raises(FerbenchError, match="never downloads"):
        create_model("mcct_1", 8, pretrained=True)
    monkeypatch.setattr(registry, "_cached_timm_weights", lambda arch: None)
    with pytest.raises(FerbenchError, match="backbone_checkpoint"):
        create_model("vit_b16_mlp5", 8, pretrained=True)


def _convs_and_linears(model: nn.Module) -> tuple[list[nn.Conv2d], list[nn.Linear]]:
    modules = list(model.modules())
    return [m for m in modules if isinstance(m, nn.Conv2d)], [m for m in modules if isinstance(m, nn.Linear)]


def test_fer_cnn_structure_report_001():
    model = create_model("fer_cnn", 7, 1)
    convs, linears = _convs_and_linears(model)
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(512 * 3 * 3, 512), (512, 256), (256, 64), (64, 7)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 4
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 4
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.3}


def test_fer_cnn_v21_structure_report_004():
    model = create_model("fer_cnn_v21", 7, 1)
    convs, linears = _convs_and_linears(model)
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    first = list(model.features)[:3]  # conv → ReLU → batch-norm, as the report orders them
    assert [type(m) for m in first] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    assert linears[-1].out_features == 7
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.5}


def test_fer_vit_structure_report_001():
    model = create_model("fer_vit", 7, 1)
    assert model_cfg("fer_vit")["input_size"] == (1, 48, 48)
    assert model.num_patches == 144 and model.patch == 4
    assert (model.embed.in_features, model.embed.out_features) == (16, 16)  # 4×4×1 pixels → projection dim 16
    assert len(model.blocks) == 4 and all(b.attn.heads == 4 for b in model.blocks)
    assert model.head[-1].out_features == 7


def test_vit_b16_mlp5_head_and_gradual_unfreeze():
    model = built("vit_b16_mlp5")
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    assert [lin.in_features for lin in linears] == [768, 512, 256, 128, 64] and linears[-1].out_features == 8
    assert len(model.blocks) == 12 and model.patch_embed.patch_size == (16, 16)
    head = n_params(model.head)
    assert gradual_unfreeze(model, 0) == head
    assert gradual_unfreeze(model, 1) == head + n_params(model.blocks[-1]) + n_params(model.norm)
    assert not model.blocks[-2].attn.qkv.weight.requires_grad
    stem = n_params(model.patch_embed) + model.cls_token.numel() + model.pos_embed.numel()
    assert gradual_unfreeze(model, 12) == n_params(model) - stem
    assert gradual_unfreeze(model, 13) == n_params(model)


def test_rgbd_effnet_b2_structure_report_003():
    model = built("rgbd_effnet_b2")
    assert model.trunks["rgb"].out_chans == 352 and model.pool.grid == 9  # 352×9×9 at 260×260
    assert set(model.trunks) == {"rgb", "depth"} and model.trunks["rgb"] is not model.trunks["depth"]
    assert all(len(model.masks[m].heads) == 4 for m in ("rgb", "depth"))
    assert len(model.pool.encoder.layers) == 4
    assert sum(isinstance(m, nn.Linear) for m in model.head) == 2
    assert model_cfg("rgbd_effnet_b2")["modalities"] == ("rgbd",)
    assert model_cfg("rgbd_effnet_b2_rgb")["input_size"] == (3, 260, 260)


def test_rgbd_ablations_wiring():
    rgb = built("rgbd_effnet_b2_rgb")
    assert set(rgb.trunks) == {"rgb"} and set(rgb.masks) == {"rgb"}
    summed = built("rgbd_effnet_b2_sum")
    assert summed.fusion == "sum" and not hasattr(summed, "masks") and not hasattr(summed.pool, "encoder")
    avg = built("rgbd_effnet_b2_avgpool")
    assert avg.fusion == "attention" and not hasattr(avg.pool, "encoder")
    assert avg.head[0].in_features == 352


def test_rgbd_fusion_uses_depth_and_checks_channels():
    model = built("rgbd_fusion_tiny").eval()
    torch.manual_seed(2)
    x = torch.randn(2, 4, 64, 64)
    y = x.clone()
    y[:, 3] = torch.randn(2, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(y))  # the depth masks steer the RGB features
        with pytest.raises(FerbenchError, match="4 input channels"):
            model(x[:, :3])
    with pytest.raises(FerbenchError, match="takes 4 input channels"):
        create_model("rgbd_fusion_tiny", 7, 3)
    rgb_only = create_model("rgbd_fusion_tiny", 7, 3, modalities=("rgb",))
    assert rgb_only(x[:, :3]).shape == (2, 7)
    other_size = create_model("rgbd_fusion_tiny", 7, 4)
    assert other_size(torch.randn(1, 4, 96, 96)).shape == (1, 7)  # position embedding resampled


def test_rgbd_backbone_checkpoint_loads_both_streams(tmp_path):
    import timm

    source = timm.create_model("mobilenetv3_small_050", pretrained=False)
    path = tmp_path / "trunk.pth"
    torch.save(source.state_dict(), path)
    model = create_model("rgbd_effnet_b2", 7, 4, backbone="mobilenetv3_small_050", img_size=64,
                         backbone_checkpoint=str(path))
    for stream in ("rgb", "depth"):
        assert torch.equal(model.trunks[stream].body.conv_stem.weight, source.conv_stem.weight)
    with pytest.raises(FerbenchError, match="does not exist"):
        create_model("rgbd_effnet_b2", 7, 4, backbone="mobilenetv3_small_050", backbone_checkpoint=str(tmp_path / "x.pth"))
