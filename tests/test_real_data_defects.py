"""Defects found on real data, each on a tiny raw tree written by the datasets' layout writers.

1. RAF-DB's compound release must be refused, not read as the basic set.
2. A conversion's sample_ids, stored image paths and fingerprint depend on the content only, not
   on which folder (one level higher or lower) the user points the converter at.
3. ``ferbench verify``: the listed pairs agree with the verdict (near-duplicates are warnings,
   exact duplicates and subject overlap are leaks) and with the counts.
4. A CSV whose first lines are blank is not "empty": the header is found after them.
5. A failed conversion names its faults and writes a build report beside the intended output,
   without leaving a dataset there.
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from ferbench.build import convert, failure_report_path
from ferbench.cli import main
from ferbench.converted import read_table
from ferbench.errors import ConversionError, DatasetNotFoundError

from ferbench.datasets.rafdb.layout import Sample as RafSample, write_basic, write_kaggle


def _pixels(key: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(key.encode())).integers(0, 256, shape, dtype=np.uint8)


def _convert(name: str, raw: Path, out: Path, **options):
    return convert(name, raw, out, workers=1, progress=False, **options)


def _ids_and_paths(out: Path) -> dict[str, tuple]:
    table = read_table(out, ["sample_id", "rgb"]).to_pylist()
    return {r["sample_id"]: (r["rgb"] or {}).get("path") for r in table}


def _same_from(name: str, roots: list[Path], tmp: Path, **options) -> dict[str, tuple]:
    """Convert the same raw tree from each root; every conversion must give the same ids, paths
    and fingerprint. Returns the ids → stored rgb paths."""
    first = _convert(name, roots[0], tmp / "out-0", **options)
    rows = _ids_and_paths(first.out_dir)
    for i, root in enumerate(roots[1:], 1):
        result = _convert(name, root, tmp / f"out-{i}", **options)
        assert _ids_and_paths(result.out_dir) == rows, f"rows differ when converting from {root}"
        assert result.fingerprint == first.fingerprint, f"fingerprint differs when converting from {root}"
    return rows


# -- 1. RAF-DB compound release ---------------------------------------------------------------------
def _compound_samples(train: int = 6, test: int = 3) -> list[RafSample]:
    """Compound-release faces: 4-digit train and test names, labels 1..11."""
    names = [f"train_{i:04d}" for i in range(1, train + 1)] + [f"test_{i:04d}" for i in range(1, test + 1)]
    return [RafSample(n, i % 11 + 1, _pixels(n, (12, 12, 3)), _pixels(n + "o", (16, 16, 3))) for i, n in enumerate(names)]


def _basic_samples() -> list[RafSample]:
    names = [f"train_{i:05d}" for i in range(1, 8)] + [f"test_{i:04d}" for i in range(1, 4)]
    return [RafSample(n, i % 7 + 1, _pixels(n, (12, 12, 3)), _pixels(n + "o", (16, 16, 3))) for i, n in enumerate(names)]


def test_rafdb_compound_release_is_refused(tmp_path):
    write_basic(tmp_path / "raw" / "compound", _compound_samples())
    for root in (tmp_path / "raw", tmp_path / "raw" / "compound"):
        with pytest.raises(DatasetNotFoundError, match="compound-emotion release") as err:
            _convert("rafdb", root, tmp_path / "out")
        assert "basic converter does not read it" in str(err.value)
        assert "EmoLabel/list_patition_label.txt" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_rafdb_compound_detected_by_labels_alone_and_by_names_alone(tmp_path):
    # 5-digit names, but labels 1..11 used as data
    by_labels = [RafSample(f"train_{i:05d}", i % 11 + 1, _pixels(str(i), (12, 12, 3))) for i in range(1, 12)]
    write_basic(tmp_path / "a", by_labels)
    with pytest.raises(DatasetNotFoundError, match=r"compound-emotion release \(.*labels above 7"):
        _convert("rafdb", tmp_path / "a", tmp_path / "out")
    # labels within 1..7, but the compound naming (4-digit train names)
    by_names = [RafSample(f"train_{i:04d}", i % 7 + 1, _pixels(str(i), (12, 12, 3))) for i in range(1, 8)]
    write_basic(tmp_path / "b", by_names)
    with pytest.raises(DatasetNotFoundError, match=r"compound-emotion release \(its train_ names have 4 digits"):
        _convert("rafdb", tmp_path / "b", tmp_path / "out")


def test_rafdb_one_stray_label_8_stays_a_fault_of_the_basic_set(tmp_path):
    write_basic(tmp_path / "raw", _basic_samples(), extra_lines=[(99, "train_00098.jpg 8")])
    result = _convert("rafdb", tmp_path / "raw", tmp_path / "out")
    assert result.num_rows == 10 and result.report["layout"] == "basic"
    assert [f["kind"] for f in result.report["faults"]] == ["unknown-label"]


def test_rafdb_basic_beside_compound_converts_the_basic_one(tmp_path):
    # the authors' archive unpacks basic/ and compound/ side by side; "compound" sorts first here
    write_basic(tmp_path / "raw" / "a-compound", _compound_samples())
    write_basic(tmp_path / "raw" / "basic", _basic_samples())
    result = _convert("rafdb", tmp_path / "raw", tmp_path / "out")
    assert result.num_rows == 10
    assert set(_ids_and_paths(result.out_dir)) == {f"rafdb/{s.name}" for s in _basic_samples()}
    assert any("a-compound/ is RAF-DB's compound release: skipped" in n for n in result.report["notes"])


def test_rafdb_compound_kaggle_style_repack_is_refused(tmp_path):
    write_kaggle(tmp_path / "raw", _compound_samples())
    with pytest.raises(DatasetNotFoundError, match="compound"):
        _convert("rafdb", tmp_path / "raw", tmp_path / "out")


# -- 2. content-only fingerprints ---------------------------------------------------------------------
def _ck_sequences():
    from ferbench.datasets.ckplus.layout import CKSequence

    return [
        CKSequence(subject, number, [_pixels(f"{subject}{number}{k}", (8, 8)) for k in range(4)], emotion=emotion)
        for subject, number, emotion in (("S005", 1, 3), ("S010", 2, 5), ("S011", 1, 7))
    ]


def test_ckplus_ck48_fingerprint_does_not_depend_on_the_folder_named(tmp_path):
    from ferbench.datasets.ckplus.layout import write_ck48

    write_ck48(tmp_path / "top" / "raw", _ck_sequences(), subdir="CK+48")
    write_ck48(tmp_path / "flat", _ck_sequences(), subdir="")  # class folders directly in the root
    roots = [tmp_path / "top" / "raw", tmp_path / "top" / "raw" / "CK+48", tmp_path / "top", tmp_path / "flat"]
    rows = _same_from("ckplus", roots, tmp_path)
    assert rows["ckplus/S005/001/00000004"] == "disgust/S005_001_00000004.png"
    assert len(rows) == 9


def test_ckplus_official_fingerprint_does_not_depend_on_the_folder_named(tmp_path):
    from ferbench.datasets.ckplus.layout import CKLayout, write_official

    write_official(tmp_path / "top" / "raw", _ck_sequences())
    rows = _same_from("ckplus", [tmp_path / "top" / "raw", tmp_path / "top"], tmp_path)
    assert rows["ckplus/S005/001/00000001"] == "cohn-kanade-images/S005/001/S005_001_00000001.png"
    nested = CKLayout(images_dir="extended-cohn-kanade-images/cohn-kanade-images")
    write_official(tmp_path / "e" / "ext", _ck_sequences(), nested)
    rows = _same_from("ckplus", [tmp_path / "e" / "ext", tmp_path / "e"], tmp_path / "e-out")
    assert rows["ckplus/S005/001/00000001"] == "extended-cohn-kanade-images/cohn-kanade-images/S005/001/S005_001_00000001.png"


def test_rafdb_fingerprint_does_not_depend_on_the_folder_named(tmp_path):
    write_basic(tmp_path / "raw" / "basic", _basic_samples())
    rows = _same_from("rafdb", [tmp_path / "raw", tmp_path / "raw" / "basic"], tmp_path)
    assert rows["rafdb/train_00001"] == "Image/aligned/train_00001_aligned.jpg"
    write_kaggle(tmp_path / "kaggle", _basic_samples())
    rows = _same_from("rafdb", [tmp_path / "kaggle", tmp_path / "kaggle" / "DATASET"], tmp_path / "k")
    assert rows["rafdb/train_00001"] == "DATASET/train/1/train_00001_aligned.jpg"


def test_fer2013_folders_fingerprint_does_not_depend_on_the_folder_named(tmp_path):
    from ferbench.datasets.fer2013.layout import write_image_folders

    faces = np.stack([_pixels(f"f{i}", (48, 48)) for i in range(6)])
    usages = ["Training", "Training", "Training", "PublicTest", "PrivateTest", "Training"]
    write_image_folders(tmp_path / "top" / "archive", faces, [0, 3, 6, 3, 4, 1], usages, range(100, 106))
    rows = _same_from("fer2013", [tmp_path / "top", tmp_path / "top" / "archive"], tmp_path)
    assert rows["fer2013/train/angry/Training_100"] == "train/angry/Training_100.jpg"


def test_affectnet_fingerprint_does_not_depend_on_the_folder_named(tmp_path):
    from ferbench.datasets.affectnet.layout import Sample, write_small

    landmarks = np.arange(136, dtype=np.float64).reshape(68, 2)
    samples = [Sample(split, str(i), _pixels(f"{split}{i}", (16, 16, 3)), i % 8, 0.1, -0.2, landmarks) for split in ("train", "val") for i in range(3)]
    write_small(tmp_path / "top" / "AffectNet", samples)
    rows = _same_from("affectnet", [tmp_path / "top", tmp_path / "top" / "AffectNet"], tmp_path)
    assert rows["affectnet/val/2"] == "val_set/images/2.jpg"


def _caldr_samples(depth_dtype=np.uint16):
    from ferbench.datasets.caldr_menders.layout import Sample

    return [
        Sample("CalD3r", "F", subject, "1120", label, _pixels(f"c{subject}{label}", (8, 8, 3)),
               (np.arange(64).reshape(8, 8) * 10 + 500).astype(depth_dtype))
        for subject in (1, 2)
        for label in ("anger", "happiness")
    ]  # fmt: skip


def test_caldr_menders_fingerprint_does_not_depend_on_the_folder_named(tmp_path):
    from ferbench.datasets.caldr_menders.layout import write_caldr_menders

    write_caldr_menders(tmp_path / "top" / "CalD3RMenD3s", _caldr_samples())
    roots = [tmp_path / "top", tmp_path / "top" / "CalD3RMenD3s", tmp_path / "top" / "CalD3RMenD3s" / "CalD3r"]
    rows = _same_from("caldr_menders", roots, tmp_path)
    assert rows["caldr_menders/CalD3r/F_001_1120_anger"] == "CalD3r/Anger/RGB/F_001_1120_anger_Color.png"
    depth = read_table(tmp_path / "out-0", ["sample_id", "depth"]).to_pylist()
    assert {r["depth"]["path"] for r in depth} >= {"CalD3r/Anger/DEPTH/F_001_1120_anger_Depth.png"}


def _bu3dfe_scans():
    from ferbench.datasets.bu3dfe.layout import Scan
    from ferbench.geometry.shapes import textured_square

    mesh, texture = textured_square()
    idx = np.arange(83) % len(mesh.vertices)
    return [
        Scan(subject, expr, intensity, "WH", mesh, idx, mesh.vertices[idx], _pixels(subject + expr, (16, 16, 3)), texture)
        for subject, expr, intensity in (("F0001", "HA", 4), ("F0001", "NE", 0), ("M0002", "SU", 2))
    ]


BU_CAMERA = {"size": 32, "mm_per_px": 3.0}


def test_bu3dfe_fingerprint_does_not_depend_on_the_folder_named(tmp_path):
    from ferbench.datasets.bu3dfe.layout import write_bu3dfe

    write_bu3dfe(tmp_path / "raw", _bu3dfe_scans(), raw_files=False)
    rows = _same_from("bu3dfe", [tmp_path / "raw", tmp_path / "raw" / "BU_3DFE"], tmp_path, **BU_CAMERA)
    assert rows["bu3dfe/F0001/F0001_HA04WH"] == "F0001/F0001_HA04WH_F2D.bmp"


def _bosphorus_scans():
    from ferbench.datasets.bosphorus.layout import Scan
    from ferbench.geometry import shapes

    x, y, z, valid = shapes.grid_with_holes(shapes.hemisphere(), 5.0)
    u = np.zeros_like(x)
    return [
        Scan(subject, cls, code, 0, x, y, z, u, u, valid, _pixels(f"{subject}{code}", (12, 12, 3)))
        for subject, cls, code in ((0, "E", "ANGER"), (0, "N", "N"), (1, "E", "HAPPY"))
    ]


def test_bosphorus_fingerprint_does_not_depend_on_the_folder_named(tmp_path):
    from ferbench.datasets.bosphorus.layout import write_bosphorus

    write_bosphorus(tmp_path / "raw", _bosphorus_scans())
    rows = _same_from("bosphorus", [tmp_path / "raw", tmp_path / "raw" / "BosphorusDB"], tmp_path, size=32, mm_per_px=4.0)
    assert rows["bosphorus/bs000/bs000_E_ANGER_0"] == "bs000/bs000_E_ANGER_0.png"


# -- 3. verify: verdict, counts and listed pairs agree --------------------------------------------------
@pytest.fixture
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))


def _manifest(tmp_path: Path, exact: bool) -> Path:
    from ferbench.protocols import materialise
    from fixtures import tables as T
    from test_verify import TEST_ID, TRAIN_ID, VAL_ID, bmp, fer_rows, replace, smooth

    brighter = np.clip(smooth(TRAIN_ID).astype(int) + 12, 0, 255).astype(np.uint8)
    rows = replace(replace(fer_rows(), TEST_ID, T.jpeg(brighter, 90)), VAL_ID, T.jpeg(smooth("fer2013/Training/2-00003"), 85))
    if exact:  # another test image: the same pixels as a train image, in another encoding
        twin = np.repeat(smooth("fer2013/Training/1-00000")[:, :, None], 3, axis=2)
        rows = replace(rows, "fer2013/PrivateTest/4-00001", bmp(twin))
    data = T.write(tmp_path, "fer2013", rows)
    return materialise("fer2013", [data], allow_leakage=True).write(tmp_path / "m.parquet")


def _verify_cli(path: Path, capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", str(path), *args])
    return code, capsys.readouterr().out


def test_verify_clean_verdict_lists_near_duplicates_as_warnings(tmp_path, capsys, _cache):
    code, out = _verify_cli(_manifest(tmp_path, exact=False), capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split(": ", 1)[1].startswith("clean (no leak; 2 near-duplicate warning(s) below do not change it")
    assert "leaks (decide the verdict): subject overlap 0, exact duplicates 0" in out
    assert "warnings (never change the verdict): near-duplicates 2" in out
    assert "LEAK" not in out
    warnings = [line for line in lines if line.strip().startswith("warning ")]
    assert len(warnings) == 2 and "(2 of 2 shown)" in out
    assert any("fer2013/PrivateTest/3-00001 ~ fer2013/Training/0-00000" in w and "test vs train" in w for w in warnings)


def test_verify_leaky_verdict_lists_leaks_apart_and_never_as_warnings(tmp_path, capsys, _cache):
    from ferbench.protocols import read_manifest
    from ferbench.protocols.verify import verify

    path = _manifest(tmp_path, exact=True)
    report = verify(read_manifest(path))
    assert report["verdict"] == "leaky" and report["exact_duplicates"] == 1
    # the exact-duplicate pair is a leak only: not counted again as a near-duplicate warning
    near = [d for d in report["details"] if d["kind"] == "near"]
    assert "fer2013/PrivateTest/4-00001" not in {d["a"] for d in near} | {d["b"] for d in near}
    kinds = report["near_duplicate_kinds"]
    assert report["near_duplicates"] == len(near) == kinds["test_vs_train_val"] + kinds["train_vs_val"] + kinds["cross_source"] == 2
    assert report["severity"] == {"subject_overlap": "leak", "exact_duplicates": "leak", "near_duplicates": "warning"}

    code, out = _verify_cli(path, capsys)
    assert code == 1
    assert out.splitlines()[0].split(": ", 1)[1].startswith("leaky (1 leak(s)")
    leaks = [line for line in out.splitlines() if line.strip().startswith("LEAK ")]
    warnings = [line for line in out.splitlines() if line.strip().startswith("warning ")]
    assert len(leaks) == 1 and "fer2013/PrivateTest/4-00001" in leaks[0] and "LEAKS (1 of 1 shown)" in out
    assert len(warnings) == 2 and not any("4-00001" in w for w in warnings)
    # --details limits each list, and says how many there are
    _, out = _verify_cli(path, capsys, "--details", "1")
    assert "(1 of 2 shown)" in out and len([ln for ln in out.splitlines() if ln.strip().startswith("warning ")]) == 1


# -- 4. blank leading lines in CSVs ---------------------------------------------------------------------
def _fer_csv(path: Path, n: int = 6, bad_row: int | None = 3) -> Path:
    from ferbench.datasets.fer2013.layout import write_csv

    faces = np.stack([_pixels(f"p{i}", (48, 48)) for i in range(n)])
    raw = {bad_row: "3,1 2 3,Training"} if bad_row is not None else None
    return write_csv(path, "fer2013", faces, [i % 7 for i in range(n)], ["Training"] * (n - 2) + ["PublicTest", "PrivateTest"], raw_rows=raw)


def _prepend(path: Path, text: str) -> None:
    path.write_bytes(text.encode() + path.read_bytes())


@pytest.mark.parametrize("blank", ["\n", "\r\n\r\n", "\n   \n,,\n"])
def test_fer2013_csv_with_blank_leading_lines_is_read(tmp_path, blank):
    _fer_csv(tmp_path / "plain" / "fer2013.csv")
    _prepend(_fer_csv(tmp_path / "blank" / "fer2013.csv"), blank)
    plain = _convert("fer2013", tmp_path / "plain", tmp_path / "o1")
    got = _convert("fer2013", tmp_path / "blank", tmp_path / "o2")
    assert got.num_rows == plain.num_rows == 5 and got.fingerprint == plain.fingerprint
    faults = [(f["kind"], f["row"]) for f in got.report["faults"]]
    assert faults == [(f["kind"], f["row"]) for f in plain.report["faults"]] == [("bad-pixel-count", 3)]
    skipped = blank.count("\n")
    assert f"fer2013.csv: {skipped} blank line(s) before the CSV header skipped" in got.report["notes"]


def test_fer2013_malformed_row_numbers_after_blank_leading_lines(tmp_path):
    path = _fer_csv(tmp_path / "raw" / "fer2013.csv", bad_row=None)
    lines = path.read_text().splitlines()
    lines[3] = "1,2"  # data row 2: too few fields
    path.write_text("\n\n" + "\n".join(lines) + "\n")
    result = _convert("fer2013", tmp_path / "raw", tmp_path / "out")
    assert [(f["kind"], f["row"]) for f in result.report["faults"]] == [("malformed-row", 2)]


def test_csv_of_blank_lines_only_is_empty(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "fer2013.csv").write_text("\n\n  \n")
    with pytest.raises(ConversionError, match=r"empty file \(only 3 blank line\(s\)\)"):
        _convert("fer2013", tmp_path / "raw", tmp_path / "out")


def test_ferplus_csvs_with_blank_leading_lines_are_read(tmp_path):
    from ferbench.datasets.fer2013.layout import write_ferplus_csv

    for name in ("plain", "blank"):
        _fer_csv(tmp_path / name / "fer2013.csv", bad_row=None)
        usages = ["Training"] * 4 + ["PublicTest", "PrivateTest"]
        votes = [[6, 2, 0, 0, 0, 0, 0, 0, 2, 0]] * 6
        write_ferplus_csv(tmp_path / name / "fer2013new.csv", usages, votes, [f"fer{i:07d}.png" for i in range(6)])
    _prepend(tmp_path / "blank" / "fer2013new.csv", "\n")
    _prepend(tmp_path / "blank" / "fer2013.csv", "\n\n")
    plain = _convert("ferplus", tmp_path / "plain", tmp_path / "o1")
    got = _convert("ferplus", tmp_path / "blank", tmp_path / "o2")
    assert got.num_rows == plain.num_rows == 6 and got.fingerprint == plain.fingerprint
    assert "fer2013new.csv: 1 blank line(s) before the CSV header skipped" in got.report["notes"]
    assert "fer2013.csv: 2 blank line(s) before the CSV header skipped" in got.report["notes"]


# -- 5. failed conversions name their faults and leave a report -------------------------------------------
def test_every_sample_faulty_names_the_faults_and_writes_a_report(tmp_path):
    from ferbench.datasets.caldr_menders.layout import write_caldr_menders

    write_caldr_menders(tmp_path / "raw", _caldr_samples(depth_dtype=np.uint8))  # 8-bit depth: all bad
    out = tmp_path / "ds"
    with pytest.raises(ConversionError) as err:
        _convert("caldr_menders", tmp_path / "raw", out)
    text = str(err.value)
    assert "no sample could be converted" in text and "4 item(s) scanned, 4 fault(s) by kind {'bad-depth': 4}" in text
    assert "CalD3r/Anger/DEPTH/F_001_1120_anger_Depth.png: bad-depth: depth must be a 16-bit" in text
    report_path = failure_report_path(out)
    assert report_path == tmp_path / "ds.build_report.json" and str(report_path) in text
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ds.build_report.json", "raw"]
    report = json.loads(report_path.read_text())
    assert report["status"] == "failed" and report["num_rows"] == 0 and report["items_scanned"] == 4
    assert report["fault_kinds"] == {"bad-depth": 4} and len(report["faults"]) == 4
    assert report["error"] in text


def test_scan_with_no_usable_model_names_the_faults(tmp_path):
    from ferbench.datasets.bu3dfe.layout import write_bu3dfe

    write_bu3dfe(tmp_path / "raw", _bu3dfe_scans(), raw_files=False, missing={"F0001_HA04WH_F3D.bnd", "F0001_NE00WH_F3D.bnd", "M0002_SU02WH_F3D.bnd"})
    with pytest.raises(ConversionError) as err:
        _convert("bu3dfe", tmp_path / "raw", tmp_path / "ds", **BU_CAMERA)
    text = str(err.value)
    assert "0 item(s) scanned, 3 fault(s) by kind {'missing-pair': 3}" in text
    assert "BU_3DFE/F0001/F0001_HA04WH_F3D.wrl: missing-pair: model F0001_HA04WH has no _F3D.bnd file" in text
    assert json.loads((tmp_path / "ds.build_report.json").read_text())["fault_kinds"] == {"missing-pair": 3}
    assert not (tmp_path / "ds").exists()


def test_strict_stop_writes_the_report_and_success_clears_it(tmp_path):
    from ferbench.datasets.caldr_menders.layout import write_caldr_menders

    samples = _caldr_samples()
    write_caldr_menders(tmp_path / "raw", samples, missing={"CalD3r/Anger/DEPTH/F_002_1120_anger_Depth.png"})
    out = tmp_path / "ds"
    with pytest.raises(ConversionError, match="--strict: missing-pair in CalD3r/Anger/RGB/F_002_1120_anger_Color.png") as err:
        _convert("caldr_menders", tmp_path / "raw", out, strict=True)
    assert "ds.build_report.json" in str(err.value) and not out.exists()
    report = json.loads(failure_report_path(out).read_text())
    assert report["status"] == "failed" and report["fault_kinds"] == {"missing-pair": 1}
    result = _convert("caldr_menders", tmp_path / "raw", out)
    assert result.num_rows == 3 and not failure_report_path(out).exists()
    shutil.rmtree(out)
