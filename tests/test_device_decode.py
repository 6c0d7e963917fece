"""JPEGs decoded by torchvision's batched decoder instead of loader workers (``data.decode: gpu``),
and the choice between the two. No GPU here: the same code runs torchvision's CPU decoder, which
gives libjpeg-turbo's pixels, so at the input size the batches must equal the CPU loader's exactly."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from ferbench.bench.inputs import faces
from ferbench.errors import FerbenchError
from ferbench.train.device_decode import DeviceDecoder, gpu_decode_unavailable, jpeg_only
from ferbench.train.inputs import InputSpec
from ferbench.train.loader import Loader
from ferbench.train.store import Store
from ferbench.train.throughput import HEADROOM, choose_decode, cpu_decode_rate, model_rate


def _jpeg(pixels: np.ndarray, **kw) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", **kw)
    return out.getvalue()


def _pixels(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    return list(faces(n, size, seed))  # the benchmark's face-like pictures


def _store(blobs: list[bytes], size: int, channels: int = 3, sliced: bool = False) -> Store:
    n = len(blobs)
    images = pa.array([b"pad"] + blobs, pa.binary())[1:] if sliced else pa.array(blobs, pa.binary())
    spec = InputSpec("rgb", size, channels, (0.5,) * channels, (0.25,) * channels)
    return Store(spec=spec, sample_ids=[f"t/{i:03d}" for i in range(n)], datasets=["t"] * n, subjects=[None] * n,
                 labels=np.arange(n) % 7, color_bytes=images, depth_bytes=None, depth_unit=np.ones(n), sources=[])


def _pairs(store: Store, batch: int = 5):
    n = len(store)
    kw = dict(train=True, sampler=lambda rng: rng.permutation(n), seed=1)
    on_device, on_cpu = Loader(store, np.arange(n), batch, decode="gpu", **kw), Loader(store, np.arange(n), batch, **kw)
    assert on_device._loader is None and on_device._decoder is not None
    return list(zip(on_device, on_cpu, strict=True))


@pytest.mark.parametrize("sliced", [False, True])
def test_device_batches_at_the_input_size_equal_the_cpu_loader(sliced):
    kinds = [{}, {"subsampling": 0}, {"subsampling": 1}, {"progressive": True}, {"quality": 97}]
    blobs = [_jpeg(p, **kinds[i % len(kinds)]) for i, p in enumerate(_pixels(23, 32))]
    pairs = _pairs(_store(blobs, 32, sliced=sliced))
    assert len(pairs) == 4  # 23 samples, batch 5, training drops the last partial batch
    for gpu, cpu in pairs:
        assert gpu.color.shape == cpu.color.shape == (5, 3, 32, 32)
        assert gpu.color.stride() == cpu.color.stride()  # channels-last strides on both paths
        assert torch.equal(gpu.color, cpu.color) and torch.equal(gpu.label, cpu.label)
        assert gpu.depth is None and cpu.depth is None


@pytest.mark.parametrize("stored, size, mean, p99", [(100, 224, 0.25, 1), (224, 112, 1.5, 8)])
def test_device_resizing_is_close_to_pillows(stored, size, mean, p99):
    """Stated tolerance: upsampling (RAF-DB's aligned 100² to 224²) agrees within one level;
    halving agrees to 1.5 levels on average (Pillow decodes at half scale in the DCT domain)."""
    for gpu, cpu in _pairs(_store([_jpeg(p) for p in _pixels(10, stored, seed=2)], size)):
        diff = (gpu.color.int() - cpu.color.int()).abs().float()
        assert gpu.color.shape == (5, 3, size, size)
        assert diff.mean() <= mean and diff.quantile(0.99) <= p99


def test_grey_input_is_the_jpeg_luma_plane_on_both_paths():
    for gpu, cpu in _pairs(_store([_jpeg(p) for p in _pixels(10, 32, seed=3)], 32, channels=1)):
        assert gpu.color.shape == (5, 1, 32, 32) and torch.equal(gpu.color, cpu.color)


def test_the_decoder_reads_the_arrow_buffer_in_place():
    blobs = [_jpeg(p) for p in _pixels(4, 16)]
    decoder = DeviceDecoder(_store(blobs, 16, sliced=True), "cpu")
    assert [bytes(t.numpy()) for t in decoder.encoded([3, 0])] == [blobs[3], blobs[0]]


def test_only_a_streamed_colour_jpeg_store_on_cuda_can_decode_on_the_device():
    jpegs = _store([_jpeg(p) for p in _pixels(3, 16)], 16)
    png = io.BytesIO()
    Image.fromarray(_pixels(1, 16)[0]).save(png, "PNG")
    mixed = _store([_jpeg(p) for p in _pixels(2, 16)] + [png.getvalue()], 16)
    assert jpeg_only(jpegs.color_bytes) and not jpeg_only(mixed.color_bytes)
    assert not jpeg_only(pa.array([b"\xff\xd8\xff\xe0", None], pa.binary())) and not jpeg_only(None)
    assert "torchvision decodes JPEGs on CUDA devices only" in gpu_decode_unavailable(jpegs, "cpu")
    assert gpu_decode_unavailable(jpegs, "cuda") is None
    assert "not every colour image" in gpu_decode_unavailable(mixed, "cuda")


def test_choose_decode_keeps_cpu_unless_the_cpu_cannot_keep_up(monkeypatch):
    store = _store([_jpeg(p) for p in _pixels(6, 16)], 16)
    never = lambda: pytest.fail("the model is timed only when auto has to compare")  # noqa: E731
    assert choose_decode("cpu", store, "cuda", 4, never).used == "cpu"
    assert choose_decode("auto", store, "cpu", 4, never).used == "cpu"
    with pytest.raises(FerbenchError, match="data.decode: gpu cannot be used here: the device is cpu"):
        choose_decode("gpu", store, "cpu", 4, never)
    cached = dataclasses.replace(store, color=torch.zeros(6, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(FerbenchError, match=r"decoded once into memory \(data.cache\) \(hint: data.decode: auto or cpu; "
                                            r"or data.cache: stream, which decodes every epoch\)"):
        choose_decode("gpu", cached, "cuda", 4, never)
    with pytest.raises(FerbenchError, match="'nvjpeg' is not one of auto, cpu, gpu"):
        choose_decode("nvjpeg", store, "cpu", 4, never)
    monkeypatch.setattr("ferbench.train.throughput.cpu_decode_rate", lambda store, workers: 1000.0)
    slow = choose_decode("auto", store, "cuda", 4, lambda: 1000.0 / HEADROOM + 1)
    fast = choose_decode("auto", store, "cuda", 4, lambda: 1000.0 / HEADROOM - 1)
    assert (slow.used, fast.used) == ("gpu", "cpu")
    assert slow.to_json() == {"asked": "auto", "used": "gpu", "cpu_decode_per_s": 1000.0, "model_per_s": 834.3,
                              "why": "4 CPU worker(s) decode about 1000/s, below 1.2x the 834/s the model trains on"}


def test_measured_rates_are_positive_and_leave_the_model_alone():
    store = _store([_jpeg(p) for p in _pixels(8, 16)], 16)
    one, two = cpu_decode_rate(store, 1), cpu_decode_rate(store, 2)
    assert one > 0 and two > 0
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(7))
    net(torch.zeros(1, 3, 16, 16))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert model_rate(net, store.spec, 4, "cpu", "fp32", channels_last=True, steps=1, warmup=1) > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_a_torchvision_without_decode_jpeg_leaves_auto_on_the_cpu(monkeypatch):
    import torchvision.io

    from ferbench.train.decode import torchvision_jpeg

    store = _store([_jpeg(p) for p in _pixels(2, 16)], 16)
    monkeypatch.delattr(torchvision.io, "decode_jpeg")
    torchvision_jpeg.cache_clear()  # looked up once per process: this test changes what it finds
    try:
        assert gpu_decode_unavailable(store, "cuda") == "this torchvision has no decode_jpeg"
        assert choose_decode("auto", store, "cuda", 2, lambda: 1e9).used == "cpu"
    finally:
        monkeypatch.undo()
        torchvision_jpeg.cache_clear()


def test_a_run_records_its_decode_choice_and_gpu_on_cpu_is_one_line(toy, tmp_path, capsys):
    import json

    import train_fixtures as tf

    from ferbench.cli import main

    recipe = tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs", train={"epochs": 1}, data={"cache": "stream"})
    assert main(["run", str(recipe), "--folds", "0"]) == 0
    (result,) = (tmp_path / "runs").glob("*/result.json")
    decode = json.loads(result.read_text())["environment"]["decode"]
    assert decode == {"asked": "auto", "used": "cpu", "cpu_decode_per_s": None, "model_per_s": None,
                      "why": "the device is cpu, and torchvision decodes JPEGs on CUDA devices only"}
    capsys.readouterr()
    gpu = tf.write_recipe(tmp_path / "g.yaml", toy[1], tmp_path / "runs-g", data={"decode": "gpu", "cache": "stream"})
    assert main(["run", str(gpu), "--folds", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert not any("Traceback" in line for line in err) and err[0].startswith("ferbench run g: device cpu")
    assert err[1:] == ["ferbench run: error: data.decode: gpu cannot be used here: the device is cpu, and torchvision "
                       "decodes JPEGs on CUDA devices only (hint: data.decode: auto or cpu)"]
    assert not list((tmp_path / "runs-g").glob("*/result.json"))


def _variants(size: int) -> dict[str, bytes]:
    rgb, grey = _pixels(1, size, seed=5)[0], _pixels(1, size, seed=6)[0][..., 1]
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation "rotate 90": ignored by both decoders
    out = {f"subsampling {k}": _jpeg(rgb, subsampling=k) for k in (0, 1, 2)}
    out |= {"progressive": _jpeg(rgb, progressive=True), "optimized": _jpeg(rgb, optimize=True),
            "exif": _jpeg(rgb, exif=exif.tobytes()), "grey": _jpeg(grey)}
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, "JPEG")
    return out | {"cmyk": cmyk.getvalue()}


@pytest.mark.parametrize("channels", [3, 1])
def test_cpu_decoding_of_a_jpeg_at_the_input_size_gives_pillows_pixels(channels):
    """``decode_color`` takes torchvision's decoder for these (one copy fewer); Pillow decoding the
    same bytes by itself must give the same pixels, whatever the JPEG's kind."""
    from ferbench.train.decode import _jpeg_at_size, decode_color, jpeg_size

    mode = "RGB" if channels == 3 else "L"
    for kind, data in _variants(40).items():
        assert jpeg_size(data) == (40, 40) and _jpeg_at_size(data, channels) is not None, kind  # torchvision's path
        with Image.open(io.BytesIO(data)) as im:
            im.draft(mode, (40, 40))
            pillow = np.asarray(im.convert(mode)).reshape(40, 40, channels)
        assert np.array_equal(decode_color(data, 40, channels), pillow), kind


def test_jpeg_size_reads_the_frame_header_or_says_none():
    from ferbench.train.decode import jpeg_size

    data = _variants(24)["exif"]
    assert jpeg_size(data) == (24, 24)
    assert jpeg_size(_jpeg(np.zeros((10, 30, 3), np.uint8))) == (30, 10)  # width, height
    assert jpeg_size(data[:2] + b"\xff" + data[2:]) == (24, 24)  # a fill byte before a marker
    assert jpeg_size(data[:20]) is None and jpeg_size(b"\x89PNG\r\n") is None and jpeg_size(b"\xff\xd8xx" + data[4:]) is None
