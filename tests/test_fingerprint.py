"""Dataset fingerprints: content-only, independent of how rows were chunked or written."""

from __future__ import annotations

import pyarrow as pa
import pytest
from ferbench.datasets.affectnet.fixture import small_tree

from ferbench.build import convert
from ferbench.shards import write_dataset

from ferbench.converted import read_card, read_table
from ferbench.fingerprint import ContentHash
from ferbench.schema import IMAGE_TYPE

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("label", pa.int8()),
        ("score", pa.float32()),
        ("rgb", IMAGE_TYPE),
        ("points", pa.list_(pa.list_(pa.float32()))),
        ("aus", pa.list_(pa.struct([("au", pa.int16()), ("side", pa.string())]))),
    ]
)


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _rows() -> list[dict]:
    return [
        {
            "id": f"r{i}",
            "label": None if i == 3 else i % 8,
            "score": i / 4,
            "rgb": None if i == 5 else {"bytes": bytes([i]) * (i + 3), "path": f"p/{i}.png"},
            "points": None if i == 2 else [[float(i), 1.0]] * (i % 3),
            "aus": [{"au": 12, "side": None if i % 2 else "L"}] if i % 4 else [],
        }
        for i in range(9)
    ]


def _digest(*tables: pa.Table | pa.RecordBatch) -> str:
    h = ContentHash()
    for t in tables:
        h.update_table(t)
    return h.hexdigest()


def test_same_rows_same_digest_however_chunked():
    table = _table(_rows())
    whole = _digest(table)
    assert _digest(table.slice(0, 4), table.slice(4)) == whole
    assert _digest(*table.to_batches(max_chunksize=2)) == whole
    assert _digest(pa.concat_tables([table.slice(0, 1), table.slice(1, 7), table.slice(8)])) == whole  # chunked columns
    assert _digest(table.slice(0, 4), table.slice(4, 0), table.slice(4)) == whole  # an empty batch changes nothing


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: rows[1]["rgb"].update(bytes=rows[1]["rgb"]["bytes"][:-1] + b"\xff"),  # one image byte
        lambda rows: rows[1]["rgb"].update(path="other.png"),
        lambda rows: rows[3].update(label=0),  # null label → 0
        lambda rows: rows[5].update(rgb={"bytes": b"", "path": None}),  # null image → empty bytes
        lambda rows: rows[2].update(points=[]),  # null list → empty list
        lambda rows: rows[4].update(points=[[4.0, 1.0], [4.0]]),
        lambda rows: rows[1]["aus"][0].update(side="R"),
        lambda rows: rows[0].update(id="r0 "),
        lambda rows: rows.insert(0, rows.pop(1)),  # row order
        lambda rows: rows.pop(),
    ],
)
def test_any_change_of_content_changes_the_digest(change):
    rows = _rows()
    change(rows)
    assert _digest(_table(rows)) != _digest(_table(_rows()))


def test_strings_split_differently_across_rows_differ():
    a = pa.table({"s": pa.array(["ab", "c"])})
    b = pa.table({"s": pa.array(["a", "bc"])})
    assert _digest(a) != _digest(b)


def test_convert_and_write_dataset_agree_on_the_fingerprint(tmp_path):
    small_tree(tmp_path / "raw")
    converted = convert("affectnet", tmp_path / "raw", tmp_path / "a", workers=1)
    table = read_table(tmp_path / "a")
    card = {k: getattr(read_card(tmp_path / "a"), k) for k in ("name", "layout")}
    rewritten = write_dataset([table.slice(0, 3), table.slice(3)], table.schema, tmp_path / "b", card, {})
    assert rewritten.fingerprint == converted.fingerprint == read_card(tmp_path / "b").fingerprint
    changed = table.set_column(table.schema.get_field_index("valence"), "valence", pa.nulls(len(table), pa.float32()))
    other = write_dataset([changed], table.schema, tmp_path / "c", card, {})
    assert other.fingerprint != converted.fingerprint
