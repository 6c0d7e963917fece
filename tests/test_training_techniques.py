"""Training techniques of the report recipes: focal / center / island loss, SAM, oversampling,
RandAugment and crops on RGB-D, per-fold normalisation, parameter-group learning rates and schedules,
and report 001's hard-sample phase."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ferbench import runner
from ferbench.errors import FerbenchError
from ferbench.models import create_model
from ferbench.protocols import read_manifest
from ferbench.train import loop
from ferbench.train.augment import AUGMENTATIONS
from ferbench.train.inputs import InputSpec
from ferbench.train.loader import Loader
from ferbench.train.samplers import SAMPLERS, inverse_frequency
from ferbench.train.store import fold_stats, open_store, split_indices
from ferbench.train.hard_samples import misclassified
from ferbench.train.losses import LOSSES
from ferbench.train.losses_metric import classifier_of, island_gradient, island_term
from ferbench.train.optim import OPTIMIZERS, SCHEDULERS
from ferbench.train.recipe import RecipeError, from_dict, load_recipe
from ferbench.train.sam import SAM, sam_step

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402


# -- losses ---------------------------------------------------------------------------------------------
def test_focal_loss_matches_a_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    p0, p1 = math.exp(2) / (math.exp(2) + 1), math.e / (1 + math.e)
    expected = (-(1 - p0) ** 2 * math.log(p0) - (1 - p1) ** 2 * math.log(p1)) / 2
    assert LOSSES["focal"](2, [1, 1], gamma=2.0)(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    # class weights: alpha_y = 1/N_y scaled to mean 1 (counts 3 and 1 -> 0.5 and 1.5)
    weighted = (-0.5 * (1 - p0) ** 2 * math.log(p0) - 1.5 * (1 - p1) ** 2 * math.log(p1)) / 2
    assert LOSSES["focal"](2, [3, 1], class_weights="inverse")(logits, labels).item() == pytest.approx(weighted, rel=1e-6)
    ce = nn.functional.cross_entropy(logits, labels)
    assert LOSSES["focal"](2, [1, 1], gamma=0.0)(logits, labels).item() == pytest.approx(ce.item(), rel=1e-6)


class _Net(nn.Module):
    """Features = the input (2-d); head = a linear classifier, so the loss sees known features."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.head = nn.Linear(2, classes)

    def forward(self, x):
        return self.head(x)


def _metric_loss(name: str, centers: list[list[float]], **kw):
    loss = LOSSES[name](len(centers), [1] * len(centers), **kw)
    net = _Net(len(centers))
    handle = loss.attach(net)
    loss.centers = torch.tensor(centers)
    return loss, net, handle


def test_center_and_island_loss_values_by_hand():
    centers = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    feats = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1])
    for name, kw in (("center", {}), ("island", {"island_weight": 10.0})):
        loss, net, _ = _metric_loss(name, centers, weight=0.01, **kw)
        loss.eval()  # value only: eval mode leaves the centers alone
        logits = net(feats)
        compact = 0.5 * (1.0 + 4.0) / 2  # ½ mean ||f - c_y||²: distances 1 and 2
        # ordered pairs: cos(c0,c1) = 0, cos(c0,c2) = cos(c1,c2) = 1/√2
        island = 2 * ((0 + 1) + 2 * (1 / math.sqrt(2) + 1))
        metric = compact + (10.0 * island if name == "island" else 0.0)
        expected = nn.functional.cross_entropy(logits, labels).item() + 0.01 * metric
        assert loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
        assert torch.equal(loss.centers, torch.tensor(centers))
    assert island_term(torch.tensor(centers)).item() == pytest.approx(island, rel=1e-6)


def test_centers_move_toward_class_means_at_their_own_rate():
    centers = [[0.0, 0.0], [4.0, 4.0], [-1.0, 2.0]]
    feats = torch.tensor([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0], [0.0, 0.0]])  # class 0 x3 (mean (2, 3)), class 1 x1
    labels = torch.tensor([0, 0, 0, 1])
    moves = {}
    for lr in (0.5, 0.25):
        loss, net, _ = _metric_loss("center", centers, center_lr=lr)
        loss(net(feats), labels)  # training mode: one SGD step of the centers
        moves[lr] = loss.centers - torch.tensor(centers)
        c = torch.tensor(centers)
        expected = c.clone()
        expected[0] = c[0] - lr * 3 * (c[0] - torch.tensor([2.0, 3.0])) / (1 + 3)
        expected[1] = c[1] - lr * 1 * (c[1] - torch.tensor([0.0, 0.0])) / (1 + 1)
        assert torch.allclose(loss.centers, expected)  # class 2 is absent from the batch: unmoved
        assert all(p is not loss.centers for p in net.parameters())  # not a model parameter
    assert torch.allclose(moves[0.25] * 2, moves[0.5])  # the step scales with the centers' own rate
    # the island update adds lambda_I / (K - 1) times the gradient of the pairwise cosines
    loss, net, _ = _metric_loss("island", centers, center_lr=0.5, island_weight=10.0)
    c = torch.tensor(centers)
    loss(net(feats), labels)
    center_term = torch.stack([3 * (c[0] - torch.tensor([2.0, 3.0])) / 4, c[1] / 2, torch.zeros(2)])
    assert torch.allclose(loss.centers, c - 0.5 * (center_term + 10.0 / 2 * island_gradient(c)), atol=1e-6)


def test_island_thesis_form_follows_eqs_2_19_and_2_21():
    """``form: thesis``: CE + λ1·L_C + λ2·L_I (λ2 not multiplied by λ1) and the island update scaled by
    1/(1 + K) without λ."""
    centers = [[0.0, 0.0], [4.0, 4.0], [-1.0, 2.0]]
    feats = torch.tensor([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0], [0.0, 0.0]])
    labels = torch.tensor([0, 0, 0, 1])
    c = torch.tensor(centers)
    loss, net, _ = _metric_loss("island", centers, weight=0.01, island_weight=10.0, center_lr=0.5, form="thesis")
    loss.eval()
    logits = net(feats)
    compact = 0.5 * (feats - c[labels]).pow(2).sum(1).mean()
    expected = nn.functional.cross_entropy(logits, labels) + 0.01 * compact + 10.0 * island_term(c)
    assert loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    loss.train()
    loss(net(feats), labels)
    center_term = torch.stack([3 * (c[0] - torch.tensor([2.0, 3.0])) / 4, c[1] / 2, torch.zeros(2)])
    assert torch.allclose(loss.centers, c - 0.5 * (center_term + island_gradient(c) / (1 + 3)), atol=1e-6)
    with pytest.raises(FerbenchError, match="form 'paper' is not one of cai, thesis"):
        LOSSES["island"](3, [1, 1, 1], form="paper")


def test_island_gradient_is_the_cosine_gradient_and_pushes_centers_apart():
    c = torch.tensor([[1.0, 0.2, 0.0], [0.8, 0.5, 0.1], [-0.3, 1.0, 0.4]], requires_grad=True)
    (auto,) = torch.autograd.grad(island_term(c), c)  # ordered pairs count each cosine twice
    assert torch.allclose(island_gradient(c.detach()), auto / 2, atol=1e-6)
    stepped = c.detach() - 0.1 * island_gradient(c.detach())
    assert island_term(stepped) < island_term(c.detach())


def test_metric_loss_sees_the_classifier_input_and_checkpoints_its_centers():
    model = create_model("tiny_cnn", 3, 3)
    assert classifier_of(model) is model.head
    loss = LOSSES["island"](3, [2, 2, 2])
    with pytest.raises(FerbenchError, match="attach"):
        loss(torch.zeros(2, 3), torch.tensor([0, 1]))
    handle = loss.attach(model)
    out = loss(model(torch.rand(4, 3, 16, 16)), torch.tensor([0, 1, 2, 0]))
    out.backward()
    assert loss.centers.shape == (3, 128) and loss.centers.grad is None
    fresh = LOSSES["island"](3, [2, 2, 2])
    fresh.load_state_dict(loss.state_dict())
    assert torch.equal(fresh.centers, loss.centers)
    handle.remove()


# -- SAM --------------------------------------------------------------------------------------------
def _sam_setup(scale: float | None):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    opt = OPTIMIZERS["sam"](model, rho=0.1, lr=0.5, momentum=0.0, weight_decay=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale or 1.0, enabled=scale is not None)

    def forward(first: bool):
        logits = model(x)
        return logits, nn.functional.cross_entropy(logits, y)

    return model, opt, scaler, forward


def test_sam_two_steps_restore_the_weights_then_step_with_the_perturbed_gradient():
    model, opt, _, forward = _sam_setup(None)
    assert isinstance(opt, SAM)
    w0 = [p.detach().clone() for p in model.parameters()]
    forward(True)[1].backward()
    g = [p.grad.clone() for p in model.parameters()]
    norm = torch.sqrt(sum((t ** 2).sum() for t in g))
    assert opt.first_step()
    for p, w, gi in zip(model.parameters(), w0, g):
        assert torch.allclose(p, w + 0.1 * gi / norm)
    opt.zero_grad()
    forward(False)[1].backward()
    g2 = [p.grad.clone() for p in model.parameters()]
    opt.restore()
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), w0))  # bit-exact
    opt.step()
    for p, w, gi in zip(model.parameters(), w0, g2):
        assert torch.allclose(p, w - 0.5 * gi)


def test_sam_under_grad_scaler_gives_the_unscaled_update_and_skips_overflow():
    plain, opt, scaler, forward = _sam_setup(None)
    sam_step(plain, opt, scaler, forward)
    scaled, opt_s, scaler_s, forward_s = _sam_setup(1024.0)
    sam_step(scaled, opt_s, scaler_s, forward_s)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert scaler_s.get_scale() == 1024.0  # no overflow, no change
    # a non-finite first gradient: no perturbation
    model, opt, _, forward = _sam_setup(None)
    forward(True)[1].backward()
    next(model.parameters()).grad[0, 0] = float("inf")
    before = [p.detach().clone() for p in model.parameters()]
    assert not opt.first_step()
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), before))


def test_sam_shares_groups_with_its_base_so_schedules_and_state_dicts_work():
    model, opt, scaler, forward = _sam_setup(None)
    sched = SCHEDULERS["step"](opt, 20, 1, step_epochs=10, gamma=0.1)
    for _ in range(10):
        sam_step(model, opt, scaler, forward)
        sched.step()
    assert opt.base.param_groups[0]["lr"] == pytest.approx(0.05) and opt.param_groups is opt.base.param_groups
    other = _sam_setup(None)[1]
    other.load_state_dict(opt.state_dict())
    assert other.param_groups[0]["lr"] == pytest.approx(0.05) and other.param_groups is other.base.param_groups


# -- sampler, optimiser groups, schedules, recipe checks ------------------------------------------------------
def test_oversampler_weights_are_inverse_class_counts_and_an_epoch_is_twice_the_set():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    assert np.allclose(inverse_frequency(labels), [1 / 6] * 6 + [1 / 3] * 3 + [1.0])
    sampler = SAMPLERS["class_balanced"](labels, epoch_factor=2.0)
    draws = [sampler(np.random.default_rng(s)) for s in range(400)]
    assert {len(d) for d in draws} == {20}
    freq = np.bincount(labels[np.concatenate(draws)], minlength=3) / (400 * 20)
    assert np.allclose(freq, 1 / 3, atol=0.02)  # each class equally likely


def test_parameter_group_learning_rates_and_one_cycle_floor():
    model = create_model("rgbd_fusion_tiny", 3, 4)
    opt = OPTIMIZERS["adamw"](model, lr=1e-3, weight_decay=0.1, lr_groups={"trunks.": 1e-4})
    trunk = {id(p) for p in model.trunks.parameters()}
    for group in opt.param_groups:
        in_trunk = {id(p) in trunk for p in group["params"]}
        assert len(in_trunk) == 1
        assert group["lr"] == (1e-4 if in_trunk.pop() else 1e-3)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    with pytest.raises(FerbenchError, match="match no trainable"):
        OPTIMIZERS["adamw"](model, lr_groups={"trunk_": 1e-4})
    sched = SCHEDULERS["onecycle"](opt, 2, 5, min_lr=1e-6)
    lrs = []
    for _ in range(10):
        lrs.append(sorted({g["lr"] for g in opt.param_groups}))
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx([1e-6]) and lrs[-1][0] < 2e-6 and max(max(x) for x in lrs) > 5e-4


def test_plateau_follows_its_own_monitor(toy, tmp_path):
    """A vanishing lr freezes the model: the val loss stops improving, so ×0.9 after each flat epoch."""
    recipe = load_recipe(tf.write_recipe(
        tmp_path / "r.yaml", toy[1], tmp_path / "runs", model={"name": "tiny_vit"},
        optimizer={"name": "adamw", "lr": 1e-12}, train={"epochs": 3, "monitor": "balanced_accuracy"},
        scheduler={"name": "plateau", "factor": 0.9, "patience": 0, "monitor": "loss"}))
    (run_dir,) = runner.run_recipe(recipe, folds=[0])
    lrs = [float(row.split(",")[1]) for row in (run_dir / "curves.csv").read_text().splitlines()[1:]]
    assert lrs == pytest.approx([1e-12, 1e-12, 0.9e-12])
    val = {"loss": 0.5, "balanced_accuracy": 0.7}
    assert loop._score(recipe, val, 1.0, "loss") == -0.5 and loop._score(recipe, val, 1.0) == 0.7
    with pytest.raises(FerbenchError, match="monitor"):
        SCHEDULERS["plateau"](OPTIMIZERS["sgd"](nn.Linear(2, 2)), 1, 1, monitor="acc")


@pytest.mark.parametrize(("raw", "message"), [
    ({"optimizer": {"name": "sam"}, "train": {"accum_steps": 2}}, "accum_steps"),
    ({"input": {"normalize": "train", "mean": [0.5, 0.5, 0.5]}}, "normalize=train"),
    ({"reported": {"metric": "accuracy"}}, "reported needs value"),
    ({"reported": {"value": 50.0, "metric": "top1"}}, "not one of"),
    ({"hard_samples": {"augment": [{"name": "flip"}]}}, "hard_samples.augment[0]"),
    ({"hard_samples": {"augment_epochs": 0}}, "augment_epochs at least 1"),
])
def test_recipe_checks_for_the_new_sections(raw, message):
    with pytest.raises(RecipeError) as err:
        from_dict({"protocol": {"manifest": "m.parquet"}, **raw})
    assert message in str(err.value)


# -- augmentation: one geometry for RGB and depth -----------------------------------------------------------
def _same_in_every_channel(x: torch.Tensor) -> bool:
    return all(torch.equal(x[:, 0], x[:, c]) for c in range(1, x.shape[1]))


def test_geometric_augmentations_move_rgb_and_depth_identically():
    img = torch.rand(16, 1, 24, 24)
    x = img.expand(-1, 4, -1, -1).contiguous()  # RGB = depth: any geometric difference would show
    geometric = [AUGMENTATIONS["randaugment"](ops=["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"]),
                 AUGMENTATIONS["resized_crop"](), AUGMENTATIONS["affine"](degrees=20.0, translate=0.1)]
    for aug in geometric:
        out = aug(x, torch.Generator().manual_seed(1), 3)
        assert _same_in_every_channel(out) and not torch.equal(out, x)
    photometric = AUGMENTATIONS["randaugment"](ops=["Brightness", "Contrast", "Posterize", "Solarize", "Equalize"])
    out = photometric(x, torch.Generator().manual_seed(1), 3)
    assert torch.equal(out[:, 3], x[:, 3]) and not torch.equal(out[:, :3], x[:, :3])  # depth untouched


def test_randaugment_gives_depth_exactly_the_geometry_its_sample_drew():
    x = torch.rand(32, 4, 24, 24)
    aug = AUGMENTATIONS["randaugment"](num_ops=2, magnitude=9)
    both = aug(x, torch.Generator().manual_seed(3), 3)
    rgb = aug(x[:, :3], torch.Generator().manual_seed(3), 3)
    depth = aug(x[:, 3:], torch.Generator().manual_seed(3), 0)  # no colour channel: photometric ops are no-ops
    assert torch.equal(both[:, :3], rgb) and torch.equal(both[:, 3:], depth)
    assert not torch.equal(both, x)
    with pytest.raises(FerbenchError, match="unknown ops"):
        AUGMENTATIONS["randaugment"](ops=["Twist"])


# -- per-fold normalisation -------------------------------------------------------------------------------
def test_normalisation_statistics_come_from_the_train_role_only(toy, tmp_path):
    data, manifest = toy
    m = read_manifest(manifest)
    spec = InputSpec("rgbd", 16, 4, (0.5,) * 4, (0.25,) * 4)
    store = open_store(m, [data], spec)
    idx = split_indices(m, store, 0, 0)
    color, depth = store.decode_batch(idx["train"])
    valid = depth[:, 0][depth[:, 0] > 0]
    expected_mean = [float((color[:, c] / 255.0).mean()) for c in range(3)] + [float(valid.mean())]
    expected_std = [float((color[:, c] / 255.0).std()) for c in range(3)] + [float(valid.std())]
    mean, std = fold_stats(store, idx["train"], chunk=5)
    assert np.allclose(mean, expected_mean) and np.allclose(std, expected_std, atol=1e-6)
    everything = np.sort(np.concatenate(list(idx.values())))
    assert not np.allclose(fold_stats(store, everything)[0], mean)  # val/test would change them
    store.decode_all(1)
    assert np.allclose(fold_stats(store, idx["train"])[0], mean)  # the memory cache gives the same

    recipe = load_recipe(tf.write_recipe(tmp_path / "r.yaml", manifest, tmp_path / "runs",
                                         input={"modality": "rgbd", "normalize": "train"}))
    (run_dir,) = runner.run_recipe(recipe, folds=[0])
    norm = json.loads((run_dir / "result.json").read_text())["recipe"]["input_norm"]
    assert norm["from"] == "train" and np.allclose(norm["mean"], mean) and np.allclose(norm["std"], std)


# -- report 001's hard-sample phase -------------------------------------------------------------------------
class _Constant(nn.Module):
    def __init__(self, cls: int, classes: int = 3):
        super().__init__()
        self.logits = nn.Parameter(torch.nn.functional.one_hot(torch.tensor(cls), classes).float())

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def test_misclassified_is_exactly_the_wrongly_predicted_train_samples(toy):
    m = read_manifest(toy[1])
    spec = InputSpec("rgb", 16, 3, (0.5,) * 3, (0.25,) * 3)
    store = open_store(m, [toy[0]], spec)
    train = split_indices(m, store, 0, 0)["train"]
    loader = Loader(store, train, 5, train=False)
    for cls in range(3):
        hard = misclassified(_Constant(cls), loader, spec)
        assert np.array_equal(hard, train[store.labels[train] != cls])


def test_hard_sample_phase_trains_on_the_samples_phase_one_got_wrong(toy, tmp_path):
    """lr 0 and a model without batch statistics: phase 1 leaves the initial weights, so the hard set is
    what the freshly initialised model gets wrong."""
    sections = dict(model={"name": "tiny_vit"}, optimizer={"name": "adamw", "lr": 0.0},
                    hard_samples={"epochs": 2, "augment_epochs": 1, "augment": [{"name": "hflip"}]})
    recipe = load_recipe(tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs", **sections))
    (run_dir,) = runner.run_recipe(recipe, folds=[0])

    m = read_manifest(toy[1])
    spec = InputSpec("rgb", 16, 3, (0.5,) * 3, (0.25,) * 3)
    store = open_store(m, [toy[0]], spec)
    train = split_indices(m, store, 0, 0)["train"]
    torch.manual_seed(0)  # the runner seeds with the job's seed before building the model
    model = create_model("tiny_vit", 3, 3)
    expected = misclassified(model, Loader(store, train, 8, train=False), spec)
    assert 0 < len(expected) < len(train)

    phases = json.loads((run_dir / "metrics.json").read_text())["selection"]["phases"]
    assert [p["phase"] for p in phases] == ["1", "2-hard", "2-augmented"]
    assert [p["samples"] for p in phases] == [len(train), len(expected), len(train)]
    assert [p["epochs_ran"] for p in phases] == [1, 2, 1]
    rows = (run_dir / "curves.csv").read_text().splitlines()
    assert rows[0].endswith("phase") and [r.rsplit(",", 1)[1] for r in rows[1:]] == ["1", "2-hard", "2-hard", "2-augmented"]


def test_gradual_unfreezing_trains_the_head_first_then_one_more_block_every_n_epochs(toy, tmp_path):
    """``train.unfreeze_every=1`` on a 3-block timm ViT: epoch 0 trains the head only, epoch 1 adds the
    last block and the final norm, epoch 2 the next block (counted in each epoch's curves row)."""
    kwargs = {"img_size": 16, "patch_size": 8, "depth": 3, "embed_dim": 32, "num_heads": 2}
    recipe = load_recipe(tf.write_recipe(
        tmp_path / "r.yaml", toy[1], tmp_path / "runs", model={"name": "timm/vit_tiny_patch16_224", "kwargs": kwargs},
        train={"epochs": 3, "unfreeze_every": 1, "precision": "fp32"}, scheduler={"name": "constant"}))
    (run_dir,) = runner.run_recipe(recipe, folds=[0])
    rows = (run_dir / "curves.csv").read_text().splitlines()
    col = rows[0].split(",").index("trainable_params")
    trainable = [int(float(r.split(",")[col])) for r in rows[1:]]
    model = create_model("timm/vit_tiny_patch16_224", 3, 3, False, None, **kwargs)
    count = lambda *mods: sum(p.numel() for m in mods for p in m.parameters())  # noqa: E731
    assert trainable == [count(model.head), count(model.head, model.norm, model.blocks[2]),
                         count(model.head, model.norm, model.blocks[1], model.blocks[2])]
    with pytest.raises(FerbenchError, match="needs a timm ViT"):
        loop._unfreezer(create_model("tiny_vit", 3, 3, False, None), 2, 1)


def test_val_marks_split_an_epoch_into_fractions():
    assert loop.val_marks(0.1, 100) == {10 * k - 1: k / 10 for k in range(1, 10)}
    assert loop.val_marks(0.5, 4) == {1: 0.5} and loop.val_marks(None, 10) == {} and loop.val_marks(0.5, 1) == {}


def test_validation_part_way_through_epochs_is_seen_by_selection(toy, tmp_path):
    """``train.val_every=0.25``: three extra validations per epoch (curves rows marked mid_epoch), and the
    tested weights are those of the best of all validations."""
    recipe = load_recipe(tf.write_recipe(
        tmp_path / "r.yaml", toy[1], tmp_path / "runs",
        train={"epochs": 2, "batch_size": 3, "val_every": 0.25, "precision": "fp32", "monitor": "accuracy"}))  # 4 batches
    (run_dir,) = runner.run_recipe(recipe, folds=[0])
    import csv
    import json

    with (run_dir / "curves.csv").open() as f:
        rows = list(csv.DictReader(f))
    mid = [r for r in rows if r["mid_epoch"] == "True"]
    ends = [r for r in rows if r["mid_epoch"] != "True"]
    assert len(ends) == 2 and len(mid) == 6 and [round(float(r["epoch"]) % 1, 2) for r in mid[:3]] == [0.25, 0.5, 0.75]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    sel = metrics["selection"]
    accs = [float(r["val_accuracy"]) for r in rows]
    best = max(range(len(rows)), key=lambda k: (accs[k], -k))  # the first of the best
    at = float(rows[best]["epoch"])
    expected = (int(at), round(at % 1, 4) or 1.0) if rows[best]["mid_epoch"] == "True" else (int(at), 1.0)
    assert (sel["epoch"], round(sel["epoch_fraction"], 4), sel["epochs_ran"]) == (*expected, 2)
    assert metrics["val"]["accuracy"] == pytest.approx(accs[best])  # the tested weights are that validation's
    with pytest.raises(RecipeError, match="val_every=1.5"):
        from_dict({"protocol": {"manifest": "m.parquet"}, "train": {"val_every": 1.5}})
