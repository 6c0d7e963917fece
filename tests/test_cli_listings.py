"""Listings accept globs; ``python -m ferbench`` is the same command line."""

from __future__ import annotations

import subprocess
import sys

from ferbench import cli


def test_protocol_and_dataset_listings_take_globs(capsys):
    assert cli.main(["protocols", "ckplus*"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["ckplus", "ckplus-random-kfold", "ckplus6", "ckplus6-random-kfold", "ckplus7", "ckplus7-random-kfold", "ckplus7n", "ckplus7n-random-kfold"]
    assert cli.main(["datasets", "ck*"]) == 0
    assert capsys.readouterr().out.split()[0] == "ckplus"


def test_a_glob_matching_nothing_is_one_line_with_the_known_names(capsys):
    assert cli.main(["protocols", "zz*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no protocol matches 'zz*'" in err and "ckplus7" in err


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "ferbench", "protocols", "rafdb"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("rafdb ")
