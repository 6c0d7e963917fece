"""The RGB-D converters in worker processes: every scan is rendered, so blocks are small and
spread over the workers; the shards must not depend on that, and the fingerprint not even on
the block size."""

from __future__ import annotations

import pytest

from ferbench.build import convert

from ferbench.converted import read_card, read_table
from ferbench.datasets import get_loader
from ferbench.datasets.bosphorus import fixture as bosphorus
from ferbench.datasets.bu3dfe import fixture as bu3dfe
from ferbench.datasets.caldr_menders import fixture as caldr_menders

CAMERA = {"size": 96, "mm_per_px": 1.6}
CASES = {"bu3dfe": (bu3dfe.build, CAMERA), "bosphorus": (bosphorus.build, CAMERA), "caldr_menders": (caldr_menders.build, {})}


@pytest.mark.parametrize("name", sorted(CASES))
def test_blocks_in_two_workers_match_one_process(name, tmp_path, monkeypatch):
    write_fixture, options = CASES[name]
    write_fixture(tmp_path / "raw")
    assert get_loader(name)(tmp_path / "raw", **options).block_items == (2048 if name == "caldr_menders" else 64)

    def run(out: str, workers: int):
        result = convert(name, tmp_path / "raw", tmp_path / out, workers=workers, progress=False, **options)
        faults = [(f["kind"], f["file"], f["row"]) for f in result.report["faults"]]
        return result, read_card(tmp_path / out).shards, faults

    whole, whole_shards, whole_faults = run("whole", 1)
    monkeypatch.setattr(get_loader(name), "block_items", 3)
    one, shards, faults = run("one", 1)
    two, two_shards, two_faults = run("two", 2)
    assert len(whole_shards) == 1 and len(shards) == -(-one.report["items_scanned"] // 3) >= 4
    assert two_shards == shards and faults == two_faults == whole_faults
    for shard in shards:
        assert (tmp_path / "one" / shard).read_bytes() == (tmp_path / "two" / shard).read_bytes()
    # the fingerprint hashes every column (NaN landmarks included, which Table.equals never matches)
    assert whole.fingerprint == one.fingerprint == two.fingerprint
    ids = read_table(tmp_path / "whole", ["sample_id"]).column("sample_id").to_pylist()
    assert ids == sorted(ids) == read_table(tmp_path / "two", ["sample_id"]).column("sample_id").to_pylist()
