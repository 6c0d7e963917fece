"""Run-time precision: ``train.precision: auto`` resolves per device (bf16 + channels-last where the CPU
computes bf16 natively, else fp32), explicit fp32 stays exact, and the streaming loader's zero-copy
(channels-last) batches hold the same pixels as before."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from ferbench import runner
from ferbench.models import create_model
from ferbench.train import loop
from ferbench.train.inputs import InputSpec, norm_tensors
from ferbench.train.loader import Loader
from ferbench.train.optim import OPTIMIZERS
from ferbench.train.recipe import TrainCfg, from_dict, load_recipe
from ferbench.train.store import Store

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402


# -- resolution ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_resolves_from_the_cpu_capability(monkeypatch, native, expected):
    monkeypatch.setattr(loop, "native_bf16_cpu", lambda: native)
    assert loop.resolve_precision("auto", "cpu") == expected
    cfg = loop.resolve_train(TrainCfg(precision="auto"), torch.device("cpu"))
    assert (cfg.precision, cfg.channels_last) == (expected, True)


def test_auto_on_cuda_and_other_devices(monkeypatch):
    for bf16, expected in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        assert loop.resolve_precision("auto", "cuda") == expected
    assert loop.resolve_precision("auto", "mps") == "fp32"
    assert loop.resolve_train(TrainCfg(precision="auto"), torch.device("mps")).channels_last is False


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_explicit_precision_is_kept(monkeypatch, precision):
    monkeypatch.setattr(loop, "native_bf16_cpu", lambda: True)
    cfg = TrainCfg(precision=precision)
    assert loop.resolve_train(cfg, torch.device("cpu")) is cfg and loop.resolve_precision(precision, "cpu") == precision


def test_auto_is_the_default_and_the_capability_probe_answers():
    assert TrainCfg().precision == "auto" and from_dict({"protocol": {"manifest": "m"}}).train.precision == "auto"
    assert isinstance(loop.native_bf16_cpu(), bool)


# -- fp32 stays exact ----------------------------------------------------------------------------------
def _store(n: int, size: int, encoded: bool) -> Store:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    spec = InputSpec("rgb", size, 3, (0.5,) * 3, (0.25,) * 3)
    blobs = color = None
    if encoded:
        def png(a):
            b = io.BytesIO()
            Image.fromarray(a).save(b, format="PNG")
            return b.getvalue()
        blobs = pa.array([png(a) for a in pixels], pa.binary())
    else:
        color = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    return Store(spec=spec, sample_ids=[f"t/{i}" for i in range(n)], datasets=["t"] * n, subjects=[None] * n,
                 labels=rng.integers(0, 7, n), color_bytes=blobs, depth_bytes=None, depth_unit=np.ones(n), sources=[],
                 color=color)


def _recipe(precision: str):
    return from_dict({"protocol": {"manifest": "m"}, "model": {"name": "tiny_cnn"}, "scheduler": {"name": "constant"},
                      "train": {"epochs": 1, "batch_size": 8, "precision": precision}})


def _fit(store: Store, precision: str, tmp: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = create_model("tiny_cnn", 7, 3)
    ld = Loader(store, np.arange(len(store)), 8, train=True, sampler=lambda rng: rng.permutation(len(store)))
    loop.fit(net, ld, None, store.spec, _recipe(precision), torch.nn.CrossEntropyLoss(), [], tmp, seed=0, n_classes=7,
             progress=False)
    return net.state_dict()


def test_fp32_run_is_bit_identical_to_a_bare_fp32_loop(tmp_path):
    store = _store(32, 16, encoded=False)
    got = _fit(store, "fp32", tmp_path / "a")

    torch.manual_seed(0)
    net = create_model("tiny_cnn", 7, 3)
    recipe = _recipe("fp32")
    name, params = "adamw", {k: v for k, v in recipe.optimizer.items() if k != "name"}
    opt = OPTIMIZERS[name](net, **params)
    mean, std = norm_tensors(store.spec, "cpu")
    ld = Loader(store, np.arange(32), 8, train=True, sampler=lambda rng: rng.permutation(32))
    torch.manual_seed(loop._seed(0, 0, 0))
    net.train()
    labels = torch.from_numpy(store.labels)
    for idx in ld.index_batches():
        t = torch.from_numpy(idx)
        x = (store.color.index_select(0, t).float().div_(255) - mean) / std
        loss = torch.nn.functional.cross_entropy(net(x).float(), labels.index_select(0, t))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    want = net.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_streamed_channels_last_batches_train_exactly_like_memory_batches(tmp_path):
    encoded, memory = _store(32, 16, encoded=True), _store(32, 16, encoded=False)
    batch = next(iter(Loader(encoded, np.arange(32), 8, train=False)))
    assert batch.color.is_contiguous(memory_format=torch.channels_last)  # decoded HWC, no copy
    assert torch.equal(batch.color, memory.color[:8])
    a, b = _fit(encoded, "fp32", tmp_path / "a"), _fit(memory, "fp32", tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- the loader's zero-copy decode keeps every pixel -----------------------------------------------------
def _reference(data: bytes, size: int, channels: int) -> np.ndarray:
    """The decode before the zero-copy change: (c, H, W) after draft, convert and bilinear resize."""
    with Image.open(io.BytesIO(data)) as im:
        mode = "L" if channels == 1 else "RGB"
        im.draft(mode, (size, size))
        im = im.convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        a = np.asarray(im)
    return np.array(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_the_reference_decode(channels, workers):
    rng = np.random.default_rng(1)
    n, size = 24, 24

    def blob(i):
        s = (16, 24, 40)[i % 3]
        a = rng.integers(0, 256, (s, s, 3), dtype=np.uint8)
        im = Image.fromarray(a if i % 4 else a[..., 0])
        b = io.BytesIO()
        im.save(b, format="JPEG" if i % 2 else "PNG")
        return b.getvalue()

    blobs = [blob(i) for i in range(n)]
    spec = InputSpec("rgb", size, channels, (0.5,) * channels, (0.25,) * channels)
    store = Store(spec=spec, sample_ids=[f"t/{i}" for i in range(n)], datasets=["t"] * n, subjects=[None] * n,
                  labels=rng.integers(0, 7, n), color_bytes=pa.array(blobs, pa.binary()), depth_bytes=None,
                  depth_unit=np.ones(n), sources=[])
    ld = Loader(store, np.arange(n), 8, train=True, sampler=lambda r: r.permutation(n), seed=3, workers=workers)
    ld.set_epoch(1)
    order = np.concatenate(ld.index_batches())
    batches = list(ld)
    got = torch.cat([b.color for b in batches]).numpy()
    assert np.array_equal(got, np.stack([_reference(blobs[i], size, channels) for i in order]))
    assert np.array_equal(torch.cat([b.label for b in batches]).numpy(), store.labels[order])
    store.decode_all(2)
    assert store.color.is_contiguous()
    assert np.array_equal(store.color.numpy(), np.stack([_reference(b, size, channels) for b in blobs]))


# -- the run records what auto chose -------------------------------------------------------------------
def test_an_auto_run_records_the_resolved_precision(tmp_path):
    manifest = tf.write_manifest(tf.make_dataset(tmp_path), tmp_path / "m.parquet")
    job = runner.plan(load_recipe(tf.write_recipe(tmp_path / "r.yaml", manifest, tmp_path / "out",
                                                  train={"precision": "auto"})), folds=[1])[0]
    p = runner.prepare(job, device="cpu")
    chosen = loop.resolve_precision("auto", "cpu")
    assert p.recipe.train.precision == "auto"  # the recipe (and its hash) keep what was asked
    assert (p.precision, p.channels_last) == (chosen, True)
    assert (p.run_recipe.train.precision, p.run_recipe.train.channels_last) == (chosen, True)
    fitted = runner.fit(p)
    ev = runner.evaluate(p, fitted)
    from ferbench.run_record import RunRecord

    env = RunRecord.load(runner.write_run(p, fitted, ev)).environment
    assert env["precision"] == chosen and env.get("channels_last") is True


@pytest.mark.parametrize("norm", ["minmax", "max", "scale"])
def test_depth_scalings(norm):
    """minmax: valid depths to [0.1, 1]; max: ÷ the map's largest depth (report 003's Eq. 3.1); scale:
    ÷ depth_scale_mm; a pixel without surface stays 0 in each."""
    from ferbench.geometry.render.storage import depth_to_png
    from ferbench.train.decode import decode_depth
    from ferbench.train.inputs import InputSpec

    mm = np.array([[np.nan, 100.0], [150.0, 200.0]])
    spec = InputSpec("depth", 2, 1, (0.0,), (1.0,), depth_norm=norm, depth_scale_mm=400.0)
    got = decode_depth(depth_to_png(mm), 2, 0.1, spec)[0]
    expected = {"minmax": [[0, 0.1], [0.55, 1.0]], "max": [[0, 0.5], [0.75, 1.0]], "scale": [[0, 0.25], [0.375, 0.5]]}[norm]
    np.testing.assert_allclose(got, expected, atol=1e-6)
