"""The contract every registered dataset must pass, run over each one's fixture variants.

A dataset folder ``ferbench/datasets/<name>/`` provides ``fixture.py`` with ``VARIANTS``
(variant → ``write(root) -> Expected``, see ``ferbench.datasets.base.Expected``). For every
(dataset, variant): the rows and labels are exactly the expected ones, every planted fault is
reported with kind, file and row, ``--strict`` stops, shards are byte-identical for reversed
file order and for 1 vs 2 workers, and the output reads with no ferbench code (HF ``datasets``,
pyarrow, pandas, DuckDB). Per dataset: an empty directory names the layouts, the licence and the
homepage; the synthetic writer round-trips through the converter; the README lists it. The
per-dataset test files keep only their quirks.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from fixtures.common import assert_identical_datasets, copy_in_reverse_order

from ferbench.build import convert
from ferbench.converted import read_card, read_table
from ferbench.datasets import DATASETS
from ferbench.datasets.base import Expected
from ferbench.errors import ConversionError, DatasetNotFoundError
from ferbench.schema import EMOTIONS
from ferbench.synth.layouts import SYNTH_LAYOUTS

README = Path(__file__).resolve().parents[1] / "README.md"


def _variants(name: str) -> dict:
    """The dataset's fixture variants; none where its folder has no ``fixture.py`` (the meta test
    below fails for it)."""
    try:
        return importlib.import_module(f"ferbench.datasets.{name}.fixture").VARIANTS
    except ModuleNotFoundError as exc:
        if exc.name != f"ferbench.datasets.{name}.fixture":
            raise
        return {}


#: The datasets ferbench ships (tests register throw-away loaders of their own).
NAMES = [n for n in DATASETS.names() if DATASETS.origin(n).startswith("ferbench.datasets.")]
CASES = [(name, variant) for name in NAMES for variant in _variants(name)]


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{v}" for n, v in CASES])
def case(request, tmp_path_factory):
    name, variant = request.param
    root = tmp_path_factory.mktemp(f"{name}-{variant}")
    expected: Expected = _variants(name)[variant](root / "raw")
    result = convert(name, root / "raw", root / "out", workers=1, progress=False, **expected.options)
    return name, root, expected, result


def _faults(result) -> list[tuple]:
    return sorted(((f["kind"], f["file"], f["row"]) for f in result.report["faults"]), key=str)


def test_rows_and_labels_are_exactly_the_expected_ones(case):
    name, root, expected, result = case
    assert result.report["layout"] == expected.layout
    rows = read_table(root / "out", ["sample_id", "dataset", "label", "subject_id"]).to_pylist()
    assert {r["sample_id"]: r["label"] for r in rows} == expected.labels
    assert {r["dataset"] for r in rows} == {name}
    if expected.subjects is not None:
        assert {r["sample_id"]: r["subject_id"] for r in rows} == expected.subjects


def test_every_planted_fault_is_reported_with_kind_file_and_row(case):
    _, _, expected, result = case
    assert _faults(result) == sorted(expected.faults, key=str)


def test_strict_stops_at_a_fault_and_writes_nothing(case):
    name, root, expected, _ = case
    if not expected.faults:
        pytest.skip("this variant plants no fault")
    with pytest.raises(ConversionError, match="--strict"):
        convert(name, root / "raw", root / "strict", strict=True, workers=1, progress=False, **expected.options)
    assert not (root / "strict").exists()


def test_shards_do_not_depend_on_file_order_or_workers(case):
    name, root, expected, _ = case
    copy_in_reverse_order(root / "raw", root / "reversed")
    convert(name, root / "reversed", root / "out2", workers=2, progress=False, **expected.options)
    assert_identical_datasets(root / "out", root / "out2")


def test_standard_readers_need_no_ferbench_code(case):
    import datasets
    import duckdb
    import pandas as pd
    import pyarrow.dataset as pads

    _, root, expected, _ = case
    out = root / "out"
    n = len(expected.labels)
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(root / "hf"))
    assert len(ds) == n and ds.features["label"].names == list(EMOTIONS)
    by_id = {sid: label for sid, label in zip(ds["sample_id"], ds["label"])}
    assert by_id == expected.labels
    first = next(r for r in ds if r["rgb"] is not None)
    first["rgb"].load()
    assert pads.dataset(out / "data").count_rows() == n
    assert len(pd.read_parquet(out / "data", columns=["sample_id"])) == n
    import timm.data

    tds = timm.data.create_dataset(f"hfds/{out}", root=str(out), split="train", input_key="rgb", target_key="label")
    img, target = tds[0]
    assert len(tds) == n and img.size[0] > 0 and (target in (None, -1) or 0 <= target < len(EMOTIONS))  # timm: -1 = no label
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/data/*.parquet')").fetchall() == [(n,)]


@pytest.mark.parametrize("name", NAMES)
def test_empty_directory_names_layouts_licence_and_homepage(name, tmp_path):
    loader = DATASETS.get(name)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        convert(name, tmp_path / "empty", tmp_path / "out", progress=False)
    text = str(err.value)
    assert all(f"[{layout}]" in text for layout in loader.layouts)
    assert loader.license in text and loader.homepage in text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", SYNTH_LAYOUTS.names())
def test_synthetic_world_round_trips_through_the_converter(name, tmp_path):
    summary = SYNTH_LAYOUTS.get(name)(tmp_path / "raw", subjects=2, seed=1, size=48)
    convert(name, tmp_path / "raw", tmp_path / "out", workers=1, progress=False)
    rows = read_table(tmp_path / "out", ["sample_id", "label"]).to_pylist()
    assert {r["sample_id"]: r["label"] for r in rows} == {sid: t["label"] for sid, t in summary["samples"].items()}
    assert read_card(tmp_path / "out").synthetic is True


@pytest.mark.parametrize("name", NAMES)
def test_registered_dataset_has_fixture_synth_driver_and_readme_row(name):
    assert _variants(name), f"{name}: no fixture variants (datasets/{name}/fixture.py)"
    assert name in SYNTH_LAYOUTS, f"{name}: no synthetic writer registered (datasets/{name}/synth.py)"
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", README.read_text(), re.M)
    assert name in rows, f"{name}: no row in the README's dataset table"


def test_readme_dataset_table_is_generated_from_the_registry():
    from ferbench.commands.datasets import table

    text = README.read_text()
    block = text.split("<!-- datasets:begin -->\n", 1)[1].split("<!-- datasets:end -->", 1)[0]
    shipped = [line for line in table(markdown=True).splitlines() if not line.startswith("| `") or _shipped(line)]
    assert block.strip() == "\n".join(shipped).strip(), "README dataset table is stale: paste `ferbench datasets --markdown`"


def _shipped(row: str) -> bool:
    """A table row of a dataset that ferbench itself registers (tests register throw-away ones)."""
    return DATASETS.origin(row.split("`")[1]).startswith("ferbench.datasets.")
