"""The converted dataset directory (``ferbench.converted``): layout, card, README, integrity, old layout."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fixtures.tables import row, subject_rows, write

from ferbench import cli
from ferbench.converted import CARD_FILE, README_FILE, REPORT_FILE, DatasetDirError, open_dataset, read_card, read_table
from ferbench.dataset_card import features_yaml
from ferbench.protocols import materialise
from ferbench.schema import EMOTIONS


@pytest.fixture
def data(tmp_path):
    return write(tmp_path, "toy", subject_rows("toy", subjects=4, per_subject=3, classes=(0, 1, 2)))


def test_layout_is_data_folder_readme_card_and_report(data):
    assert sorted(p.name for p in data.iterdir()) == sorted([CARD_FILE, README_FILE, REPORT_FILE, "data"])
    card = read_card(data)
    assert card.shards == ("data/part-00000.parquet",) and card.num_rows == 12
    assert card.shard_bytes == ((data / card.shards[0]).stat().st_size,)
    assert set(card.column_hashes) == set(pq.read_schema(data / card.shards[0]).names)


def test_readme_front_matter_is_the_hub_format(data):
    import datasets

    text = (data / README_FILE).read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}]
    assert front["dataset_info"]["splits"][0]["num_examples"] == 12
    schema = pq.read_schema(data / "data" / "part-00000.parquet")
    ours = features_yaml(schema)
    assert front["dataset_info"]["features"] == ours
    hub = datasets.Features.from_dict(json.loads(schema.metadata[b"huggingface"])["info"]["features"])
    hub["label"] = datasets.ClassLabel(names=list(EMOTIONS))
    by_name = lambda fs: sorted(fs, key=lambda f: f["name"])  # noqa: E731
    assert by_name(ours) == by_name(hub._to_yaml_list())  # the Hub's own YAML of the same features
    labels = next(f for f in ours if f["name"] == "label")
    assert labels["dtype"]["class_label"]["names"] == {str(i): n for i, n in enumerate(EMOTIONS)}
    assert "| neutral |" in text and "| toy |" not in text


def test_missing_or_renamed_shard_is_one_clear_error(data, capsys):
    (data / "data" / "part-00000.parquet").rename(data / "data" / "renamed.parquet")
    with pytest.raises(DatasetDirError, match="shard data/part-00000.parquet is missing"):
        open_dataset(data)
    assert cli.main(["info", str(data)]) == 2
    err = capsys.readouterr().err
    assert "shard data/part-00000.parquet is missing" in err and "Traceback" not in err


def test_rows_rewritten_behind_the_card_are_refused(data, tmp_path):
    shard = data / "data" / "part-00000.parquet"
    table = pq.read_table(shard)
    relabelled = pa.array([(x + 1) % 3 for x in table.column("label").to_pylist()], pa.int8())
    pq.write_table(table.set_column(table.schema.get_field_index("label"), table.schema.field("label"), relabelled), shard)
    card = json.loads((data / CARD_FILE).read_text())
    card["shard_bytes"] = [shard.stat().st_size]  # even with the size fixed up
    (data / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(DatasetDirError, match=r"column\(s\) \['label'\] no longer match"):
        materialise("ckplus", [data])
    with pytest.raises(DatasetDirError, match="label"):
        read_table(data, ["sample_id", "label"])


def test_truncated_shard_is_refused(data):
    shard = data / "data" / "part-00000.parquet"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(DatasetDirError, match="truncated or rewritten"):
        open_dataset(data)


def test_first_layout_is_still_read(data, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    card = json.loads((data / CARD_FILE).read_text())
    shutil.copy(data / "data" / "part-00000.parquet", old / "part-00000.parquet")
    legacy = {k: v for k, v in card.items() if k not in ("layout_version", "shard_bytes", "column_hashes")}
    (old / "dataset.json").write_text(json.dumps({**legacy, "shards": ["part-00000.parquet"]}))
    opened = open_dataset(old)
    assert opened.legacy and opened.read().num_rows == 12
    assert cli.main(["info", str(old)]) == 0


@pytest.mark.parametrize("fingerprint", ["../../x", "abc", "A" * 16])
def test_card_fingerprint_must_be_hex(data, fingerprint):
    card = json.loads((data / CARD_FILE).read_text())
    (data / CARD_FILE).write_text(json.dumps({**card, "fingerprint": fingerprint}))
    with pytest.raises(DatasetDirError, match="fingerprint"):
        open_dataset(data)


def test_not_a_dataset_names_the_directory(tmp_path):
    with pytest.raises(DatasetDirError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / CARD_FILE).write_text("[1, 2")
    with pytest.raises(DatasetDirError, match="unreadable card"):
        open_dataset(tmp_path / "junk")


def test_info_counts_rows_without_subject_once(tmp_path, capsys):
    from ferbench.commands.info import summary

    rows = subject_rows("toy", subjects=3, per_subject=2, classes=(0, 1)) + [row("toy", f"n{i}", 1) for i in range(5)]
    data = write(tmp_path, "toy", sorted(rows, key=lambda r: r["sample_id"]))
    subjects = summary(data)["subjects"]
    assert subjects["distinct"] == 3 and subjects["rows_without_subject"] == 5
    none = write(tmp_path, "plain", [row("plain", f"p{i}", 0) for i in range(4)])
    assert summary(none)["subjects"]["rows_without_subject"] == 4
