"""Manifests and runs under faults: planted checkpoints, hand-edited manifests, resume messages and
``ferbench clean``, killed ``split`` / ``run`` processes, concurrent runs into one runs folder.

The kill tests park a child process at an exact point of its progress (after an epoch's checkpoint is
written, just before a finished output is renamed into place, before verification) and kill it
there; nothing waits on a timer."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ferbench import runner
from ferbench.cli import main
from ferbench.errors import FerbenchError
from ferbench.protocols import Manifest, load_manifest, read_manifest
from ferbench.protocols.manifest import SCHEMA, content_hash
from ferbench.train.recipe import load_recipe

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
import train_fixtures as tf  # noqa: E402
from kill_points import kill_at, start, kill_when_parked  # noqa: E402


def _recipe(manifest: Path, out: Path, path: Path | None = None, **sections):
    path = path or out.parent / f"{out.name}.yaml"
    return tf.write_recipe(path, manifest, out, **sections)


def _error_lines(stderr: str) -> list[str]:
    """The error report of a failed command: exactly one line, whatever progress came before it."""
    lines = stderr.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if ": error: " in line)
    return lines[start:]


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.exists() else []


# -- 1. a planted checkpoint is never unpickled ------------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker`` (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("form", ["torch.save", "raw pickle"])
def test_a_planted_resume_checkpoint_is_refused_and_never_executed(toy, tmp_path, capsys, form):
    import torch

    recipe_path = _recipe(toy[1], tmp_path / "runs")
    (job,) = runner.plan(load_recipe(recipe_path), folds=[0])
    marker = tmp_path / "pwned"
    last = job.work / "ckpt" / "last.pt"
    last.parent.mkdir(parents=True)
    payload = {"format": 2, "epoch": 0, "model": _Payload(marker)}
    if form == "torch.save":
        torch.save(payload, last)
    else:
        last.write_bytes(pickle.dumps(payload))
    assert not marker.exists()

    capsys.readouterr()
    assert main(["run", str(recipe_path), "--device", "cpu", "--folds", "0"]) == 2
    (err,) = _error_lines(capsys.readouterr().err)
    assert not marker.exists(), "the planted pickle ran"
    assert "refusing checkpoint" in err and str(last) in err and "ferbench clean" in err
    with pytest.raises(FerbenchError, match="does not load as weights only"):
        runner.run_recipe(load_recipe(recipe_path), folds=[0])
    assert not marker.exists() and not job.finished()

    from ferbench.train.loop import read_checkpoint

    with pytest.raises(FerbenchError):
        read_checkpoint(last)
    assert not marker.exists()
    # `ferbench clean` removes it, and the job then runs from scratch
    assert main(["clean", str(tmp_path / "runs")]) == 0
    (run_dir,) = runner.run_recipe(load_recipe(recipe_path), folds=[0])
    assert json.loads((run_dir / "metrics.json").read_text())["selection"]["resumed_from_epoch"] is None


def test_resume_checkpoints_hold_only_weights_only_types(toy, tmp_path):
    """Every optimiser × schedule × stateful loss checkpoint loads with weights_only=True."""
    import torch

    def stop(epoch, row):
        raise RuntimeError("stop")

    for opt, sched, loss in (("sam", "plateau", "center"), ("adamw", "onecycle", "island"), ("sgd", "cosine", "focal")):
        out = tmp_path / f"{opt}-{sched}"
        recipe = load_recipe(_recipe(toy[1], out, optimizer={"name": opt}, scheduler={"name": sched}, loss={"name": loss},
                                     train={"epochs": 2, "precision": "fp32"}))
        with pytest.raises(RuntimeError, match="stop"):
            runner.run_recipe(recipe, folds=[0], callbacks=[stop])
        (job,) = runner.plan(recipe, folds=[0])
        state = torch.load(job.work / "ckpt" / "last.pt", weights_only=True)
        assert state["format"] == 2 and state["epoch"] == 0 and isinstance(state["result"], dict)
        (run_dir,) = runner.run_recipe(recipe, folds=[0])
        assert json.loads((run_dir / "metrics.json").read_text())["selection"]["resumed_from_epoch"] == 1


# -- 2. hand-edited manifests ------------------------------------------------------------------------------
def _edit(src: Path, dst: Path, change, *, rehash: bool = True, meta_change=None) -> Path:
    """Write ``src`` with its rows changed by ``change(list of row dicts)``; ``rehash``: record the new
    content hash (a careful forger); else keep the old one (a hand edit)."""
    m = read_manifest(src)
    rows = m.table.to_pylist()
    change(rows)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    meta = json.loads(json.dumps(m.meta))
    if rehash:
        meta["content_hash"] = content_hash(table)
    if meta_change:
        meta_change(meta)
    return Manifest(table, meta).write(dst)


def _first_test_sample(rows, fold=0):
    return next(r for r in rows if r["fold"] == fold and r["role"] == "test")


def test_a_hand_edited_manifest_is_refused_naming_the_file_and_both_hashes(toy, tmp_path, capsys):
    def leak(rows):  # a test sample moved into train: its subject is then on both sides
        _first_test_sample(rows)["role"] = "train"

    edited = _edit(toy[1], tmp_path / "edited.parquet", leak, rehash=False)
    stored = read_manifest(toy[1]).meta["content_hash"]
    actual = content_hash(read_manifest(edited, check=False).table)
    assert stored != actual
    recipe_path = _recipe(edited, tmp_path / "runs")

    for consumer in (lambda: runner.plan(load_recipe(recipe_path)),
                     lambda: __import__("ferbench.sweep", fromlist=["collect"]).collect([recipe_path]),
                     lambda: load_manifest(edited)):
        with pytest.raises(FerbenchError) as info:
            consumer()
        msg = str(info.value)
        assert "\n" not in msg and str(edited) in msg and stored in msg and actual in msg

    capsys.readouterr()
    assert main(["run", str(recipe_path), "--device", "cpu"]) == 2
    (err,) = _error_lines(capsys.readouterr().err)
    assert stored in err and actual in err
    assert main(["sweep", str(recipe_path), "--device", "cpu"]) == 2
    assert _visible(tmp_path / "runs") == []
    assert main(["verify", str(edited)]) == 1
    assert "integrity: FAILED" in capsys.readouterr().out


def test_labels_changed_in_every_fold_and_rehashed_are_caught_against_the_datasets(toy, tmp_path, capsys):
    victims = sorted({r["sample_id"] for r in read_manifest(toy[1]).table.to_pylist()})[:4]
    classes = read_manifest(toy[1]).meta["class_canonical"]

    def relabel(rows):
        for r in rows:
            if r["sample_id"] in victims:  # consistent in every fold, label index kept in step
                r["label"] = (r["label"] + 1) % len(classes)
                r["label_canonical"] = classes[r["label"]]

    edited = _edit(toy[1], tmp_path / "relabelled.parquet", relabel)
    read_manifest(edited)  # the hash matches: only the datasets can tell
    recipe_path = _recipe(edited, tmp_path / "runs")
    with pytest.raises(FerbenchError) as info:
        runner.plan(load_recipe(recipe_path))
    msg = str(info.value)
    assert "\n" not in msg and str(edited) in msg
    assert "4 sample(s)" in msg and "label 12" in msg  # 4 samples × 3 folds
    assert victims[0] in msg and "dataset label" in msg
    capsys.readouterr()
    assert main(["verify", str(edited)]) == 1
    assert "4 sample(s)" in capsys.readouterr().out

    def rename_subject(rows):  # hides who is who from the leakage check
        for r in rows:
            if r["sample_id"] == victims[0]:
                r["subject_id"] = "toyfer:nobody"

    with pytest.raises(FerbenchError, match="subject 3"):
        load_manifest(_edit(toy[1], tmp_path / "renamed.parquet", rename_subject))

    def bad_index(rows):  # label index no longer the class of label_canonical
        rows[0]["label"] = (rows[0]["label"] + 1) % len(classes)

    with pytest.raises(FerbenchError, match="label index 1"):
        load_manifest(_edit(toy[1], tmp_path / "index.parquet", bad_index))


def test_a_forged_clean_verdict_is_verified_again(toy, tmp_path, capsys):
    def leak(rows):
        _first_test_sample(rows)["role"] = "train"

    def claim_clean(meta):
        meta["leakage"]["verdict"] = "clean"

    forged = _edit(toy[1], tmp_path / "forged.parquet", leak, meta_change=claim_clean)
    assert read_manifest(forged).meta["leakage"]["verdict"] == "clean"
    recipe_path = _recipe(forged, tmp_path / "runs")
    capsys.readouterr()
    with pytest.raises(FerbenchError, match="leakage verdict is 'leaky'"):
        runner.plan(load_recipe(recipe_path))
    assert "checking for leakage again" in capsys.readouterr().err
    (job,) = runner.plan(load_recipe(recipe_path, ["protocol.allow_leakage=true"]), folds=[0])
    assert job.leakage["verdict"] == "leaky" and job.leakage["subject_overlap"] >= 1 and job.leakage["reverified"]

    # a sealed verdict is not checked again
    capsys.readouterr()
    load_manifest(toy[1])
    assert "checking for leakage again" not in capsys.readouterr().err


def test_job_ids_and_records_follow_the_actual_content(toy, tmp_path):
    def to_val(k):
        def change(rows):  # a train sample moved to val in fold 0: still clean, different rows
            [r for r in rows if r["fold"] == 0 and r["role"] == "train"][k]["role"] = "val"
        return change

    a = _edit(toy[1], tmp_path / "a.parquet", to_val(0))
    b = _edit(toy[1], tmp_path / "b.parquet", to_val(1))
    hashes = [read_manifest(p).meta["content_hash"] for p in (toy[1], a, b)]
    assert len(set(hashes)) == 3
    out = tmp_path / "runs"  # one runs folder for all three
    jobs = [runner.plan(load_recipe(_recipe(m, out, tmp_path / f"{i}.yaml")), folds=[0])[0] for i, m in enumerate((toy[1], a, b))]
    assert len({j.key for j in jobs}) == 3 and len({j.name for j in jobs}) == 3
    assert [j.manifest_hash for j in jobs] == hashes

    dirs = [runner.run_recipe(load_recipe(tmp_path / f"{i}.yaml"), folds=[0])[0] for i in range(3)]
    assert len(set(dirs)) == 3 and all(d.parent == out for d in dirs)
    for d, h in zip(dirs, hashes):
        record = json.loads((d / "result.json").read_text())
        assert record["protocol"]["manifest_hash"] == h

    # the file changing between plan and run is refused, not run under the old identity
    c = _edit(toy[1], tmp_path / "c.parquet", to_val(2))
    (job,) = runner.plan(load_recipe(_recipe(c, tmp_path / "runs2", tmp_path / "x.yaml")), folds=[1])
    _edit(toy[1], c, to_val(3))
    with pytest.raises(FerbenchError, match="changed since the job was planned"):
        runner.run_job(job, device="cpu")


# -- 3. the resume message and `ferbench clean` ------------------------------------------------------------
def _crash_at(epoch_to_crash: int):
    def crash(epoch, row):
        if epoch == epoch_to_crash:
            raise RuntimeError("killed")
    return crash


def test_run_says_it_resumes_and_from_which_epoch(toy, tmp_path, capsys):
    recipe_path = _recipe(toy[1], tmp_path / "runs", train={"epochs": 3})
    with pytest.raises(RuntimeError, match="killed"):
        runner.run_recipe(load_recipe(recipe_path), folds=[2], callbacks=[_crash_at(1)])
    capsys.readouterr()
    assert main(["run", str(recipe_path), "--device", "cpu", "--folds", "2"]) == 0
    err = capsys.readouterr().err
    assert "resuming from epoch 3/3 (epochs 1-2 are checkpointed in" in err
    assert err.count("resuming") == 1


def test_clean_removes_abandoned_partials_and_temp_files_never_a_finished_run(toy, tmp_path, capsys):
    from ferbench.protocols.manifest import host_tag
    from ferbench.file_lock import FileLock

    out = tmp_path / "runs"
    recipe = load_recipe(_recipe(toy[1], out, train={"epochs": 2}))
    (finished,) = runner.run_recipe(recipe, folds=[0])
    with pytest.raises(RuntimeError):
        runner.run_recipe(recipe, folds=[1], callbacks=[_crash_at(0)])
    with pytest.raises(RuntimeError):
        runner.run_recipe(recipe, folds=[2], callbacks=[_crash_at(0)])
    abandoned, busy = runner.plan(recipe, folds=[1, 2])
    (out / f".{abandoned.name}.tmp-0123abcd").mkdir()  # a killed writer's output folder
    (out / f".{finished.name}.partial").mkdir()  # left over by a kill between rename and tidy-up
    (out / ".someone.lock").touch()  # an unheld lock file
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "manifests").mkdir()
    stale = out / "manifests" / f".x.parquet.tmp-{host_tag()}-{dead.pid}-0123abcd"
    stale.write_bytes(b"half")
    live = out / "manifests" / f".y.parquet.tmp-{host_tag()}-{os.getpid()}-0123abcd"
    live.write_bytes(b"being written")
    lock = FileLock(busy.lock_path)
    assert lock.acquire(blocking=False)  # a running job: its partial is in use
    try:
        before = sorted(p.name for p in out.rglob("*"))
        capsys.readouterr()
        assert main(["clean", str(out), "--dry-run"]) == 0
        listing = capsys.readouterr().out
        assert sorted(p.name for p in out.rglob("*")) == before
        assert f"would remove {out / f'.{abandoned.name}.partial'}" in listing
        assert f"kept {out / f'.{busy.name}.partial'}" in listing

        assert main(["clean", str(out)]) == 0
        assert _visible(out) == sorted([finished.name, "manifests"]) and finished.exists()
        assert (finished / "result.json").is_file() and len(list(finished.iterdir())) >= 6
        assert _hidden(out) == sorted([f".{busy.name}.lock", f".{busy.name}.partial"])
        assert [p.name for p in (out / "manifests").iterdir()] == [live.name]
    finally:
        lock.release()
    capsys.readouterr()
    (rerun,) = runner.run_recipe(recipe, folds=[1])
    assert "resuming" not in capsys.readouterr().err  # its checkpoints were removed: started over
    assert json.loads((rerun / "metrics.json").read_text())["selection"]["resumed_from_epoch"] is None


# -- 4. killed `split` and `run` ---------------------------------------------------------------------------

def _outputs(run_dir: Path) -> tuple[pa.Table, dict]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["selection"].pop("resumed_from_epoch")
    return pq.read_table(run_dir / "predictions.parquet"), metrics


#: (where the child parks, the signal that kills it there)
KILLS = [("epoch-checkpoint", signal.SIGKILL), ("rename", signal.SIGKILL), ("rename", signal.SIGTERM)]


def test_a_killed_run_leaves_nothing_half_done_and_resumes_to_the_same_outputs(toy, tmp_path, capsys):
    """Three children (streaming loader, one worker process each) run side by side, each killed at its
    point (SIGKILL after the first epoch's checkpoint; SIGKILL and SIGTERM with the finished output
    complete under its temp name); then each folder is checked and the job run again here."""
    cases = []
    for k, (point, sig) in enumerate(KILLS):
        out = tmp_path / f"runs{k}"
        recipe_path = _recipe(toy[1], out, train={"epochs": 2}, data={"cache": "stream"})
        cases.append((point, sig, out, recipe_path,
                      start(tmp_path, point, out, ["run", str(recipe_path), "--device", "cpu", "--folds", "0"])))
    straight_recipe = load_recipe(_recipe(toy[1], tmp_path / "straight", train={"epochs": 2}, data={"cache": "stream"}))
    (straight_dir,) = runner.run_recipe(straight_recipe, folds=[0])  # uninterrupted, meanwhile
    straight = _outputs(straight_dir)

    for point, sig, out, recipe_path, (proc, marker) in cases:
        code, err = kill_when_parked(proc, marker, sig)
        (job,) = runner.plan(load_recipe(recipe_path), folds=[0])
        where = f"{point}/{signal.Signals(sig).name}"
        assert code == (143 if sig == signal.SIGTERM else -signal.SIGKILL), (where, err[-2000:])
        assert _visible(out) == [], where  # no run directory, not even part of one
        assert (job.work / "ckpt" / "last.pt").is_file(), where  # what the next run resumes from
        if sig == signal.SIGTERM:  # unwound: temp output and lock removed, checkpoints kept
            assert "terminated (SIGTERM)" in err and _hidden(out) == [f".{job.name}.partial"], (where, _hidden(out))
        elif point == "rename":  # the complete-but-unrenamed output stays hidden until the next run removes it
            assert any(".tmp-" in name for name in _hidden(out)), where

        capsys.readouterr()
        (run_dir,) = runner.run_recipe(load_recipe(recipe_path), folds=[0])
        said = capsys.readouterr().err
        expect = "resuming from epoch 2/2" if point == "epoch-checkpoint" else "all 2 epoch(s) are checkpointed"
        assert expect in said, (where, said)
        assert _hidden(out) == [] and _visible(out) == [job.name], where
        preds, metrics = _outputs(run_dir)
        assert preds.equals(straight[0]) and metrics == straight[1], where


def test_a_killed_split_leaves_no_half_manifest_and_a_rerun_writes_the_same_bytes(toy, tmp_path):
    data = toy[0]
    reference = tmp_path / "reference.parquet"
    assert main(["split", "toy-kfold", "--data", str(data), "--out", str(reference)]) == 0
    out = tmp_path / "out" / "m.parquet"
    out.parent.mkdir()
    argv = ["split", "toy-kfold", "--data", str(data), "--out", str(out)]

    code, _ = kill_at(tmp_path, "verify", signal.SIGKILL, out, argv)
    assert code == -signal.SIGKILL and list(out.parent.iterdir()) == []
    code, _ = kill_at(tmp_path, "rename", signal.SIGKILL, out, argv)
    assert code == -signal.SIGKILL and not out.exists()
    (temp,) = out.parent.iterdir()  # the complete temp file, hidden, never the manifest
    assert temp.name.startswith(".m.parquet.tmp-")

    old = tf.write_manifest(data, out, seed=1).read_bytes()  # an existing manifest survives a killed overwrite
    assert not temp.exists()  # the dead writer's temp file was removed by the next write
    code, err = kill_at(tmp_path, "rename", signal.SIGTERM, out, argv)
    assert code == 143 and "terminated" in err
    assert [p.name for p in out.parent.iterdir()] == ["m.parquet"] and out.read_bytes() == old

    assert main(argv) == 0
    assert [p.name for p in out.parent.iterdir()] == ["m.parquet"]
    assert out.read_bytes() == reference.read_bytes()


# -- 5. concurrent runs of one recipe into one runs folder -------------------------------------------------
def test_three_concurrent_runs_of_one_recipe_lose_nothing_and_never_hang(toy, tmp_path):
    out = tmp_path / "runs"
    recipe_path = _recipe(toy[1], out)
    procs = [subprocess.Popen([sys.executable, "-m", "ferbench", "run", str(recipe_path), "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                              env={**os.environ, "PYTHONPATH": str(TESTS.parent)}) for _ in range(3)]
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], [r[1][-2000:] for r in results]
    jobs = runner.plan(load_recipe(recipe_path))
    assert len(jobs) == 3 and all(j.finished() for j in jobs)
    for stdout, _ in results:  # each process reports every job
        assert all(j.name in stdout for j in jobs), stdout
    assert _visible(out) == sorted(j.name for j in jobs) and _hidden(out) == []
    for j in jobs:
        record = json.loads((j.run_dir / "result.json").read_text())
        assert record["run_id"] == j.key
        preds = pq.read_table(j.run_dir / "predictions.parquet")
        assert preds.num_rows > 0 and set(preds.column("fold").to_pylist()) == {j.fold}
    assert np.isfinite([json.loads((j.run_dir / "metrics.json").read_text())["test"]["accuracy"] for j in jobs]).all()
