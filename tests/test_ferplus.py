"""FER+ converter: positional join, label rules, faults — on a hand-checked replica and the real votes.

The replica's rows, labels, faults, --strict, order/worker independence and standard readers are
checked by tests/test_dataset_contract.py (``ferbench/datasets/ferplus/fixture.py`` ``VARIANTS``).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from ferbench.build import convert
from ferbench.converted import read_card, read_table
from ferbench.datasets.base import Report
from ferbench.datasets.ferplus.loader import RULES, FERPlus
from ferbench.errors import ConversionError, DatasetNotFoundError, FerbenchError
from ferbench.datasets.fer2013.layout import write_csv
from ferbench.datasets.ferplus import fixture as fx

REAL_VOTES = Path("/work/shared/real/ferplus/fer2013new.csv")
SPLITS = ("Training", "PublicTest", "PrivateTest")
#: Canonical index of neu/hap/sur/sad/ang/dis/fea/con, the order of the documented count tables.
FERPLUS_ORDER = (0, 1, 3, 2, 6, 5, 4, 7)


def _convert(root: Path, out: Path, **kwargs):
    return convert("ferplus", root, out, workers=1, progress=False, **kwargs)


@pytest.fixture(scope="module", params=[(12, "fer2013.csv"), (11, "icml_face_data.csv")], ids=["12col", "11col-icml"])
def built(request, tmp_path_factory):
    header, layout = request.param
    root = tmp_path_factory.mktemp("ferplus")
    exp = fx.build(root, header, layout)
    out = tmp_path_factory.mktemp("ferplus_out") / "ds"
    result = _convert(root, out)
    return header, layout, root, exp, out, result, {r["sample_id"]: r for r in read_table(out).to_pylist()}


def test_label_map_is_the_documented_one():
    assert FERPlus.label_map == {
        "neutral": 0, "happiness": 1, "surprise": 3, "sadness": 2, "anger": 6,
        "disgust": 5, "fear": 4, "contempt": 7, "unknown": None, "NF": None,
    }  # fmt: skip


def test_majority_rows_and_columns(built):
    header, layout, _, exp, _, result, rows = built
    assert result.report["layout"] == f"{layout}+fer2013new.csv"
    expected = exp.labels("majority")
    assert set(rows) == set(expected)
    for sid, name in expected.items():
        row, i = rows[sid], int(sid.split("/")[1])
        usage, image_name, votes, _ = fx.ROWS[i]
        assert (row["label_raw"], row["label"]) == (name, fx.CANONICAL.get(name))
        assert row["label_source"] == "ferplus-majority"
        assert row["source_split"] == usage and row["csv_row"] == i and row["subject_id"] is None
        assert row["votes"] == list(votes)
        assert row["fer2013_label"] == fx.FER_EMOTIONS[i]
        assert row["image_name"] == ((image_name or None) if header == 12 else None)
        with Image.open(io.BytesIO(row["rgb"]["bytes"])) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "L", (48, 48))
    assert read_card(built[4]).null_labels == sum(1 for n in expected.values() if n in ("unknown", "NF"))


def test_quirk_rows(built):
    header, *_, rows = built
    assert rows["ferplus/00003"]["label"] is None and rows["ferplus/00003"]["label_raw"] == "NF"
    assert rows["ferplus/00002"]["label"] is None and rows["ferplus/00002"]["label_raw"] == "unknown"
    assert sum(rows["ferplus/00004"]["votes"]) == 9 and rows["ferplus/00004"]["label"] == 0
    assert rows["ferplus/00005"]["label"] == rows["ferplus/00006"]["label"] == 1
    if header == 12:
        assert rows["ferplus/00005"]["image_name"] == rows["ferplus/00006"]["image_name"] == "fer0000005.png"
        assert rows["ferplus/00003"]["image_name"] is None


def test_faults_and_header_note(built):
    header, _, _, exp, _, result, _ = built
    assert {(f["kind"], f["file"], f["row"]) for f in result.report["faults"]} == exp.faults
    reasons = {f["kind"]: f["reason"] for f in result.report["faults"]}
    assert reasons["usage-mismatch"] == f"Usage 'PublicTest' here but 'PrivateTest' in {exp.fer_file}"
    assert reasons["malformed-row"] == "surprise vote is 'x', not a count"
    assert any("11-column" in note for note in result.report["notes"]) == (header == 11)


@pytest.mark.parametrize("rule", ["plurality", "probability", "crossentropy", "multi_target"])
def test_other_label_rules(rule, tmp_path):
    exp = fx.build(tmp_path / "raw")
    _convert(tmp_path / "raw", tmp_path / "out", label_rule=rule)
    rows = {r["sample_id"]: r for r in read_table(tmp_path / "out").to_pylist()}
    assert {sid: r["label_raw"] for sid, r in rows.items()} == exp.labels(rule)
    assert all(r["label"] == fx.CANONICAL.get(r["label_raw"]) for r in rows.values())
    assert {r["label_source"] for r in rows.values()} == {f"ferplus-{rule}"}


def test_unknown_rule_is_refused(tmp_path):
    with pytest.raises(FerbenchError, match="label_rule"):
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"), label_rule="mean")


def test_row_count_mismatch_is_fatal(tmp_path):
    fx.build(tmp_path, rows=len(fx.ROWS) - 1)
    with pytest.raises(ConversionError, match=r"fer2013new.csv has 17 data rows but fer2013/fer2013.csv has 18"):
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))


def test_strict_stops_at_the_first_fault(tmp_path):
    fx.build(tmp_path)
    with pytest.raises(ConversionError, match=r"bad-pixel-count in fer2013/fer2013.csv, row 15"):
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"), strict=True)
    assert not (tmp_path.with_name(tmp_path.name + "-out")).exists()


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no fer2013.csv or icml_face_data.csv and no fer2013new.csv"):
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))
    fx.build(tmp_path)
    shutil.rmtree(tmp_path / "FERPlus")
    with pytest.raises(DatasetNotFoundError, match=r"no fer2013new.csv\.") as err:
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))
    assert "Usage,Image name,neutral" in str(err.value)


# -- the real fer2013new.csv with a synthetic fer2013.csv of the same 35,887 rows ------------------
@pytest.fixture(scope="session")
def real_roots(tmp_path_factory) -> tuple[Path, Path]:
    """Two raw roots sharing one synthetic fer2013.csv: the real 12-column votes, and the same
    votes with the ``Image name`` column dropped (the original 11-column file)."""
    with open(REAL_VOTES, newline="") as f:
        lines = list(csv.reader(f))
    usages = [line[0] for line in lines[1:]]
    root12, root11 = tmp_path_factory.mktemp("real12"), tmp_path_factory.mktemp("real11")
    blank = " ".join(["0"] * 2304)
    fer = write_csv(root12 / "fer2013.csv", "fer2013", [blank] * len(usages), ["6"] * len(usages), usages)
    shutil.copy(REAL_VOTES, root12 / "fer2013new.csv")
    os.link(fer, root11 / "fer2013.csv")
    with open(root11 / "fer2013new.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([line[:1] + line[2:] for line in lines])
    return root12, root11


@pytest.fixture(scope="session")
def real_built(real_roots, tmp_path_factory):
    out = tmp_path_factory.mktemp("real_out") / "ds"
    result = convert("ferplus", real_roots[0], out, workers=2, progress=False)
    return result, read_table(out, ["sample_id", "source_split", "label", "label_raw", "image_name", "votes"]).to_pylist()


def test_real_votes_majority_counts(real_built):
    result, rows = real_built
    assert result.num_rows == 35_887 and result.report["faults_total"] == 0
    labelled = Counter(r["source_split"] for r in rows if r["label"] is not None)
    assert labelled == {"Training": 25_060, "PublicTest": 3_199, "PrivateTest": 3_153}
    per_class = Counter((r["source_split"], r["label"]) for r in rows)
    assert [per_class[("Training", c)] for c in FERPLUS_ORDER] == [8740, 7287, 3149, 3014, 2100, 119, 532, 119]
    assert [per_class[("PublicTest", c)] for c in FERPLUS_ORDER] == [1182, 865, 415, 351, 287, 24, 62, 13]
    assert [per_class[("PrivateTest", c)] for c in FERPLUS_ORDER] == [1090, 893, 396, 384, 273, 18, 83, 16]


def test_real_votes_quirks(real_built):
    _, rows = real_built
    nameless = [r for r in rows if r["image_name"] is None]
    assert Counter(r["source_split"] for r in nameless) == {"Training": 148, "PublicTest": 10, "PrivateTest": 15}
    assert all(r["label"] is None and r["label_raw"] == "NF" and r["votes"] == [0] * 9 + [10] for r in nameless)
    nine = next(r for r in rows if r["sample_id"] == "ferplus/10435")
    assert (nine["image_name"], nine["votes"], nine["label"]) == ("fer0010406.png", [4, 0, 0, 0, 0, 3, 1, 0, 1, 0], 0)
    names = Counter(r["image_name"] for r in rows if r["image_name"] is not None)
    assert sum(names.values()) == 35_714 and len(names) == 35_710


def test_real_votes_plurality_rule(real_built):
    """The documented plain-argmax counts on named rows (format notes §2.6), from the stored votes."""
    _, rows = real_built
    kept = Counter(r["source_split"] for r in rows if r["image_name"] is not None and RULES["plurality"](r["votes"]) < 8)
    assert kept == {"Training": 28_389, "PublicTest": 3_553, "PrivateTest": 3_546}


def test_real_votes_11_column_header_gives_the_same_labels(real_roots, real_built):
    _, rows = real_built
    items = list(FERPlus(real_roots[1]).scan(Report()))
    assert [(i.sample_id, i.payload[0]["label"], i.payload[0]["label_raw"]) for i in items] == [
        (r["sample_id"], r["label"], r["label_raw"]) for r in rows
    ]
    assert all(i.payload[0]["image_name"] is None for i in items)
