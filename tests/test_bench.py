"""``ferbench bench --quick``: report structure, peers side by side, skipped peers (no timing assertions)."""

from __future__ import annotations

import inspect
import json

import pytest

from ferbench.bench import BENCHMARKS, BenchResult, Comparison, measure
from ferbench.bench.base import compared, missing
from ferbench.cli import main
from ferbench.commands.bench import markdown

#: A representative quick subset: a whole-process conversion against HF datasets, a loader against
#: torchvision and HF datasets, the training loop, the verifier and an absolute budget.
SUBSET = ["convert", "loader_png", "loop", "verify", "vrml"]
PEERS = {
    "convert": {"HF datasets imagefolder → Parquet (whole process)": "datasets", "read + sha256 every file, 2 processes": None,
                "read + sha256 every file, 1 process": None},
    "loader_png": {"torchvision ImageFolder + DataLoader": "torchvision",
                   "HF datasets imagefolder + with_transform + DataLoader": "datasets", "the loader's decoding alone in 2 processes": None},
}


def _check_row(name: str, r: dict) -> None:
    assert r["name"] == name and r["figure"] > 0 and r["unit"] == "s" and r["what"]
    assert r["machine"]["cpus"] >= 1 and "loadavg_1min" in r["machine"]
    assert r["baseline"]["kind"] == "baseline" and r["ratio"] == r["baseline"]["ratio"]
    for c in [r["baseline"], *r["peers"]]:
        assert c["kind"] in ("baseline", "peer", "limit") and c["status"] in ("ok", "skipped")
        if c["status"] == "ok":
            assert c["figure"] > 0 and c["ratio"] == pytest.approx(r["figure"] / c["figure"])
            assert c["met"] == (None if c["goal"] is None else c["ratio"] <= c["goal"])
        else:  # skipped only for a missing package here: a failing peer is a bug
            assert c["figure"] is None and c["ratio"] is None and c["note"].startswith("not installed: ")
    if r["goal"] is not None:
        assert r["baseline"]["goal"] == r["goal"]


def test_quick_bench_report(tmp_path, capsys):
    assert main(["bench", "--quick", "--only", *SUBSET, "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["quick"] is True and list(report["results"]) == sorted(SUBSET)
    for name, r in report["results"].items():
        _check_row(name, r)
    for name, expected in PEERS.items():
        peers = {c["name"]: c for c in report["results"][name]["peers"]}
        assert set(peers) == set(expected)
        for peer, module in expected.items():  # installed peers must have run
            assert peers[peer]["status"] == ("skipped" if module and missing(module) else "ok"), peers[peer]
    convert = report["results"]["convert"]
    n = BENCHMARKS["convert"].quick["n"]
    assert convert["notes"]["rows"] == convert["notes"]["images"] == n
    assert convert["notes"]["hf_rows"] in (n, None)
    assert convert["baseline"]["name"] == "read + sha256 every file + validate every image in full, 2 processes"
    hf = next(c for c in convert["peers"] if c["name"].startswith("HF datasets"))
    assert hf["goal"] == 0.2  # the claim: at least 5x faster than HF datasets, whole process
    loader = report["results"]["loader_png"]["notes"]
    seen = loader["samples_seen"]
    assert set(seen.values()) == {loader["samples_per_pass"]}  # every contender did the same work
    assert len({tuple(s) for s in loader["batch_shapes"].values()}) == 1  # ... into the same batches
    md = (tmp_path / "bench.md").read_text()
    assert "| benchmark | ferbench (s) | compared with | kind | its figure (s) | ratio | goal |" in md
    for name, r in report["results"].items():
        assert md.count(f"\n| {name} | ") == 1
        assert md.count(f"- **{name}**: ") == 1
    assert md.count("\n| | | ") == sum(len(r["peers"]) for r in report["results"].values())
    assert "| vrml |" in capsys.readouterr().out


def test_a_missing_peer_is_reported_skipped(monkeypatch):
    import ferbench.bench.convert as convert

    monkeypatch.setattr(convert, "missing", lambda *m: "not installed: datasets")
    r = BENCHMARKS["convert"].run(quick=True)
    hf = next(c for c in r.peers if c.name.startswith("HF datasets"))
    assert (hf.status, hf.figure, hf.ratio, hf.note) == ("skipped", None, None, "not installed: datasets")
    assert r.notes["hf_rows"] is None and r.baseline.status == "ok"
    md = markdown({"quick": True, "machine": r.machine, "results": {"convert": r.to_dict()}})
    assert "| HF datasets imagefolder → Parquet (whole process) | peer | skipped (not installed: datasets) | — |" in md


def test_a_failing_peer_is_skipped_with_its_error_and_ferbench_failures_raise():
    def boom():
        raise RuntimeError("no such thing\nlast line")

    t = measure({"ours": lambda: 1, "peer": boom}, repeat=2, warmup=1, fragile=("peer",))
    assert len(t["ours"].runs) == 2 and t["ours"].value == 1 and t["peer"].runs == []
    c = compared("peer", "peer", t["peer"])
    assert c.status == "skipped" and c.figure is None and c.note == "failed: RuntimeError: last line"
    with pytest.raises(RuntimeError):
        measure({"ours": boom}, repeat=1)
    r = BenchResult(2.0, "x", baseline=Comparison("b", "baseline", 4.0), peers=[c, Comparison("p", "peer", 1.0, goal=1.5)], goal=0.4)
    assert r.ratio == 0.5 and r.baseline.met is False and r.peers[1].ratio == 2.0 and r.peers[1].met is False
    assert r.met is False and r.to_dict()["peers"][0]["status"] == "skipped"


def test_registry_and_quick_sizes():
    assert {"convert", "convert_affectnet", "convert_affectnet_unchecked", "loader_jpeg", "loader_png", "loader_memory", "loop", "protocols", "verify",
            "vrml", "render_view", "render_mesh", "render_grid", "leaderboard"} <= set(BENCHMARKS)
    for name, b in BENCHMARKS.items():
        assert BENCHMARKS.origin(name).startswith("ferbench.bench.") and b.doc
        params = inspect.signature(b.fn).parameters
        assert set(b.quick) | set(b.kwargs) <= set(params), name
    assert sorted(n for n, b in BENCHMARKS.items() if b.gpu) == ["loader_cuda_resnet50", "loop_cuda_resnet50", "loop_cuda_vit_b16"]


def test_unknown_or_gpu_benchmark_is_an_error(tmp_path, capsys):
    assert main(["bench", "--only", "loader_pgn", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark 'loader_pgn' (did you mean 'loader_png'?); known: convert, " in capsys.readouterr().err
    assert main(["bench", "--only", "loop_cuda_*", "--out", str(tmp_path)]) == 2
    assert "need --device cuda" in capsys.readouterr().err


def test_feed_benchmark_row_on_the_cpu():
    """``loader_cuda_resnet50``'s function with a tiny model on the CPU: the row compares a streamed
    epoch with a memory-served one, and says where ``auto`` decoded and why."""
    from ferbench.bench.feed import bench_feed

    r = bench_feed(model="tiny_cnn", n=192, size=32, batch=32, workers=2, device="cpu", precision="fp32",
                   channels_last=False, epochs=1)
    r.name = "feed"
    r = r.to_dict()
    _check_row("feed", {**r, "machine": {"cpus": 2, "loadavg_1min": 0}})
    notes = r["notes"]
    assert r["baseline"]["goal"] == 1.05 and notes["samples"] == 192
    assert set(notes["samples_per_s"]) == {"ferbench", "memory", "loader_cpu"}  # no GPU decode without CUDA
    assert notes["decode"]["used"] == "cpu" and "CUDA devices only" in notes["decode"]["why"]
    assert notes["model_samples_per_s"] > 0
