"""The command line says plainly what happened: every error path is one line (plus the offending YAML
line for a syntax error) with exit status 2 and no traceback unless --debug; missing extras name the
extra; devices are checked; run/sweep report jobs and results; -q/-v work everywhere; third-party
banners stay out of normal output."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from ferbench import ui
from ferbench.cli import main

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _normal_verbosity(monkeypatch):
    monkeypatch.delenv(ui.ENV, raising=False)
    monkeypatch.delenv("FERBENCH_DEBUG", raising=False)


def _err(capsys, argv: list[str], code: int = 2) -> str:
    """Run the CLI in-process; check the exit status and that stderr holds no traceback; return stderr."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _recipe(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# -- recipe files ----------------------------------------------------------------------------------
def test_yaml_syntax_error_names_file_line_column_and_shows_the_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _recipe(tmp_path, """\
        protocol:
          manifest: m.parquet
        train:
          epochs: 3: 4
        """)
    err = _err(capsys, ["run", "r.yaml"])
    first, line, caret = err.strip().splitlines()
    assert first.startswith("ferbench run: error: r.yaml:4:12: YAML syntax error: mapping values are not allowed here")
    assert line.strip() == "4 |   epochs: 3: 4"
    assert caret.rstrip().endswith("^") and caret.index("^") == line.index("3: 4") + 1


def test_python_tags_are_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _recipe(tmp_path, 'protocol: !!python/object/apply:os.system ["echo pwned > pwned.txt"]\n')
    err = _err(capsys, ["run", "r.yaml"])
    assert err.count("\n") == 1
    assert "r.yaml:1:11: YAML tag !!python/object/apply:os.system is refused" in err
    assert not (tmp_path / "pwned.txt").exists()
    # in an override too
    _recipe(tmp_path, "protocol: {manifest: m.parquet}\n")
    err = _err(capsys, ["run", "r.yaml", "optimizer.lr=!!python/name:os.system"])
    assert "override 'optimizer.lr=!!python/name:os.system': YAML tag !!python/name:os.system is refused" in err


def test_duplicate_keys_and_unknown_keys_point_at_the_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _recipe(tmp_path, """\
        protocol: {manifest: m.parquet}
        train: {epochs: 3}
        train: {batch_size: 2}
        """)
    assert "r.yaml:3:1: duplicate key 'train' (first at line 2)" in _err(capsys, ["run", "r.yaml"])
    _recipe(tmp_path, """\
        protocol: {manifest: m.parquet}
        train:
          epoch: 3
        """)
    err = _err(capsys, ["run", "r.yaml"])
    assert "r.yaml:3:3: unknown key 'train.epoch'; did you mean 'epochs'?" in err and err.count("\n") == 1


def test_an_error_in_a_base_file_names_the_base(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _recipe(tmp_path, "protocol: {manifest: m.parquet}\noptimizer: {name: adamv}\n", "base.yaml")
    _recipe(tmp_path, "base: base.yaml\ntrain: {epochs: 2}\n")
    assert "base.yaml:2:13: optimizer.name: unknown name 'adamv'; did you mean 'adamw'?" in _err(capsys, ["run", "r.yaml"])
    _recipe(tmp_path, "base: nothere.yaml\n")
    assert "base 'nothere.yaml' of" in _err(capsys, ["run", "r.yaml"])


@pytest.mark.parametrize(("override", "message"), [
    ("train.epoks=3", "override 'train.epoks=3': unknown key 'train.epoks'; did you mean 'epochs'?"),
    ("train.epochs=many", "override 'train.epochs=many': train.epochs: expected int, got 'many'"),
    ("train.epochs=[1", "override 'train.epochs=[1': the value is not valid YAML"),
    ("train.epochs", "override 'train.epochs' is not key=value (e.g. train.epochs=3)"),
    ("train..epochs=3", "is not a dotted key"),
    ("runtime.device=gpu", "override 'runtime.device=gpu': runtime.device: unknown device 'gpu'"),
])
def test_bad_overrides_are_one_line_with_a_hint(override, message, capsys):
    err = _err(capsys, ["run", "fer2013_tiny_cnn", override])
    assert message in err and err.count("\n") == 1


def test_missing_recipe_suggests_a_shipped_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _err(capsys, ["run", "fer2013_tiny_cn"])
    assert "recipe 'fer2013_tiny_cn' not found" in err and "did you mean the shipped recipe 'fer2013_tiny_cnn'?" in err
    err = _err(capsys, ["sweep", "nothing_like_it.yaml"])
    assert "recipe 'nothing_like_it.yaml' not found" in err and "ferbench run --list" in err
    assert "give a recipe file" in _err(capsys, ["run"])


def test_unknown_model_and_protocol_names_are_caught_before_any_work(tmp_path, capsys):
    r = _recipe(tmp_path, "protocol: {manifest: missing.parquet}\nmodel: {name: tiny_cnm}\n")
    assert "unknown model 'tiny_cnm' (did you mean 'tiny_cnn'?)" in _err(capsys, ["run", str(r), "--device", "cpu"])
    r = _recipe(tmp_path, "protocol: {name: fer2031}\ndata: {dirs: [x]}\n")
    assert "unknown protocol 'fer2031' (did you mean 'fer2013'?)" in _err(capsys, ["run", str(r), "--device", "cpu"])


def test_missing_files_are_one_line(tmp_path, capsys):
    r = _recipe(tmp_path, "protocol: {manifest: missing.parquet}\n")
    err = _err(capsys, ["run", str(r), "--device", "cpu"])
    (line,) = [e for e in err.splitlines() if "error" in e]
    assert line.startswith("ferbench run: error: ") and "missing.parquet" in line
    err = _err(capsys, ["verify", str(tmp_path / "nothing.parquet")])
    assert "nothing.parquet" in err and err.count("\n") == 1


# -- devices ---------------------------------------------------------------------------------------
def test_devices_parse_and_resolve():
    import torch

    from ferbench.devices import DeviceError, parse_device, resolve_device

    assert [parse_device(d) for d in ("cpu", "CUDA", "cuda:1", "mps", "auto")] == ["cpu", "cuda", "cuda:1", "mps", "auto"]
    for bad in ("gpu", "cuda:", "cuda:x", "cuda1", ""):
        with pytest.raises(DeviceError, match="unknown device"):
            parse_device(bad)
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="device cuda is not available"):
            resolve_device("cuda")
    with pytest.raises(DeviceError, match="not available"):
        resolve_device(f"cuda:{torch.cuda.device_count() + 3}")


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", "unknown device 'gpu': use one of auto, cpu, cuda, cuda:N, mps"),
    ("cuda:99", "device cuda:99 is not available"),
])
def test_device_errors_are_one_line(device, message, capsys):
    err = _err(capsys, ["run", "fer2013_tiny_cnn", "--device", device])
    assert message in err and err.count("\n") == 1


def test_unavailable_mps_is_one_line(capsys):
    import torch

    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    err = _err(capsys, ["run", "fer2013_tiny_cnn", "--device", "mps"])
    assert "device mps is not available" in err


def test_the_runner_resolves_the_device_itself(toy, tmp_path):
    from ferbench import runner
    from ferbench.devices import DeviceError
    from ferbench.train.recipe import load_recipe

    recipe = load_recipe(tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs"))
    with pytest.raises(DeviceError, match="cuda:77 is not available"):
        runner.run_recipe(recipe, folds=[0], device="cuda:77")


# -- missing extras ----------------------------------------------------------------------------------
def test_require_names_the_extra(monkeypatch):
    from ferbench.extras import MissingExtraError, require

    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(MissingExtraError, match=r"needs open3d, which is not installed: pip install 'ferbench\[3d\]'"):
        require("open3d")
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(ImportError, match=r"pip install 'ferbench\[align\]'"):  # still an ImportError for old callers
        require("mediapipe")
    monkeypatch.setattr(sys, "version_info", (3, 13, 0, "final", 0))
    with pytest.raises(MissingExtraError, match="unavailable on Python 3.13: mediapipe 0.10.14"):
        require("mediapipe")


def test_align_without_mediapipe_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    assert main(["synth", "caldr_menders", "--out", str(tmp_path / "raw"), "--subjects", "2", "--size", "32"]) == 0
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    from ferbench.geometry import align

    align._face_mesh.cache_clear()
    err = _err(capsys, ["convert", "caldr_menders", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                        "-o", "align=true", "--workers", "1"])
    assert "needs mediapipe, which is not installed: pip install 'ferbench[align]'" in err and err.count("\n") == 1


def test_ray_executor_without_ray_names_the_extra(toy, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    recipe = tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs")
    err = _err(capsys, ["sweep", str(recipe), "--executor", "ray", "--folds", "0"])
    assert "needs ray, which is not installed: pip install 'ferbench[ray]'" in err


# -- command-line usage, --debug, internal errors ---------------------------------------------------------
def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as done:
        main(["runn", "x"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err == "ferbench: error: unknown command 'runn'; did you mean 'run'? (see ferbench --help)\n"
    with pytest.raises(SystemExit) as done:
        main(["run", "fer2013_tiny_cnn", "--folds", "a-b"])
    assert done.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_debug_shows_the_traceback(capsys):
    assert main(["run", "fer2013_tiny_cnn", "train.epoks=1", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("did you mean 'epochs'? (valid here: epochs, batch_size, "
                                                         "accum_steps, precision, channels_last, compile, grad_clip, unfreeze_every, "
                                                         "early_stopping, monitor, val_every, select)")


def test_an_internal_error_is_one_line_unless_debug(capsys, monkeypatch):
    from ferbench.commands import run as run_command

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(run_command, "dry_run", broken)
    err = _err(capsys, ["run", "fer2013_tiny_cnn", "--dry-run", "--device", "cpu"], code=1)
    assert err == "ferbench run: internal error: ZeroDivisionError: division by zero (rerun with --debug for the traceback)\n"
    assert main(["-q", "run", "fer2013_tiny_cnn", "--dry-run", "--device", "cpu", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_real_command_line_errors_carry_no_traceback(tmp_path):
    (tmp_path / "r.yaml").write_text("train:\n  epochs: [1\n")
    out = subprocess.run([sys.executable, "-m", "ferbench", "run", "r.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("ferbench run: error: r.yaml:")


# -- what happened: run, dry-run, sweep, -q/-v ---------------------------------------------------------
def test_run_ends_with_a_metrics_table_with_cis_and_the_run_path(toy, tmp_path, capsys):
    recipe = tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs", runtime={"progress": True})
    assert main(["run", str(recipe), "--folds", "0,1"]) == 0
    out, err = capsys.readouterr()
    assert "ferbench run r: device cpu, run directories in" in err
    assert "[tiny_cnn-r0-f0-s0-" in err and "] running" in err
    assert "epoch 1/1: " in err and "samples_per_s=" in err  # not a terminal: a line per epoch with the rate
    assert "test metrics in %, 95% CI by subject bootstrap (200 resamples):" in out
    header = next(line for line in out.splitlines() if line.startswith("run "))
    assert header.split() == ["run", "balanced_accuracy", "accuracy", "macro_f1"]
    rows = [line for line in out.splitlines() if line.startswith("tiny_cnn-r0-f")]
    assert len(rows) == 2 and all(line.count("[") == 3 for line in rows)
    assert "all 2 runs (mean ± std, pooled CI)" in out and "baselines (balanced accuracy" in out
    assert f"run directories: {tmp_path / 'runs'}/" in out
    # again: both finished before; -q prints only the run directories
    assert main(["-q", "run", str(recipe), "--folds", "0,1"]) == 0
    out, err = capsys.readouterr()
    assert [Path(p).parent for p in out.split()] == [tmp_path / "runs"] * 2 and err == ""
    assert main(["run", str(recipe), "--folds", "0"]) == 0
    out, err = capsys.readouterr()
    assert "] done, skipped" in err and "run directory: " + str(tmp_path / "runs") in out


def test_dry_run_prints_the_resolved_recipe_and_the_jobs_and_writes_nothing(toy, tmp_path, capsys):
    data, _ = toy
    recipe = _recipe(tmp_path, f"""\
        data: {{dirs: [{data}]}}
        protocol: {{name: toy-kfold}}
        input: {{size: 16}}
        runtime: {{out_dir: {tmp_path / 'runs'}}}
        """)
    assert main(["run", str(recipe), "--dry-run", "--folds", "0-1", "--seeds", "0,1", "train.epochs=2"]) == 0
    out = capsys.readouterr().out
    resolved = yaml.safe_load(out)  # the jobs are comments: stdout stays one YAML document
    assert resolved["train"]["epochs"] == 2 and resolved["runtime"]["device"] == "auto"
    assert "# 4 job(s), 4 to run, 0 finished before" in out
    assert out.count("#   to run   repeat 0 fold ") == 4
    assert not (tmp_path / "runs").exists()


def test_epoch_lines_give_rate_and_eta_per_job(capsys):
    from ferbench.commands.run import EpochLines

    lines = EpochLines(epochs=4, interval=0.0)
    for job in range(2):
        for epoch in range(4):
            lines(epoch, {"seconds": 2.0, "samples_per_s": 500.0})
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == ["  epoch 1/4: 500 samples/s, 2.0 s/epoch, ETA 6s", "  epoch 2/4: 500 samples/s, 2.0 s/epoch, ETA 4s",
                       "  epoch 3/4: 500 samples/s, 2.0 s/epoch, ETA 2s"]
    assert len(err) == 6  # the second job starts its own count; the last epoch of a job needs no ETA


def test_sweep_prints_a_line_per_job_as_it_lands_and_a_summary(toy, tmp_path, capsys, monkeypatch):
    import ferbench.sweep

    real, seen = ferbench.sweep.sweep, []

    def sweep_then_look(*args, **kwargs):  # what was printed while the sweep was still running
        result = real(*args, **kwargs)
        time.sleep(1.5)
        seen.append(capsys.readouterr().out)
        return result

    monkeypatch.setattr(ferbench.sweep, "sweep", sweep_then_look)
    recipe = str(tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs"))
    assert main(["sweep", recipe, "--folds", "0,1", "--device", "cpu"]) == 0
    out = (seen[0] + capsys.readouterr().out).splitlines()
    assert seen[0].count(" done ") == 2
    monkeypatch.setattr(ferbench.sweep, "sweep", real)
    assert [line.split()[:2] for line in out[:2]] == [["[1/2]", "done"], ["[2/2]", "done"]]
    assert all("test balanced acc" in line for line in out[:2])
    assert out[2].startswith("2 jobs: 2 run, 0 already finished, 0 failed in ")
    assert main(["sweep", recipe, "--folds", "0,1", "train.epochs=1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out[:2]] == ["cached", "cached"]
    # a failing job: FAILED line, exit status 1, the others still run
    assert main(["sweep", recipe, "--folds", "2", "model.name=tiny_vit", "input.size=7"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split()[1] == "FAILED" and "1 job(s) failed" in err and "Traceback" not in err


def test_quiet_and_verbose_work_before_and_after_the_command(capsys, monkeypatch):
    for argv in (["-q", "protocols", "ck*"], ["protocols", "ck*", "-q"], ["protocols", "-v", "ck*"]):
        assert main(argv) == 0
        assert "ckplus" in capsys.readouterr().out
    seen = []
    monkeypatch.setattr("ferbench.commands.datasets.run", lambda args: seen.append(ui.verbosity()) or 0)
    for argv in (["-v", "datasets"], ["datasets", "--quiet"], ["datasets"]):
        assert main(argv) == 0
    assert seen == [ui.VERBOSE, ui.QUIET, ui.NORMAL]
    assert ui.ENV not in os.environ  # an in-process call leaves the environment as it was


def test_progress_lines_off_a_terminal_give_rate_and_eta(capsys):
    progress = ui.Progress(100, "convert toy", "img", interval=0.0)
    for _ in range(4):
        progress.update(25)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("convert toy: 25/100 (25%),") and "img/s, ETA" in lines[0]
    assert lines[-1].startswith("convert toy: 100/100 (100%)") and " in " in lines[-1]
    quiet = ui.Progress(10, "x", enabled=False, interval=0.0)
    quiet.update(5)
    quiet.close()
    assert capsys.readouterr().err == ""


# -- third-party banners ---------------------------------------------------------------------------
BANNER_SCRIPT = r"""
import os, subprocess, sys
from ferbench.ui import quiet_native_stderr
with quiet_native_stderr():
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    subprocess.run([sys.executable, "-c", "import os; os.write(2, b'W0000 00:00:1796459373.866374   30844 "
                    "inference_feedback_manager.cc:114] Feedback manager requires a model\\nchild line\\n')"])
    os.write(2, b"a native line that matters\n")
    print("python line", file=sys.stderr)
"""


def test_native_banners_are_filtered_and_everything_else_passes():
    out = subprocess.run([sys.executable, "-c", BANNER_SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert sorted(out.stderr.splitlines()) == ["a native line that matters", "child line", "python line"]


def test_mediapipe_banners_stay_out_of_a_real_alignment(tmp_path):
    pytest.importorskip("mediapipe")
    env = {k: v for k, v in os.environ.items() if k not in (ui.ENV, "FERBENCH_DEBUG")}
    ferbench = [sys.executable, "-m", "ferbench"]
    subprocess.run([*ferbench, "synth", "caldr_menders", "--out", str(tmp_path / "raw"), "--subjects", "2", "--size", "64"],
                   check=True, capture_output=True, env=env)
    convert = [*ferbench, "convert", "caldr_menders", str(tmp_path / "raw"), "-o", "align=true", "--workers", "2"]
    quiet = subprocess.run([*convert, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    for banner in ("TensorFlow Lite", "absl::InitializeLog", "inference_feedback_manager", "GetPrototype"):
        assert banner not in quiet.stderr + quiet.stdout
    loud = subprocess.run([*convert, "--out", str(tmp_path / "b"), "-v"], capture_output=True, text=True, env=env, timeout=300)
    assert loud.returncode == 0 and "TensorFlow Lite" in loud.stderr  # -v shows them
