"""The synthetic world written in every raw layout and converted by the real converters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ferbench import cli
from ferbench.build import convert
from ferbench.converted import read_card, read_table
from ferbench.synth import SYNTHETIC_MARKER
from ferbench.errors import FerbenchError
from ferbench.imageio import decode
from ferbench.schema import ferbench_metadata
from ferbench.synth import world
from ferbench.datasets.caldr_menders.synth import DEPTH_UNITS_PER_MM
from ferbench.synth.layouts import SYNTH_LAYOUTS as LAYOUTS

N = 3  # subjects of the small worlds
SIZE = 32
RGBD = {"size": 32, "mm_per_px": 5.0}  # converter camera for the mesh / range-grid layouts


@dataclass(frozen=True)
class Case:
    writer: dict  # writer options besides subjects, seed
    converter: dict
    per_subject: dict  # canonical label (None = no label) → rows per subject


CASES = {
    "fer2013": Case({"size": 48, "levels": (2, 4)}, {}, {label: 2 for label in range(7)}),
    "ckplus": Case({"size": SIZE, "frames": (4, 4)}, {}, {**{label: 1 for label in range(1, 8)}, None: 21}),
    "bu3dfe": Case({"size": SIZE, "levels": (4,)}, RGBD, {label: 1 for label in range(7)}),
    "bosphorus": Case({"size": SIZE}, RGBD, {0: 2, **{label: 1 for label in range(1, 7)}, None: 21}),
    "caldr_menders": Case({"size": SIZE, "levels": (1,)}, {}, {0: 4, **{label: 1 for label in range(1, 7)}}),
    "affectnet": Case({"size": SIZE, "levels": (3,)}, {}, {label: 1 for label in range(8)}),
    "rafdb": Case({"size": SIZE, "levels": (1,)}, {}, {label: 1 for label in range(7)}),
}


def _bu3dfe_subjects() -> set[str]:
    seen: Counter = Counter()
    out = set()
    for person in world.make_subjects(N, 0):
        seen[person.sex] += 1
        out.add(f"bu3dfe:{person.sex}{seen[person.sex]:04d}")
    return out


SUBJECTS = {
    "fer2013": {None},
    "ckplus": {"ckplus:S001", "ckplus:S002", "ckplus:S003"},
    "bu3dfe": _bu3dfe_subjects(),
    "bosphorus": {"bosphorus:bs000", "bosphorus:bs001", "bosphorus:bs002"},
    "caldr_menders": {"caldr_menders:CalD3r-001", "caldr_menders:CalD3r-002", "caldr_menders:MenD3s-01"},
    "affectnet": {None},
    "rafdb": {None},
}


SPLITS = {"fer2013": {"Training", "PublicTest", "PrivateTest"}, "affectnet": {"train", "val"}, "rafdb": {"train", "test"}}


@dataclass
class Built:
    name: str
    summary: dict
    out: Path
    report: dict
    rows: dict  # sample_id → converted row (no image bytes)


def build(name: str, root: Path, subjects: int = N, seed: int = 0):
    case = CASES[name]
    summary = LAYOUTS[name](root / "raw", subjects=subjects, seed=seed, **case.writer)
    result = convert(name, root / "raw", root / "out", workers=1, progress=False, **case.converter)
    return summary, result


@pytest.fixture(scope="module", params=list(CASES))
def built(request, tmp_path_factory) -> Built:
    name = request.param
    summary, result = build(name, tmp_path_factory.mktemp(name))
    columns = ["sample_id", "label", "subject_id", "source_split", "aus", "landmarks"]
    table = read_table(result.out_dir, columns).to_pylist()
    return Built(name, summary, result.out_dir, result.report, {r["sample_id"]: r for r in table})


def test_converts_exactly_what_was_written(built: Built) -> None:
    case = CASES[built.name]
    assert built.report["faults_total"] == 0, built.report["faults"][:5]
    assert built.report["num_rows"] == N * sum(case.per_subject.values()) == built.summary["rows"]
    assert Counter(r["label"] for r in built.rows.values()) == {label: N * n for label, n in case.per_subject.items()}
    assert {r["subject_id"] for r in built.rows.values()} == SUBJECTS[built.name]


def test_marked_synthetic(built: Built) -> None:
    assert (Path(built.summary["root"]) / SYNTHETIC_MARKER).is_file()
    assert read_card(built.out).synthetic is True
    assert ferbench_metadata(read_table(built.out, ["label"]).schema)["synthetic"] is True


def test_rows_agree_with_the_world(built: Built) -> None:
    truth = built.summary["samples"]
    assert set(built.rows) == set(truth)
    for sample_id, row in built.rows.items():
        want = truth[sample_id]
        assert (row["label"], row["subject_id"]) == (want["label"], want["subject_id"]), sample_id
        if want["split"] is not None:
            assert row["source_split"] == want["split"], sample_id


def test_splits_never_share_a_subject(built: Built) -> None:
    splits: dict[int, set] = {}
    for t in built.summary["samples"].values():
        splits.setdefault(t["world_subject"], set()).add(t["split"])
    assert all(len(s) == 1 for s in splits.values()) and len(splits) == N
    used = {next(iter(s)) for s in splits.values()}
    assert used == SPLITS.get(built.name, {None})
    if built.name == "fer2013":  # Usage blocks in the published order
        order = [built.rows[sid]["source_split"] for sid in sorted(built.rows)]
        assert order == sorted(order, key=["Training", "PublicTest", "PrivateTest"].index)


def test_action_units_are_kept(built: Built) -> None:
    coded = {sid: t["aus"] for sid, t in built.summary["samples"].items() if t["aus"] is not None}
    if built.name not in ("ckplus", "bosphorus"):
        assert not coded
        return
    assert len(coded) == {"ckplus": 7 * N, "bosphorus": 19 * N}[built.name]
    for sample_id, aus in coded.items():
        assert built.rows[sample_id]["aus"] == aus, sample_id
    if built.name == "ckplus":  # the peak's AUs are the prototype of the sequence's emotion
        for sample_id, aus in coded.items():
            assert {a["au"] for a in aus} == set(world.EMOTION_AUS[built.rows[sample_id]["label"]])


def test_landmarks(built: Built) -> None:
    marks = [np.array(r["landmarks"], dtype=float) for r in built.rows.values() if r["landmarks"] is not None]
    expected = {"ckplus": (28 * N, (68, 2)), "bu3dfe": (7 * N, (83, 3)), "bosphorus": (29 * N, (24, 3)), "affectnet": (8 * N, (68, 2))}
    if built.name not in expected:
        assert not marks
        return
    count, shape = expected[built.name]
    assert len(marks) == count and all(m.shape == shape for m in marks)
    present = np.array([np.isfinite(m).all(1) for m in marks])
    if built.name == "bosphorus":  # the visible ones of 22 points, never the ear lobes
        assert not present[:, 22:].any() and present[:, :22].sum(1).min() >= 12
    else:
        assert present.all()
    if shape[1] == 2:  # image pixels; raised brows may leave the frame
        inside = np.array([((m >= 0) & (m <= SIZE)).all(1).mean() for m in marks])
        assert inside.min() > 0.8


def test_caldr_depth_is_in_eighth_millimetres(tmp_path: Path) -> None:
    build("caldr_menders", tmp_path, subjects=1)
    depth = decode(read_table(tmp_path / "out", ["depth"]).column("depth")[0].as_py()["bytes"])
    assert depth.dtype == np.uint16 and (depth == 0).any()
    mm = depth[depth > 0] / DEPTH_UNITS_PER_MM
    assert 450 < mm.min() and mm.max() < 900


@pytest.mark.parametrize("name", list(CASES))
def test_deterministic(name: str, tmp_path: Path) -> None:
    fingerprints = [build(name, tmp_path / str(k), subjects=1, seed=seed)[1].fingerprint for k, seed in enumerate((0, 0, 1))]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


def test_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "raf"
    assert cli.main(["synth", "rafdb", "--out", str(out), "--subjects", "2", "--seed", "3", "--size", "24"]) == 0
    assert "rafdb: 56 samples of 2 subjects" in capsys.readouterr().out
    assert (out / SYNTHETIC_MARKER).is_file() and len(list((out / "Image" / "aligned").iterdir())) == 56
    assert cli.main(["synth", "rafdb", "--out", str(out)]) == 2  # not empty
    assert "not an empty directory" in capsys.readouterr().err
    assert cli.main(["synth", "ferplsu", "--out", str(tmp_path / "x")]) == 2
    assert "unknown synthetic layout 'ferplsu' (did you mean 'ferplus'?)" in capsys.readouterr().err


def test_cli_help_names_every_layout() -> None:
    text = cli.build_parser()._subparsers._group_actions[0].choices["synth"].format_help()
    assert all(name in text for name in LAYOUTS)


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(FerbenchError, match="not an empty directory"):
        LAYOUTS["fer2013"](tmp_path, subjects=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(("name", "subjects", "seed", "message"), [
    ("ckplus", 1000, 0, r"within 1\.\.999"),
    ("caldr_menders", 200, 0, r"within 1\.\.199"),
    ("rafdb", 0, 0, "within 1"),
    ("rafdb", 2, -1, "non-negative"),
])  # fmt: skip
def test_rejects_impossible_worlds_before_writing(name: str, subjects: int, seed: int, message: str, tmp_path: Path) -> None:
    with pytest.raises(FerbenchError, match=message):
        LAYOUTS[name](tmp_path / "raw", subjects=subjects, seed=seed)
    assert not (tmp_path / "raw").exists()
