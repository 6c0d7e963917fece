"""Recipes: strict keys with suggestions, base inheritance, overrides, hashing, component checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ferbench.train.recipe import RecipeError, from_dict, load_recipe

REPO = Path(__file__).resolve().parent.parent


def _write(path: Path, obj: dict) -> Path:
    path.write_text(yaml.safe_dump(obj))
    return path


MINIMAL = {"protocol": {"manifest": "m.parquet"}}


def test_defaults_fill_and_name_from_file(tmp_path):
    r = load_recipe(_write(tmp_path / "exp1.yaml", MINIMAL))
    assert r.name == "exp1"
    assert r.model.name == "tiny_cnn" and r.train.epochs == 10 and r.seeds == [0]
    # component defaults are written out in the resolved recipe
    assert r.loss == {"name": "ce", "label_smoothing": 0.0, "class_weights": None}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**MINIMAL, "trian": {"epochs": 1}}, "did you mean 'train'"),
        ({**MINIMAL, "train": {"epoch": 1}}, "did you mean 'epochs'"),
        ({**MINIMAL, "optimizer": {"name": "adamw", "lr": 0.1, "weight_decays": 0.1}}, "did you mean 'weight_decay'"),
        ({**MINIMAL, "optimizer": {"name": "adamv"}}, "did you mean 'adamw'"),
        ({**MINIMAL, "augment": [{"name": "hflip", "prob": 0.5}]}, "augment[0]."),
        ({**MINIMAL, "train": {"precision": "fp8"}}, "not one of"),
        ({**MINIMAL, "train": {"epochs": "many"}}, "expected int"),
        ({**MINIMAL, "input": {"modality": "depth", "channels": 3}}, "does not fit modality"),
        ({"protocol": {}}, "exactly one of protocol.name"),
        ({"protocol": {"name": "fer2013"}}, "data.dirs is required"),
        ({**MINIMAL, "reported": {"value": 50, "metric": "acuracy"}}, "reported.metric: 'acuracy' is not one of"),
        ({**MINIMAL, "reported": [{"value": 50}, {"value": 40, "metric": "recall"}]}, "reported[1].metric: 'recall'"),
        ({**MINIMAL, "reported": [{"value": 50}, {"value": 51}]}, "reported[1]: a second figure for accuracy on test"),
        ({**MINIMAL, "reported": [{"metric": "f1:anger"}]}, "reported[0] needs value"),
    ],
)
def test_invalid_recipes_name_the_problem(raw, message):
    with pytest.raises(RecipeError, match=None) as err:
        from_dict(raw)
    assert message in str(err.value)


def test_base_inheritance_and_component_replacement(tmp_path):
    _write(tmp_path / "base.yaml", {**MINIMAL, "train": {"epochs": 30, "batch_size": 32},
                                    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.8}})
    child = _write(tmp_path / "child.yaml", {"base": "base.yaml", "train": {"epochs": 5},
                                             "optimizer": {"name": "adamw", "lr": 3e-4}})
    r = load_recipe(child)
    assert (r.train.epochs, r.train.batch_size) == (5, 32)  # mappings merge key by key
    assert r.optimizer["name"] == "adamw" and "momentum" not in r.optimizer  # a renamed component is replaced


def test_repo_recipes_validate():
    r = load_recipe(REPO / "recipes" / "fer2013_tiny_cnn.yaml")
    assert r.protocol.name == "fer2013" and r.input.channels == 1
    assert [a["name"] for a in r.augment] == ["hflip", "affine", "color"]  # from _base/default.yaml


def test_overrides(tmp_path):
    path = _write(tmp_path / "r.yaml", MINIMAL)
    r = load_recipe(path, ["train.epochs=3", "seeds=[0,1]", "optimizer.lr=1e-4", "model.kwargs.drop=0.2",
                           "scheduler.name=step", "scheduler.step_epochs=2"])
    assert r.train.epochs == 3 and r.seeds == [0, 1]
    assert r.optimizer["lr"] == pytest.approx(1e-4) and isinstance(r.optimizer["lr"], float)  # "1e-4" is a YAML string
    assert r.model.kwargs == {"drop": 0.2}
    assert r.scheduler == {"name": "step", "step_epochs": 2, "gamma": 0.1}
    with pytest.raises(RecipeError, match="did you mean 'epochs'"):
        load_recipe(path, ["train.epoks=3"])


def test_hash_covers_results_not_names_or_runtime(tmp_path):
    base = load_recipe(_write(tmp_path / "a.yaml", MINIMAL))
    renamed = load_recipe(_write(tmp_path / "b.yaml", {**MINIMAL, "description": "x"}), ["runtime.device=cpu", "seeds=[4]"])
    explicit = load_recipe(_write(tmp_path / "c.yaml", {**MINIMAL, "loss": {"name": "ce", "label_smoothing": 0.0}}))
    assert base.hash() == renamed.hash() == explicit.hash()
    assert load_recipe(tmp_path / "a.yaml", ["train.epochs=11"]).hash() != base.hash()
    assert from_dict(base.to_dict()).hash() == base.hash()  # a resolved recipe reads back to itself


def test_base_cycle_is_an_error(tmp_path):
    _write(tmp_path / "x.yaml", {"base": "y.yaml"})
    _write(tmp_path / "y.yaml", {"base": "x.yaml"})
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(tmp_path / "x.yaml")


# -- strict YAML, positions, shipped recipes, devices --------------------------------------------------
def test_errors_name_the_file_line_and_column_that_set_the_key(tmp_path):
    _write(tmp_path / "base.yaml", MINIMAL)
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\ntrain:\n  epochs: 2\n  precision: fp8\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(child)
    assert str(err.value).startswith(f"{child}:4:3: train.precision: 'fp8' is not one of")
    assert err.value.key == "train.precision"
    with pytest.raises(RecipeError, match=r"^override 'train.precision=fp9': train.precision: 'fp9' is not one of"):
        load_recipe(child, ["train.precision=fp9"])


def test_strict_yaml_refuses_tags_and_duplicates_and_keeps_positions():
    from ferbench.train.recipe_yaml import parse_yaml

    src = parse_yaml("train:\n  epochs: 3\naugment:\n  - name: hflip\n", "r.yaml")
    assert src.data == {"train": {"epochs": 3}, "augment": [{"name": "hflip"}]}
    assert src.where["train.epochs"] == "r.yaml:2:3" and src.where["augment[0].name"] == "r.yaml:4:5"
    assert src.locate("augment[0].prob") == "r.yaml:4:5"  # the nearest key that was written
    for text, message in [("a: !!python/name:os.system\n", "YAML tag !!python/name:os.system is refused"),
                          ("a: !custom 1\n", "YAML tag !custom is refused"),
                          ("a: 1\na: 2\n", "r.yaml:2:1: duplicate key 'a'"),
                          ("- 1\n- 2\n", "a recipe is a mapping"),
                          ("a: [1\n", "r.yaml:2:1: YAML syntax error")]:
        with pytest.raises(RecipeError, match=None) as err:
            parse_yaml(text, "r.yaml")
        assert message in str(err.value)


def test_shipped_recipes_load_by_name_and_unknown_names_suggest_one():
    assert load_recipe("fer2013_tiny_cnn").model.name == load_recipe(REPO / "recipes" / "fer2013_tiny_cnn.yaml").model.name
    assert load_recipe("demo/rgb_cnn").name == "rgb_cnn"
    with pytest.raises(RecipeError, match="did you mean the shipped recipe 'fer2013_tiny_cnn'"):
        load_recipe("fer2013_tiny_cn.yaml")


def test_runtime_device_accepts_cuda_n_and_mps(tmp_path):
    path = _write(tmp_path / "r.yaml", MINIMAL)
    for device in ("cpu", "cuda", "cuda:3", "mps", "auto", "CUDA:1"):
        assert load_recipe(path, [f"runtime.device={device}"]).runtime.device == device.lower()
    with pytest.raises(RecipeError, match="unknown device 'tpu'"):
        load_recipe(path, ["runtime.device=tpu"])


def test_recipe_module_stays_small():
    assert len((REPO / "ferbench" / "train" / "recipe.py").read_text().splitlines()) <= 410


def test_reported_is_one_figure_or_a_list():
    one = from_dict({**MINIMAL, "reported": {"value": 50, "source": "Paper, Tab. 1"}})
    assert [(f.value, f.metric, f.role) for f in one.figures()] == [(50.0, "accuracy", "test")]
    several = from_dict({**MINIMAL, "reported": [{"value": 50}, {"value": 40.5, "metric": "f1:anger", "role": "val"}]})
    assert [(f.value, f.metric, f.role) for f in several.figures()] == [(50.0, "accuracy", "test"), (40.5, "f1:anger", "val")]
    assert from_dict(MINIMAL).figures() == []
    assert one.hash() == several.hash() == from_dict(MINIMAL).hash()  # documentation, not hashed
