"""``ferbench bench --quick``: report structure and sanity (no timing assertions)."""

from __future__ import annotations

import json

import pytest

from ferbench.bench import BENCHMARKS, QUICK
from ferbench.cli import main


def test_quick_convert_benchmark_report(tmp_path, capsys):
    assert main(["bench", "--quick", "--only", "convert", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["quick"] is True and list(report["results"]) == ["convert"]
    r = report["results"]["convert"]
    assert r["figure"] > 0 and r["baseline"] > 0 and r["goal"] == 1.5
    assert r["ratio"] == pytest.approx(r["figure"] / r["baseline"])
    n = QUICK["convert"]["n"]
    assert r["details"]["rows"] == r["details"]["images"] == n
    assert r["details"]["files"] == 5 * n  # one JPEG and four npy files per image
    md = (tmp_path / "bench.md").read_text()
    assert "| benchmark | figure (s) | baseline (s) | ratio | goal |" in md
    assert md.count("\n| convert | ") == 1
    assert "| convert |" in capsys.readouterr().out


def test_unknown_benchmark_is_an_error(tmp_path, capsys):
    assert main(["bench", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark(s) ['nope']" in capsys.readouterr().err
    assert set(QUICK) <= set(BENCHMARKS)
