"""Packaging: the wheel carries its data and works outside the checkout; the shipped recipes, their
top-level copy and the JSON schema cannot drift; ``--version`` names the commit.

The wheel test builds ``pip wheel --no-deps`` (no build isolation: no download) from a copy of the
sources, installs it into a fresh venv in a temp folder and runs it from an unrelated directory.
The fresh venv sees this environment's packages through a ``.pth`` line (``--system-site-packages``
would expose the base interpreter's, not this venv's), so nothing is downloaded; ferbench itself is
only the wheel's copy (the ``.pth`` files of this venv, the editable install's among them, are not
processed for a path added that way).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from ferbench import recipes
from ferbench.cli import main
from ferbench.version import git_sha

REPO = Path(__file__).resolve().parent.parent


# -- shipped recipes, their copy, the schema --------------------------------------------------------
def test_top_level_recipes_are_an_exact_copy_of_the_shipped_ones():
    problems = recipes.drift(REPO / "recipes")
    assert not problems, ("recipes/ and ferbench/recipes/ differ (edit ferbench/recipes/, then run "
                          "`python -m ferbench.recipes sync`):\n" + "\n".join(problems))


def test_shipped_schema_is_the_generated_one():
    from ferbench.train.recipe_schema import schema_json

    shipped = (recipes.root() / recipes.SCHEMA).read_text()
    assert shipped == schema_json(), ("recipe.schema.json is stale: run `ferbench recipe-schema --out "
                                      "ferbench/recipes/recipe.schema.json && python -m ferbench.recipes sync`")


def test_every_shipped_recipe_validates_against_the_schema_as_written_and_resolved():
    jsonschema = pytest.importorskip("jsonschema")
    from ferbench.train.recipe import load_recipe

    validator = jsonschema.Draft202012Validator(json.loads((recipes.root() / recipes.SCHEMA).read_text()))
    jsonschema.Draft202012Validator.check_schema(validator.schema)
    files = sorted(recipes.root().rglob("*.yaml"))
    assert len(files) > 30
    for path in files:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()) or {})]
        assert not errors, f"{path}: {errors}"
        if "_base" not in path.parts:
            resolved = load_recipe(path).to_dict()
            assert not list(validator.iter_errors(resolved)), path
    # and it refuses what loading refuses
    assert list(validator.iter_errors({"trian": {"epochs": 1}}))
    assert list(validator.iter_errors({"optimizer": {"name": "adamw", "weight_decays": 0.1}}))
    assert list(validator.iter_errors({"runtime": {"device": "gpu"}}))


def test_recipe_schema_command_prints_the_schema(capsys):
    assert main(["recipe-schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ferbench recipe"


def test_shipped_recipes_run_by_name_and_demo_ones_are_there(capsys):
    from ferbench.train.recipe import load_recipe

    assert load_recipe("fer2013_tiny_cnn").name == "fer2013_tiny_cnn"
    assert [p.name for p in recipes.demo()] == ["rgb_cnn.yaml", "rgbd_fusion.yaml"]
    assert main(["run", "--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert "fer2013_tiny_cnn" in listed and "demo/rgb_cnn" in listed and not any("_base" in n for n in listed)


# -- version ---------------------------------------------------------------------------------------
def test_version_names_the_commit_of_the_checkout(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out.strip()
    if (REPO / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        assert re.fullmatch(r"ferbench \d+\.\d+\.\d+\S* \(git [0-9a-f]{12}(\+dirty)?\)", out), out
        assert head.stdout.strip() in out
    else:
        assert out.endswith("(git unknown)")
    assert git_sha() in out


def test_pyproject_reads_the_version_from_the_package():
    import tomllib

    from ferbench import __version__

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "ferbench.version.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", __version__)


def test_extras_are_declared_as_the_code_asks_for_them():
    import tomllib

    from ferbench.extras import EXTRAS

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"3d", "align", "ray", "all", "test"} <= set(extras)
    assert {extra for extra, _ in EXTRAS.values()} <= set(extras)
    assert any(r.startswith("mediapipe==0.10.14") and "python_version" in r for r in extras["align"])
    assert not any("pyrender==" in r.replace(" ", "") and not r.startswith("arcade") for r in extras["3d"])
    assert "ferbench[all]" in extras["test"]


# -- the wheel, installed elsewhere -----------------------------------------------------------------
def _sources(dest: Path) -> Path:
    """The files a build reads (never the checkout itself: no build/ or egg-info left in it)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "ferbench", dest / "ferbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _venv(root: Path) -> Path:
    """A fresh venv that sees this environment's packages through a .pth line; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
            if Path(p).is_dir()]
    Path(purelib, "zz_ferbench_test_env.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(wheels), str(_sources(tmp_path / "src"))], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("ferbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("ferbench/recipes/fer2013_tiny_cnn.yaml", "ferbench/recipes/_base/default.yaml",
                    "ferbench/recipes/demo/rgb_cnn.yaml", "ferbench/recipes/recipe.schema.json"):
        assert shipped in names
    assert any(n.startswith("ferbench/leaderboard/") and n.endswith(".sql") for n in names) or \
        not list((REPO / "ferbench").glob("leaderboard/*.sql")), "the leaderboard's SQL is not in the wheel"

    python = _venv(tmp_path / "venv")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "-q", str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FERBENCH_VERBOSITY")}
    bin_dir = python.parent

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)

    where = run(str(python), "-c", "import ferbench, sys; print(ferbench.__file__)")
    assert where.stdout.strip().startswith(str(tmp_path / "venv")), where.stdout + where.stderr  # the wheel, not the checkout

    version = run(str(python), "-m", "ferbench", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"ferbench {_version()} (git unknown)", version

    listed = run(str(bin_dir / "ferbench"), "run", "--list")
    assert listed.returncode == 0 and "demo/rgbd_fusion" in listed.stdout, listed.stderr

    demo = run(str(bin_dir / "ferbench"), "demo", "--quick", "--out", str(elsewhere / "demo"))
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    assert "Best:" in demo.stdout and (elsewhere / "demo" / "leaderboard" / "index.html").is_file()
    assert "Traceback" not in demo.stderr

    board = run(str(bin_dir / "ferbench"), "leaderboard", "--runs", "demo/runs", "--db", "board/ferbench.duckdb")
    assert board.returncode == 0, board.stdout[-2000:] + board.stderr[-3000:]
    assert "tiny_cnn" in board.stdout


def _version() -> str:
    from ferbench import __version__

    return __version__
