"""KDEF's quirks: file-name parsing, the expression-code label map, sessions A/B as one person,
where the session folders may sit, and the frontal protocol. Rows, faults, determinism and
standard readers of the fixture trees are the dataset contract's (test_dataset_contract.py)."""

from __future__ import annotations

from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from ferbench.build import convert
from ferbench.converted import read_card, read_table
from ferbench.datasets.kdef.fixture import flat_tree, photo, wrapped_tree
from ferbench.datasets.kdef.layout import EXPRESSIONS, write_kdef
from ferbench.errors import DatasetNotFoundError, FerbenchError
from ferbench.protocols import materialise
from ferbench.schema import EMOTIONS, ferbench_metadata
from ferbench.synth.layouts import SYNTH_LAYOUTS


def _rows(out, columns=("sample_id", "subject_id", "session", "angle", "gender", "label_raw", "label", "rgb")) -> dict[str, dict]:
    return {r["sample_id"]: r for r in read_table(out, list(columns)).to_pylist()}


def _faults(result) -> list[tuple[str, str]]:
    return sorted((f["kind"], f["file"]) for f in result.report["faults"])


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    root = tmp_path_factory.mktemp("kdef-flat")
    tree = flat_tree(root / "raw")
    convert("kdef", root / "raw", root / "out", workers=1, progress=False)
    return root, tree


def test_label_map_is_the_expression_codes(flat):
    root, _ = flat
    card = read_card(root / "out")
    meta = ferbench_metadata(pq.read_schema(root / "out" / card.shards[0]))
    names = {code: EMOTIONS[i] for code, i in meta["label_map"].items()}
    assert names == {
        "AF": "fear", "AN": "anger", "DI": "disgust", "HA": "happiness", "NE": "neutral", "SA": "sadness", "SU": "surprise",
    }  # fmt: skip
    assert "contempt" not in names.values() and sorted(names) == sorted(EXPRESSIONS)


def test_name_parts_become_columns_and_both_sessions_are_one_subject(flat):
    root, tree = flat
    rows = _rows(root / "out")
    for sid, (subject, session, gender, angle, code, label) in tree.rows.items():
        r = rows[sid]
        got = (r["subject_id"], r["session"], r["gender"], r["angle"], r["label_raw"], r["label"])
        assert got == (subject, session, gender, angle, code, label)
        assert r["rgb"]["bytes"] == (root / "raw" / r["rgb"]["path"]).read_bytes()  # JPEG passed through
    assert rows["kdef/AM01HAFL"]["rgb"]["path"] == "KDEF/AM01/AM01HAFL.jpg"
    sessions = defaultdict(set)
    for r in rows.values():
        sessions[r["subject_id"]].add(r["session"])
    assert sessions == {"kdef:M01": {"A", "B"}, "kdef:F02": {"A"}}
    assert {r["angle"] for r in rows.values() if r["subject_id"] == "kdef:M01"} == {"FL", "HL", "S", "HR", "FR"}


def test_complete_and_short_folders_and_sample_ids_ignore_the_root(flat, tmp_path):
    root, tree = flat
    result = convert("kdef", root / "raw" / "KDEF", tmp_path / "out", workers=1, progress=False)
    assert result.report["layout"] == "KDEF"
    assert set(_rows(tmp_path / "out", ("sample_id",))) == set(tree.rows)  # not prefixed by where the root points
    (note,) = result.report["notes"]
    assert "2 of 3 session folders hold fewer than 35" in note and "AF02 (7)" in note and "AM01" not in note


def test_lower_case_names_and_session_folders_in_the_root(tmp_path):
    raw = tmp_path / "raw"
    write_kdef(raw, [photo("B", "F", 7, "SU", "HR"), photo("A", "M", 35, "DI", "FL")], top="", ext=".jpeg")
    (raw / "BF07").rename(raw / "bf07")
    (raw / "bf07" / "BF07SUHR.jpeg").rename(raw / "bf07" / "bf07suhr.JPEG")
    write_kdef(raw, [photo("A", "M", 36, "NE", "S"), photo("A", "F", 1, "NE", "S", name="AF01NES2", folder="AM35")], top="")
    write_kdef(raw, [photo("A", "F", 1, "NE", "S")], top="photos")  # not a session folder: ignored
    result = convert("kdef", raw, tmp_path / "out", workers=1, progress=False)
    assert result.report["layout"] == "KDEF"
    rows = _rows(tmp_path / "out")
    assert sorted(rows) == ["kdef/AM35DIFL", "kdef/BF07SUHR"]
    assert (rows["kdef/BF07SUHR"]["subject_id"], rows["kdef/BF07SUHR"]["rgb"]["path"]) == ("kdef:F07", "bf07/bf07suhr.JPEG")
    assert _faults(result) == [("malformed-name", "AM35/AF01NES2.JPG"), ("malformed-name", "AM36/AM36NES.JPG")]
    reasons = " ".join(f["reason"] for f in result.report["faults"])
    assert "person 36 is outside 01..35" in reasons
    assert "ignored beside the session folders in ./: photos" in result.report["notes"]


def test_where_the_tree_may_sit(tmp_path):
    wrapped_tree(tmp_path / "deep" / "a" / "b")  # KDEF/ four levels down: found
    result = convert("kdef", tmp_path / "deep", tmp_path / "out", workers=1, progress=False)
    assert result.report["layout"] == "KDEF_and_AKDEF"
    assert read_card(tmp_path / "out").num_rows == 63
    wrapped_tree(tmp_path / "deeper" / "a" / "b" / "c")  # five levels down: not searched
    with pytest.raises(DatasetNotFoundError, match="no session folders like AF01/"):
        convert("kdef", tmp_path / "deeper", tmp_path / "out2", progress=False)
    flat_tree(tmp_path / "two" / "one")
    flat_tree(tmp_path / "two" / "other")
    with pytest.raises(FerbenchError, match="several folders of session folders"):
        convert("kdef", tmp_path / "two", tmp_path / "out3", progress=False)


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """12 people (6 per gender), both sessions, every expression at the S and HL angles."""
    root = tmp_path_factory.mktemp("kdef-people")
    photos = [
        photo(session, gender, n, e, a)
        for gender in "FM" for n in range(1, 7) for session in "AB" for e in EXPRESSIONS for a in ("S", "HL")
    ]  # fmt: skip
    write_kdef(root / "raw", photos, top="KDEF")
    convert("kdef", root / "raw", root / "out", workers=1, progress=False)
    return root / "out"


def _angle(sample_id: str) -> str:
    return sample_id.removeprefix("kdef/")[6:]


def test_frontal_protocol_takes_straight_photographs_and_keeps_a_person_in_one_fold(people, tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))
    frontal = materialise("kdef7-frontal", [people], seed=2)
    every = materialise("kdef7", [people], seed=2)
    assert frontal.meta["n_folds"] == every.meta["n_folds"] == 10
    assert frontal.meta["counts"]["samples"] == 12 * 2 * 7 and every.meta["counts"]["samples"] == 12 * 2 * 7 * 2
    for manifest, angles in ((frontal, {"S"}), (every, {"S", "HL"})):
        t = manifest.table.to_pylist()
        assert {_angle(r["sample_id"]) for r in t} == angles
        test_fold = defaultdict(set)
        sessions = defaultdict(set)
        for r in t:
            if r["role"] == "test":
                test_fold[r["subject_id"]].add(r["fold"])
                sessions[r["subject_id"]].add(r["sample_id"].removeprefix("kdef/")[0])
        assert len(test_fold) == 12 and all(len(f) == 1 for f in test_fold.values())
        assert all(s == {"A", "B"} for s in sessions.values())  # both sessions tested together


def test_synthetic_sessions_are_one_person(tmp_path):
    summary = SYNTH_LAYOUTS.get("kdef")(tmp_path / "raw", subjects=1, seed=0, size=16, angles=("S", "HR"))
    assert summary["rows"] == 2 * 7 * 2
    convert("kdef", tmp_path / "raw", tmp_path / "out", workers=1, progress=False)
    rows = _rows(tmp_path / "out", ("sample_id", "subject_id", "session", "angle"))
    assert {sid: r["subject_id"] for sid, r in rows.items()} == {sid: t["subject_id"] for sid, t in summary["samples"].items()}
    assert len({r["subject_id"] for r in rows.values()}) == 1
    assert {(r["session"], r["angle"]) for r in rows.values()} == {("A", "S"), ("A", "HR"), ("B", "S"), ("B", "HR")}
    with pytest.raises(FerbenchError, match="angles must be some of"):
        SYNTH_LAYOUTS.get("kdef")(tmp_path / "raw2", subjects=1, angles=("UP",))
