"""Conversion under faults: outputs that must not be written, concurrent and killed conversions,
damaged or unexpected images, symbolic links, undecodable text and crafted cards.

Every test states the exact outcome: exit status, error text, faults (kind, file), notes, and
what is (or is not) left on disk.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferbench.build import convert
from ferbench.cli import main
from ferbench.converted import CARD_FILE, DatasetDirError, OutputError, open_dataset, read_card, read_table
from ferbench.datasets.rafdb.layout import Sample, write_basic
from ferbench.errors import ConversionError, SampleError
from ferbench.imageio import MIN_SIDE, encode_png, verify_image

REPO = Path(__file__).resolve().parents[1]
ALIGNED = "Image/aligned"


# -- helpers ----------------------------------------------------------------------------------------
def _jpeg(seed: int, size: int = 48, **kw) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.kron(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def _encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _raf(root: Path, images: dict[str, bytes]) -> Path:
    """A RAF-DB basic tree whose aligned images are ``images`` (name → bytes, written verbatim)."""
    write_basic(root, [Sample(name, i % 7 + 1, data) for i, (name, data) in enumerate(sorted(images.items()))])
    return root


def _good(n: int) -> dict[str, bytes]:
    return {f"train_{i:05d}": _jpeg(i) for i in range(1, n + 1)}


def _snapshot(top: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``top`` → (size, mtime_ns): equal snapshots mean nothing was touched."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), top)] = (st.st_size, st.st_mtime_ns)
    return out


def _faults(result) -> list[tuple[str, str]]:
    return [(f["kind"], f["file"]) for f in result.report["faults"]]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "TQDM_DISABLE": "1"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ferbench", *args]


# -- 1. outputs that must not be written -----------------------------------------------------------
@pytest.mark.parametrize("where, word", [(".", "is"), ("sub/out", "is inside"), ("..", "holds")])
def test_out_is_inside_or_around_raw_refused_nothing_touched(tmp_path, capsys, where, word):
    raw = _raf(tmp_path / "top" / "raw", _good(3))
    out = raw / where
    (raw / "sub").mkdir()
    before = _snapshot(tmp_path)
    rc = main(["convert", "rafdb", str(raw), "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and f"--out {out} {word} the raw directory {raw}" in err
    assert _snapshot(tmp_path) == before


def test_out_through_a_link_into_raw_refused(tmp_path, capsys):
    raw = _raf(tmp_path / "raw", _good(2))
    (tmp_path / "alias").symlink_to(raw)
    before = _snapshot(tmp_path)
    assert main(["convert", "rafdb", str(raw), "--out", str(tmp_path / "alias" / "out")]) == 2
    assert "is inside the raw directory" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_overwrite_replaces_only_what_ferbench_wrote(tmp_path, capsys):
    raw = _raf(tmp_path / "raw", _good(3))
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    (mine / "notes" / "thesis.tex").write_text("years of work")
    before = _snapshot(tmp_path)
    assert main(["convert", "rafdb", str(raw), "--out", str(mine), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"--overwrite replaces only a dataset directory ferbench wrote; {mine} holds no ferbench card" in err
    assert _snapshot(tmp_path) == before
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OutputError, match=f"{afile} is not a directory"):
        convert("rafdb", raw, afile, overwrite=True, workers=1)
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(OutputError, match=f"{link} is a symbolic link"):
        convert("rafdb", raw, link, overwrite=True, workers=1)
    # a dataset directory (this layout or the first one's dataset.json) or an empty one: replaced
    convert("rafdb", raw, tmp_path / "ds", workers=1)
    assert convert("rafdb", raw, tmp_path / "ds", overwrite=True, workers=1).num_rows == 3
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "dataset.json").write_text(json.dumps({"name": "x", "fingerprint": "ab" * 8, "shards": ["part-00000.parquet"]}))
    (legacy / "part-00000.parquet").write_bytes(b"old")
    assert convert("rafdb", raw, legacy, overwrite=True, workers=1).num_rows == 3
    assert not (legacy / "part-00000.parquet").exists() and (legacy / CARD_FILE).is_file()
    (tmp_path / "empty").mkdir()
    assert convert("rafdb", raw, tmp_path / "empty", overwrite=True, workers=1).num_rows == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "ds", "empty", "legacy", "link", "mine", "raw"]


def test_out_appearing_during_conversion_is_never_replaced(tmp_path, monkeypatch):
    """The swap re-checks what is at OUT: a folder created meanwhile by someone else survives."""
    import ferbench.build as build

    raw = _raf(tmp_path / "raw", _good(3))
    out = tmp_path / "out"
    finish = build.finish

    def intruder(tmp, *args):
        out.mkdir()
        (out / "theirs.txt").write_text("keep me")
        return finish(tmp, *args)

    monkeypatch.setattr(build, "finish", intruder)
    with pytest.raises(OutputError, match=f"{out} exists; pass --overwrite"):
        convert("rafdb", raw, out, workers=1)
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]
    shutil_rm(out)
    with pytest.raises(OutputError, match="holds no ferbench card"):
        convert("rafdb", raw, out, workers=1, overwrite=True)
    assert (out / "theirs.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]  # no temp dir, no lock file


def shutil_rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


# -- 2 and 3. concurrent and killed conversions ------------------------------------------------------
#: Items in the tree the process tests convert: enough for a few seconds and several blocks.
BIG = 10_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A RAF-DB tree of BIG small JPEGs and its uninterrupted conversion (shard bytes)."""
    top = tmp_path_factory.mktemp("big")
    pool = [_jpeg(i, 32) for i in range(64)]
    raw = _raf(top / "raw", {f"train_{i:05d}": pool[i % 64] for i in range(1, BIG + 1)})
    ref = convert("rafdb", raw, top / "reference", workers=2, progress=False)
    shards = {s: (ref.out_dir / s).read_bytes() for s in read_card(ref.out_dir).shards}
    assert ref.num_rows == BIG and len(shards) >= 4
    return raw, shards


def _start(raw: Path, out: Path, workers: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        _cli("convert", "rafdb", str(raw), "--out", str(out), "--workers", str(workers), *extra),
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_converting(proc: subprocess.Popen, out: Path, timeout: float = 60) -> None:
    """Return once a shard file exists in OUT's temporary directory (the workers are writing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(out.parent.glob(f".{out.name}.tmp-*/data/*.parquet")):
            return
        assert proc.poll() is None, f"convert ended before writing anything: {proc.communicate()}"
        time.sleep(0.01)
    raise AssertionError("convert wrote no shard in time")


def _children(pid: int) -> set[int]:
    try:
        import psutil

        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except ImportError:
        found = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == pid:
                    found.add(int(entry))
        return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _all_dead(pids: set[int], timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.02)
    return {p for p in pids if _alive(p)}


@pytest.mark.parametrize("workers, sig", [(1, signal.SIGKILL), (2, signal.SIGKILL), (1, signal.SIGTERM), (2, signal.SIGTERM)])
def test_killed_convert_leaves_no_orphan_and_no_partial_output(big, tmp_path, workers, sig):
    raw, reference = big
    out = tmp_path / "out"
    proc = _start(raw, out, workers)
    try:
        _wait_converting(proc, out)
        children = _children(proc.pid)
        assert len(children) == (workers if workers > 1 else 0)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _all_dead(children) == set(), "worker processes outlived the killed convert"
    assert not out.exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert f"terminated by a signal; nothing written to {out}" in stderr
        assert left == []  # temp dir removed, lock released and removed
    else:
        assert proc.returncode == -signal.SIGKILL
        assert [n for n in left if not n.endswith(".lock")] and all(n.startswith(".out.") for n in left)
    again = convert("rafdb", raw, out, workers=workers, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the killed run's temp dir is gone
    if sig == signal.SIGKILL:
        assert any("removed 1 temporary folder(s)" in n for n in again.report["notes"])
    assert {s: (out / s).read_bytes() for s in read_card(out).shards} == reference


def test_second_conversion_to_the_same_out_is_refused_while_the_first_runs(big, tmp_path):
    raw, reference = big
    out = tmp_path / "out"
    first = _start(raw, out, 1)
    try:
        _wait_converting(first, out)
        for extra in ((), ("--overwrite",)):
            second = subprocess.run(_cli("convert", "rafdb", str(raw), "--out", str(out), *extra),
                                    cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60)
            assert second.returncode == 2
            assert second.stderr.strip() == (
                f"ferbench convert: error: {out} is being written by another ferbench process (pid {first.pid}); "
                "wait for it to finish or choose another --out"
            )
        stdout, stderr = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    assert {s: (out / s).read_bytes() for s in read_card(out).shards} == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- 4. damaged and unexpected images ---------------------------------------------------------------
def _garbage_middle(data: bytes, fill: bytes) -> bytes:
    """Same header and end marker, ``fill`` over bytes in the middle."""
    at = len(data) // 2
    return data[:at] + fill + data[at + len(fill):]


def test_image_damaged_mid_file_is_a_bad_image_fault(tmp_path):
    good = _jpeg(1, 96)
    png = encode_png(np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    images = {
        "train_00001": good,
        "train_00002": _garbage_middle(_jpeg(2, 96), bytes(64)),  # zeros: no stray marker, only decoding tells
        "train_00003": _garbage_middle(_jpeg(3, 96), b"\xff\x13" + bytes(range(40))),  # a stray marker
        "train_00004": _garbage_middle(png, b"garbage!"),
    }
    for name in ("train_00002", "train_00003"):
        assert images[name][:2] == b"\xff\xd8" and images[name].endswith(b"\xff\xd9")
    raw = _raf(tmp_path / "raw", images)
    result = convert("rafdb", raw, tmp_path / "out", workers=1)
    assert result.num_rows == 1
    assert _faults(result) == [("bad-image", f"{ALIGNED}/train_{i:05d}_aligned.jpg") for i in (2, 3, 4)]
    reasons = [f["reason"] for f in result.report["faults"]]
    assert "damaged JPEG" in reasons[0] and "damaged JPEG" in reasons[1] and "fails its CRC" in reasons[2]
    with pytest.raises(ConversionError, match=f"--strict: bad-image in {ALIGNED}/train_00002_aligned.jpg"):
        convert("rafdb", raw, tmp_path / "strict", workers=1, strict=True)
    # the documented opt-out: headers and end markers only, so the damaged JPEGs get through
    lax = convert("rafdb", raw, tmp_path / "lax", workers=1, decode_check=False)
    assert lax.num_rows == 4 and lax.report["decode_check"] is False
    assert any(n.startswith("--no-decode-check") for n in lax.report["notes"])


def test_damaged_image_fault_in_parallel_conversion_too(tmp_path):
    images = _good(9)
    images["train_00005"] = _garbage_middle(images["train_00005"], bytes(48))
    result = convert("rafdb", _raf(tmp_path / "raw", images), tmp_path / "out", workers=2)
    assert result.num_rows == 8 and _faults(result) == [("bad-image", f"{ALIGNED}/train_00005_aligned.jpg")]


def test_unexpected_modes_and_sizes_are_normalised_or_faults(tmp_path):
    rng = np.random.default_rng(5)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    big_gif = Image.fromarray(np.kron(rng.integers(0, 256, (40, 50), dtype=np.uint8), np.ones((100, 100), np.uint8))).convert("P")
    frames = [Image.fromarray(np.full((16, 16, 3), 80 * i, np.uint8)) for i in range(3)]
    images = {
        "train_00001": _jpeg(1),  # kept as stored
        "train_00002": _encoded(rgb.convert("CMYK"), "JPEG"),
        "train_00003": _encoded(rgb.convert("RGBA"), "PNG"),
        "train_00004": encode_png(rng.integers(0, 65536, (20, 20), dtype=np.uint16)),
        "train_00005": encode_png(np.zeros((2, 3), np.uint8)),  # 3x2 px
        "train_00006": _encoded(big_gif, "GIF"),  # 5000x4000
        "train_00007": _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
    }
    raw = _raf(tmp_path / "raw", images)
    result = convert("rafdb", raw, tmp_path / "out", workers=1)
    assert _faults(result) == [("bad-image", f"{ALIGNED}/train_0000{i}_aligned.jpg") for i in (5, 7)]
    reasons = [f["reason"] for f in result.report["faults"]]
    assert reasons == ["3x2 px: a side under 4 px holds no face", "3 frames (GIF); a sample is one still image"]
    notes = [n for n in result.report["notes"] if "normalised" in n]
    assert notes == [
        f"1 rgb image(s) normalised, GIF L → grey PNG (first: {ALIGNED}/train_00006_aligned.jpg)",
        f"1 rgb image(s) normalised, JPEG CMYK → RGB PNG (first: {ALIGNED}/train_00002_aligned.jpg)",
        f"1 rgb image(s) normalised, PNG I;16 16-bit → grey PNG (first: {ALIGNED}/train_00004_aligned.jpg)",
        f"1 rgb image(s) normalised, PNG RGBA → RGB PNG (alpha dropped) (first: {ALIGNED}/train_00003_aligned.jpg)",
    ]
    rows = {r["sample_id"]: r["rgb"]["bytes"] for r in read_table(tmp_path / "out").to_pylist()}
    assert rows["rafdb/train_00001"] == images["train_00001"]  # untouched bytes
    modes = {sid: (im.format, im.mode, im.size) for sid, b in rows.items() for im in [Image.open(io.BytesIO(b))]}
    assert modes == {
        "rafdb/train_00001": ("JPEG", "RGB", (48, 48)),
        "rafdb/train_00002": ("PNG", "RGB", (24, 24)),
        "rafdb/train_00003": ("PNG", "RGB", (24, 24)),
        "rafdb/train_00004": ("PNG", "L", (20, 20)),
        "rafdb/train_00006": ("PNG", "L", (5000, 4000)),
    }
    sixteen = np.asarray(Image.open(io.BytesIO(rows["rafdb/train_00004"])))
    original = np.asarray(Image.open(io.BytesIO(images["train_00004"]))).astype(np.uint16)
    assert np.array_equal(sixteen, (original >> 8).astype(np.uint8))


@pytest.mark.parametrize("options", [{}, {"optimize": True}, {"progressive": True}, {"subsampling": 0}, {"restart_marker_blocks": 3}])
def test_valid_jpegs_pass_and_keep_their_bytes(options):
    for seed, size in ((1, 8), (2, 37), (3, 96)):
        data = _jpeg(seed, size, **options)
        checked = verify_image(data, "x.jpg")
        assert checked.data is data and checked.change is None
        assert (checked.info.format, checked.info.width) == ("JPEG", size // 8 * 8)


def test_verify_image_reasons():
    jpeg = _jpeg(4, 96)
    cases = {
        b"": "empty file",
        jpeg[: len(jpeg) // 2]: "truncated JPEG",
        jpeg[:-2] + b"\xff\xd8": "unexpected marker 0xFFD8",
        _garbage_middle(jpeg, bytes(64)): "damaged JPEG",
        encode_png(np.zeros((MIN_SIDE - 1, 9), np.uint8)): f"9x{MIN_SIDE - 1} px",
    }
    for data, reason in cases.items():
        with pytest.raises(SampleError) as err:
            verify_image(data, "f.jpg")
        assert err.value.kind == "bad-image" and reason in err.value.reason and err.value.file == "f.jpg"
    depth = encode_png(np.arange(64, dtype=np.uint16).reshape(8, 8) * 500)
    assert verify_image(depth, role="depth").change is None  # depth is validated, never normalised


# -- 5. symbolic links ----------------------------------------------------------------------------
def _ck_tree(root: Path) -> Path:
    from ferbench.datasets.ckplus.layout import CKSequence, write_official

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(4)]
    write_official(root, [CKSequence("S005", 1, frames, emotion=3)])
    return root


@pytest.mark.parametrize("dataset", ["ckplus", "rafdb"])
def test_dangling_and_looping_links_are_one_fault_each(tmp_path, dataset):
    if dataset == "ckplus":
        raw = _ck_tree(tmp_path / "raw")
        folder, names, rows = raw / "cohn-kanade-images/S005/001", ["S005_001_%08d.png" % i for i in (5, 6, 7)], 4
    else:
        raw = _raf(tmp_path / "raw", _good(4))
        extra = "".join(f"train_{i:05d}.jpg 1\n" for i in (5, 6, 7))
        with open(raw / "EmoLabel/list_patition_label.txt", "a") as fh:
            fh.write(extra)
        folder, names, rows = raw / ALIGNED, [f"train_{i:05d}_aligned.jpg" for i in (5, 6, 7)], 4
    dangling, loop_a, loop_b = (folder / n for n in names)
    dangling.symlink_to(folder / "nowhere.png")
    loop_a.symlink_to(loop_b.name)
    loop_b.symlink_to(loop_a.name)
    result = convert(dataset, raw, tmp_path / "out", workers=1)
    rel = folder.relative_to(raw).as_posix()
    assert result.num_rows == rows
    bad = sorted(((f["kind"], f["file"]), f["reason"].split(" (")[0]) for f in result.report["faults"] if f["kind"] == "bad-link")
    assert bad == [
        (("bad-link", f"{rel}/{names[0]}"), "dangling symbolic link"),
        (("bad-link", f"{rel}/{names[1]}"), "symbolic link loop"),
        (("bad-link", f"{rel}/{names[2]}"), "symbolic link loop"),
    ]
    with pytest.raises(ConversionError, match="--strict: bad-link in "):
        convert(dataset, raw, tmp_path / "strict", workers=1, strict=True)


def test_link_outside_the_raw_directory_needs_the_flag(tmp_path, capsys):
    raw = _raf(tmp_path / "raw", _good(3))
    secret = tmp_path / "elsewhere" / "photo.jpg"
    secret.parent.mkdir()
    secret.write_bytes(_jpeg(9))
    inside = raw / ALIGNED / "train_00003_aligned.jpg"
    inside.unlink()
    inside.symlink_to(secret)
    (raw / ALIGNED / "train_00002_aligned.jpg").unlink()
    (raw / ALIGNED / "train_00002_aligned.jpg").symlink_to("train_00001_aligned.jpg")  # inside: fine
    result = convert("rafdb", raw, tmp_path / "out", workers=1)
    assert result.num_rows == 2
    assert _faults(result) == [("bad-link", f"{ALIGNED}/train_00003_aligned.jpg")]
    assert "outside the raw directory (pass --follow-external-links to read it)" in result.report["faults"][0]["reason"]
    assert main(["convert", "rafdb", str(raw), "--out", str(tmp_path / "out2"), "--follow-external-links", "--workers", "1"]) == 0
    assert read_card(tmp_path / "out2").num_rows == 3
    assert json.loads((tmp_path / "out2/build_report.json").read_text())["follow_external_links"] is True


def test_link_swapped_after_the_scan_is_a_fault_at_load(tmp_path):
    from ferbench.datasets import DATASETS
    from ferbench.datasets.base import Item, Report

    raw = _raf(tmp_path / "raw", _good(2))
    loader = DATASETS.get("rafdb")(raw)
    loader.detect()
    items = list(loader.scan(Report()))
    target = raw / ALIGNED / "train_00001_aligned.jpg"
    target.unlink()
    target.symlink_to(tmp_path)  # now a link out of the raw directory
    with pytest.raises(SampleError) as err:
        loader.load(next(i for i in items if i.sample_id == "rafdb/train_00001"))
    assert err.value.kind == "bad-link" and isinstance(items[0], Item)


def test_read_raw_gives_whole_files_and_refuses_what_is_not_one(tmp_path):
    """Short, exactly-``first`` and long files come back whole; a FIFO (no writer, so no
    hang) is an ``unreadable-file`` fault and a folder an OSError, the builder's fault too."""
    from ferbench.datasets import DATASETS

    raw = _raf(tmp_path / "raw", _good(1))
    loader = DATASETS.get("rafdb")(raw)
    for size in (0, 1, 4095, 4096, 4097, 3 * 4096 + 5):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        (raw / f"f{size}.bin").write_bytes(data)
        assert loader.read_raw(f"f{size}.bin", 4096) == data
    os.mkfifo(raw / "pipe.jpg")
    with pytest.raises(SampleError) as err:
        loader.read_raw("pipe.jpg")
    assert (err.value.kind, err.value.reason, err.value.file) == ("unreadable-file", "not a regular file", "pipe.jpg")
    (raw / "folder.jpg").mkdir()
    with pytest.raises(IsADirectoryError):
        loader.read_raw("folder.jpg")
    loader.follow_external_links = True  # a device fills every read: refused after the first one
    (raw / "zero.jpg").symlink_to("/dev/zero")
    with pytest.raises(SampleError, match="not a regular file"):
        loader.read_raw("zero.jpg")


# -- 6. text that is not UTF-8 ------------------------------------------------------------------------
def test_non_utf8_byte_in_fer2013_csv_is_a_fault_of_that_row(tmp_path):
    pixels = " ".join(["7"] * 2304).encode()
    lines = [b"emotion,pixels,Usage"] + [b"%d,%s,Training" % (i % 7, pixels) for i in range(4)]
    lines.insert(3, b"3," + pixels + b",Train\xffing")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "fer2013.csv").write_bytes(b"\n".join(lines) + b"\n")
    result = convert("fer2013", tmp_path / "raw", tmp_path / "out", workers=1)
    assert result.num_rows == 4
    assert [(f["kind"], f["file"], f["row"]) for f in result.report["faults"]] == [("malformed-row", "fer2013.csv", 2)]
    assert "column 'Usage' is not UTF-8 text" in result.report["faults"][0]["reason"]


def test_non_utf8_byte_in_the_shared_reader_spares_other_rows(tmp_path):
    from ferbench.datasets.fer2013.loader import read_csv

    path = tmp_path / "fer2013new.csv"
    path.write_bytes(b"Usage,Image name,neutral\nTraining,fer0.png,4\nTraining,fer\xe91.png,3\nPublicTest,fer2.png,2\n")
    data, faults = read_csv(path, "fer2013new.csv", ("Usage", "neutral"))
    assert data.rows.tolist() == [0, 2] and data.table.column("Image name").to_pylist() == ["fer0.png", "fer2.png"]
    assert [(row, kind) for row, kind, _ in faults] == [(1, "malformed-row")]


# -- 7. crafted cards ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("fingerprint", "../../x", "is not a hex digest"),
        ("shards", ["../outside.parquet"], "inside the dataset directory"),
        ("shards", ["/etc/passwd.parquet"], "inside the dataset directory"),
        ("converter_fingerprint", "../cache", "is not a hex digest"),
    ],
)
def test_crafted_card_never_names_a_path(tmp_path, field, value, message):
    raw = _raf(tmp_path / "raw", _good(2))
    out = convert("rafdb", raw, tmp_path / "ds", workers=1).out_dir
    victim = tmp_path / "outside.parquet"
    victim.write_bytes(b"victim")
    card = json.loads((out / CARD_FILE).read_text())
    (out / CARD_FILE).write_text(json.dumps({**card, field: value}))
    with pytest.raises(DatasetDirError, match=message):
        open_dataset(out)
    convert("rafdb", raw, out, workers=1, overwrite=True)  # a directory ferbench wrote: replaced
    assert victim.read_bytes() == b"victim" and read_card(out).num_rows == 2
