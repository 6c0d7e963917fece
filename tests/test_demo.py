"""``ferbench demo`` end to end at the reduced ``--quick`` size: every stage leaves its artefact,
the results are flagged synthetic, and no person of the test role is trained on."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ferbench import cli
from ferbench.converted import read_card
from ferbench.demo import MARKER, WORLD, DemoOptions, run_demo, world_seeds
from ferbench.errors import FerbenchError
from ferbench.protocols import read_manifest


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    text = io.StringIO()
    summary = run_demo(DemoOptions(out=out, quick=True), stream=text)
    return out, summary, text.getvalue()


def _fold0(out: Path) -> dict[str, set[str]]:
    """Sample ids of each role of repeat 0 / fold 0."""
    roles = read_manifest(out / "manifests" / "global.parquet").select(0, 0)
    return {role: set(t.column("sample_id").to_pylist()) for role, t in roles.items()}


def test_every_stage_leaves_its_artefact(demo):
    out, summary, _ = demo
    for name in WORLD:
        assert read_card(out / "data" / name).synthetic is True
        assert (out / "raw" / name / "FERBENCH_SYNTHETIC").is_file()
    merged = read_card(out / "data" / "global")
    assert merged.synthetic is True and {s["name"] for s in merged.sources} == set(WORLD)
    meta = read_manifest(out / "manifests" / "global.parquet").meta
    assert meta["protocol"] == "global" and meta["leakage"]["verdict"] == "clean"
    assert meta["leakage"]["subject_overlap"] == 0 and meta["leakage"]["exact_duplicates"] == 0
    runs = [Path(d) for d in summary["runs"]]
    assert len(runs) == 2 and {d.parent for d in runs} == {out / "runs"}
    for run in runs:
        preds = pq.read_table(run / "predictions.parquet")
        assert set(preds.column("role").to_pylist()) == {"val", "test"}
        assert (run / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "leaderboard" / "index.html").read_text()
    assert "SYNTHETIC DATA" in page and page.count("data:image/png;base64,") == 2
    assert json.loads((out / "demo.json").read_text()) == summary


def test_leaderboard_ranks_both_models_with_baselines_all_synthetic(demo):
    out, summary, text = demo
    con = duckdb.connect(str(out / "leaderboard" / "ferbench.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT model, synthetic, ci_lo IS NOT NULL FROM leaderboard "
                           "WHERE metric = 'balanced_accuracy' ORDER BY model").fetchall()
        baselines = {r[0] for r in con.execute("SELECT DISTINCT system FROM baseline_scores").fetchall()}
    finally:
        con.close()
    assert rows == [("rgbd_fusion_tiny", True, True), ("tiny_cnn", True, True)]
    assert baselines == {"majority", "prior"}
    board = summary["leaderboard"]
    assert board["synthetic"] and all(m["synthetic"] for m in board["models"]) and set(board["baselines"]) == baselines
    for shown in ("SYNTHETIC DATA", "baseline: majority", "baseline: prior", "tiny_cnn", "rgbd_fusion_tiny", "by subject"):
        assert shown in text
    assert "ferbench convert" in text and str(out / "leaderboard" / "index.html") in text
    test = summary["manifest"]["fold0"]["test"]
    assert f"{test['samples']} test samples of {test['subjects']} held-out subjects" in text


def test_no_test_person_is_trained_on(demo):
    """By subject id and by the world person behind each sample (each dataset has its own people)."""
    out, summary, _ = demo
    manifest = read_manifest(out / "manifests" / "global.parquet")
    roles = manifest.select(0, 0)
    subjects = {role: set(t.column("subject_id").to_pylist()) for role, t in roles.items()}
    assert subjects["test"] and subjects["train"] and not subjects["test"] & (subjects["train"] | subjects["val"])
    people = json.loads((out / "world.json").read_text())["people"]
    ids = _fold0(out)
    persons = {role: {people[s] for s in sids} for role, sids in ids.items()}
    assert persons["test"] and not persons["test"] & (persons["train"] | persons["val"])
    assert len(set(world_seeds(0).values())) == len(WORLD)
    for run in summary["runs"]:  # the predictions are on exactly the held-out samples
        preds = pq.read_table(Path(run) / "predictions.parquet").to_pylist()
        assert {p["sample_id"] for p in preds if p["role"] == "test"} == ids["test"]


def test_refuses_to_overwrite(demo, tmp_path, capsys):
    out, _, _ = demo
    with pytest.raises(FerbenchError, match="--overwrite"):
        run_demo(DemoOptions(out=out, quick=True))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert cli.main(["demo", "--quick", "--overwrite", "--out", str(foreign)]) == 2
    assert "holds no ferbench demo" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (out / MARKER).is_file()
