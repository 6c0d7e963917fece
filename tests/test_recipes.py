"""Every recipe in recipes/ validates and runs one optimisation step on tiny fixture data on CPU, and
the leaderboard shows each recipe's reported figure beside the measured one.

Overridden for every recipe, so it runs on the toy RGB-D fixture in about a second: the data and
protocol (a 3-subject toy dataset and its subject 3-fold manifest, fold 0, seed 0), a 16 px input (the
FER2013 models keep the 48 px their layers are sized for), no pretrained weights (none are on this
machine), fp32 (CPU half precision is slow, and fp16's GradScaler skips its first overflowing steps;
SAM under a GradScaler is tested in test_training_techniques), one epoch whose single batch holds the
whole sampled training set — so each training phase takes exactly one optimiser step — one epoch per
hard-sample phase, a 20-resample bootstrap and the runtime section.

One model is too heavy for CI and replaced: the 86M-parameter ViT-B/16 of reports 002 and 004
(``HEAVY_VIT``, ~10 s per step here) becomes ``tiny_vit``. Every other recipe runs its own model
(MCCT/VCCT, the FER2013 CNN and ViT, ResNet-18, the two-stream EfficientNet-B2 variants). Everything
else stays the recipe's own: loss (center/island included), optimiser (SAM and parameter groups
included), schedule, sampler (oversampling included), augmentations, gradient accumulation and
normalisation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from ferbench import leaderboard, runner
from ferbench.models import adapt_cfg, model_cfg
from ferbench.protocols.base import get_protocol, resolve_params
from ferbench.train.recipe import in_chans, load_recipe
from ferbench.train.sam import SAM

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if "_base" not in p.parts)
HEAVY_VIT = {"vit_b16_mlp5", "timm/vit_base_patch16_224.augreg_in21k_ft_in1k"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    data = tf.make_dataset(root, subjects=3, per_class=1)
    return data, tf.write_manifest(data, root / "manifest.parquet"), root / "runs"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The toy batches are tiny: one intra-op thread is faster than several and never oversubscribes CI."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def steps():
    """Counts optimiser updates (a SAM update counts once: its base optimiser's step)."""
    count = [0]

    def hook(optimizer, args, kwargs):
        if not isinstance(optimizer, SAM):
            count[0] += 1

    handle = register_optimizer_step_post_hook(hook)
    yield count
    handle.remove()


def _overrides(path: Path, data: Path, manifest: Path, out: Path) -> list[str]:
    recipe = load_recipe(path)
    over = [f"data.dirs=[{data}]", "protocol.name=null", f"protocol.manifest={manifest}", "protocol.params={}",
            "folds=[0]", "repeats=null", "seeds=[0]", f"input.size={48 if recipe.input.size == 48 else 16}",
            "model.pretrained=false", "train.precision=fp32", "train.epochs=1", "train.batch_size=1024",
            "eval.batch_size=64", "eval.bootstrap=20", "runtime.device=cpu", "runtime.workers=1",
            "runtime.progress=false", "runtime.keep_weights=false", f"runtime.out_dir={out / path.stem}"]
    if recipe.model.name in HEAVY_VIT:  # a 2-block timm ViT: gradual unfreezing (report 004) works on it too
        over += ["model.name=timm/vit_tiny_patch16_224",
                 "model.kwargs={img_size: 16, patch_size: 8, depth: 2, embed_dim: 32, num_heads: 2}"]
    if recipe.hard_samples is not None:
        over += ["hard_samples.epochs=1", "hard_samples.augment_epochs=1"]
    return over


def test_there_is_a_recipe_per_published_experiment():
    names = {p.stem for p in RECIPES}
    expected = {f"affectnet8_mcct{d}{s}" for d in (1, 2, 3, 6, 7) for s in ("", "_no_oversampling")}
    expected |= {"affectnet8_vcct1", "affectnet8_vcct2", "fer2013_cnn_phase1", "fer2013_cnn_phase2",
                 "fer2013_vit_phase1", "fer2013_vit_phase2", "fer2013_vit_b16_finetune", "avfer_resnet18",
                 "avfer_vit_b16_sgd", "avfer_vit_b16_sgd_step", "avfer_vit_b16_sam", "caldr_menders7_rgbd_island",
                 "caldr_menders6_rgbd_island", "caldr_menders7_rgbd_ce", "caldr_menders7_rgbd_center",
                 "caldr_menders7_rgb_only", "caldr_menders7_rgbd_sum_fusion", "caldr_menders7_rgbd_no_encoder",
                 "bu3dfe6_rgbd", "bu3dfe7_rgbd", "global7_rgbd"}
    assert expected <= names
    for path in RECIPES:
        recipe = load_recipe(path)
        if path.stem in expected:
            figures = recipe.figures()
            assert figures and all(f.source.startswith("report 00") for f in figures), path.name
        # what the CI run below replaces must exist too: the protocol and its parameters, the model and its input
        protocol = get_protocol(recipe.protocol.name)
        resolve_params(path.name, protocol.params, recipe.protocol.params)
        runner.input_spec(recipe, adapt_cfg(model_cfg(recipe.model.name), in_chans(recipe)))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates_and_takes_one_step_per_phase(path, toy, steps):
    data, manifest, out = toy
    recipe = load_recipe(path, _overrides(path, data, manifest, out))
    before = steps[0]
    (run_dir,) = runner.run_recipe(recipe)
    record = json.loads((run_dir / "result.json").read_text())
    epochs = (run_dir / "curves.csv").read_text().strip().splitlines()[1:]
    assert len(epochs) == (3 if recipe.hard_samples is not None else 1)
    assert steps[0] - before == len(epochs)  # one optimiser step per epoch, i.e. per training phase
    assert record["recipe"]["model"] == recipe.model.name and record["metrics"]["test"]["accuracy"] >= 0
    reported = record["recipe"]["reported"] or []
    reported = [reported] if isinstance(reported, dict) else reported
    assert [(r["value"], r["metric"]) for r in reported] == [(f.value, f.metric) for f in recipe.figures()]


def test_leaderboard_shows_reported_beside_measured(toy, tmp_path):
    _, _, out = toy
    roots = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(roots) == len(RECIPES)  # every recipe ran above
    # some recipes differ only in their data and protocol, which the test replaced: one run each
    unique = {json.loads(r.read_text())["run_id"]: r.parent.parent for r in reversed(leaderboard.find_results(roots))}
    db = tmp_path / "lb.duckdb"
    assert leaderboard.ingest(sorted(unique.values()), db) == len(unique)
    (board,) = leaderboard.rank(db, metric="accuracy")
    text = leaderboard.render([board], "table")
    assert "reported vs measured (%)" in text and "report 000, Table 6.1" in text
    (run,) = [p for p in (out / "affectnet8_mcct7").iterdir() if (p / "result.json").exists()]
    measured = 100 * json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    assert f"55.54 vs {measured:.2f} accuracy (test)" in text
    sam = [r for r in board.reported if r["recipe_name"] == "avfer_vit_b16_sam"]  # report 002: 31 figures
    assert len(sam) == 31 and {"weighted_f1", "accuracy_without:contempt", "f1:surprise"} <= {r["metric"] for r in sam}
    md = leaderboard.render([board], "md")
    assert "66.34 vs" in md and "accuracy (val)" in md  # report 004's figure is a validation accuracy
