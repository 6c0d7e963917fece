"""Leakage verification: planted subject overlap, exact and near duplicates, the search index, the CLI."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from PIL import Image

from ferbench.cli import main
from ferbench.errors import FerbenchError
from ferbench.protocols import LeakageError, materialise, read_manifest
from ferbench.protocols.hashes import image_hashes
from ferbench.protocols.verify import near_pairs, verify
from tests.fixtures import tables as T

SEVEN = (0, 1, 2, 3, 4, 5, 6)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))


def smooth(key: str, size: int = 48) -> np.ndarray:
    """A smooth grayscale picture (bicubic-upsampled 6×6 noise): perceptual hashes behave as on faces."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    return np.asarray(Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).resize((size, size), Image.Resampling.BICUBIC))


def bmp(pixels: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="BMP")
    return buf.getvalue()


def fer_rows() -> list[dict]:
    rows = T.split_rows("fer2013", {"Training": 6, "PublicTest": 2, "PrivateTest": 2}, SEVEN)
    return [T.with_image(r, T.png(smooth(r["sample_id"]))) for r in rows]


def replace(rows: list[dict], sample_id: str, data: bytes) -> list[dict]:
    return [T.with_image(r, data) if r["sample_id"] == sample_id else r for r in rows]


TRAIN_ID, TEST_ID, VAL_ID = "fer2013/Training/0-00000", "fer2013/PrivateTest/3-00001", "fer2013/PublicTest/5-00000"


# -- the hashes --------------------------------------------------------------------------------------
def test_pixel_hash_ignores_the_encoding_and_phash_survives_edits():
    gray = smooth("a")
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    same = {image_hashes(b) for b in (T.png(gray), bmp(gray), T.png(rgb), bmp(rgb))}
    assert len(same) == 1
    pix, ph = same.pop()
    brighter = np.clip(gray.astype(int) + 12, 0, 255).astype(np.uint8)
    pix2, ph2 = image_hashes(T.jpeg(brighter, 90))
    assert pix2 != pix and int(ph ^ ph2).bit_count() <= 4
    assert int(ph ^ image_hashes(T.png(smooth("b")))[1]).bit_count() > 8
    assert image_hashes(b"not an image") is None


def test_near_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    bases = rng.integers(0, 2**63, 5, dtype=np.int64).astype(np.uint64)  # few bases: skewed buckets
    flips = rng.integers(0, 64, (600, 3)).astype(np.uint64)
    h = bases[rng.integers(0, 5, 600)] ^ np.bitwise_or.reduce(np.uint64(1) << flips, axis=1) * (rng.random((600,)) < 0.7)
    h = np.concatenate([h, rng.integers(0, 2**63, 400, dtype=np.int64).astype(np.uint64)])
    for t in (0, 2, 4, 7):
        a, b = near_pairs(h, t)
        dist = np.bitwise_count(h[:, None] ^ h[None, :])
        i, j = np.nonzero(np.triu(dist <= t, 1))
        assert sorted(zip(a.tolist(), b.tolist())) == sorted(zip(i.tolist(), j.tolist()))


# -- verdicts on manifests ---------------------------------------------------------------------------------
def test_clean_manifest(tmp_path):
    m = materialise("fer2013", [T.write(tmp_path, "fer2013", fer_rows())])
    leak = m.meta["leakage"]
    assert leak["verdict"] == "clean"
    assert (leak["subject_overlap"], leak["exact_duplicates"], leak["near_duplicates"]) == (0, 0, 0)
    assert leak["hashed_samples"] == 70 and leak["unhashed_samples"] == 0


def test_planted_subject_overlap_refuses_unless_allowed(tmp_path):
    rows = T.split_rows("rafdb", {"train": 4, "test": 2}, SEVEN)
    for r in rows:
        r["subject_id"] = f"rafdb:{r['sample_id'].split('/')[1]}-{r['sample_id'][-1]}"  # train/test keep apart ...
    rows[0]["subject_id"] = rows[-1]["subject_id"]  # ... except one person, in train and in test
    data = T.write(tmp_path, "rafdb", rows)
    with pytest.raises(LeakageError, match="1 subject overlap"):
        materialise("rafdb", [data], val_fraction=0.0)
    m = materialise("rafdb", [data], val_fraction=0.0, allow_leakage=True)
    leak = m.meta["leakage"]
    assert leak["verdict"] == "leaky-allowed" and leak["subject_overlap"] == 1
    assert leak["details"][0] == {"kind": "subject", "subject_id": rows[-1]["subject_id"], "repeat": 0, "fold": 0}
    path = m.write(tmp_path / "m.parquet")
    assert read_manifest(path).meta["leakage"]["verdict"] == "leaky-allowed"
    assert main(["verify", str(path)]) == 1


def test_planted_exact_duplicate_in_another_encoding(tmp_path):
    pixels = smooth(TRAIN_ID)
    rows = replace(fer_rows(), TEST_ID, bmp(np.repeat(pixels[:, :, None], 3, axis=2)))  # same pixels, BMP, RGB
    data = T.write(tmp_path, "fer2013", rows)
    # fer2013 declares the duplicates the official split is reputed to hold: built, counted and listed
    leak = materialise("fer2013", [data]).meta["leakage"]
    assert leak["verdict"] == "exact-duplicates-declared"
    assert leak["exact_duplicates"] == 1 and {"kind": "exact", "test_sample": TEST_ID} in leak["details"]
    # the leak is an exact duplicate only, never listed again as a (non-fatal) near-duplicate warning
    assert leak["near_duplicates"] == 0 and leak["near_duplicate_kinds"]["pixel_identical"] == 0
    assert [d for d in leak["details"] if d["kind"] == "near"] == []


def test_duplicates_within_one_role_are_not_leaks(tmp_path):
    rows = replace(fer_rows(), "fer2013/Training/1-00000", T.png(smooth(TRAIN_ID)))
    leak = materialise("fer2013", [T.write(tmp_path, "fer2013", rows)]).meta["leakage"]
    assert leak["verdict"] == "clean" and leak["exact_duplicates"] == 0 and leak["near_duplicates"] == 0


def test_planted_near_duplicate_is_reported(tmp_path):
    brighter = np.clip(smooth(TRAIN_ID).astype(int) + 12, 0, 255).astype(np.uint8)
    rows = replace(replace(fer_rows(), TEST_ID, T.jpeg(brighter, 90)), VAL_ID, T.jpeg(smooth("fer2013/Training/2-00003"), 85))
    data = T.write(tmp_path, "fer2013", rows)
    m = materialise("fer2013", [data])
    leak = m.meta["leakage"]
    assert leak["verdict"] == "clean" and leak["exact_duplicates"] == 0
    assert leak["near_duplicates"] == 2
    assert leak["near_duplicate_kinds"] == {"test_vs_train_val": 1, "train_vs_val": 1, "cross_source": 0, "pixel_identical": 0}
    near = {(d["a"], d["b"]): d["roles"] for d in leak["details"] if d["kind"] == "near"}
    assert near[(TEST_ID, TRAIN_ID)] == ["test", "train"]
    pairs = [(T.png(smooth(TRAIN_ID)), T.jpeg(brighter, 90)), (T.png(smooth("fer2013/Training/2-00003")), T.jpeg(smooth("fer2013/Training/2-00003"), 85))]
    same_phash = [image_hashes(a)[1] == image_hashes(b)[1] for a, b in pairs]
    strict = materialise("fer2013", [data], near_threshold=0).meta["leakage"]
    assert strict["near_duplicate_kinds"]["test_vs_train_val"] == same_phash[0] and strict["near_duplicate_kinds"]["train_vs_val"] == same_phash[1]
    assert verify(m) == leak


def test_near_duplicates_across_merged_sources(tmp_path):
    shared = T.png(smooth("shared"))
    a = T.write(tmp_path, "srca", [T.with_image(r, shared) if i == 0 else r for i, r in enumerate(T.split_rows("srca", {"x": 3}, SEVEN))])
    b = T.write(tmp_path, "srcb", [T.with_image(r, shared) if i == 0 else r for i, r in enumerate(T.split_rows("srcb", {"x": 3}, SEVEN))])
    c = T.write(tmp_path, "srcc", T.split_rows("srcc", {"x": 2}, SEVEN))
    leak = materialise("cross", [a, b, c], train="srca,srcb", test="srcc", val_fraction=0.0).meta["leakage"]
    assert leak["verdict"] == "clean"
    assert leak["near_duplicate_kinds"]["cross_source"] == 1 and leak["near_duplicate_kinds"]["pixel_identical"] == 1


def test_verify_refuses_a_changed_dataset(tmp_path):
    data = T.write(tmp_path, "fer2013", fer_rows())
    path = materialise("fer2013", [data]).write(tmp_path / "m.parquet")
    T.write(tmp_path, "fer2013", fer_rows()[:-1])
    with pytest.raises(FerbenchError, match="rebuild the manifest"):
        verify(read_manifest(path))


def test_benchmarks_run_at_small_size():
    from ferbench.bench.protocols import bench_protocols, bench_verify

    v = bench_verify(3000)
    assert v.notes["planted_recall"] == 1.0 and v.ratio == v.figure / v.baseline.figure
    p = bench_protocols(3000)
    assert p.notes["manifest_rows"] > 2500 and p.notes["kfold_manifest_rows"] == 5 * 3000
