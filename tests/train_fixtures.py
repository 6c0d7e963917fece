"""Tiny converted datasets and protocol manifests for the runner, leaderboard and DDP tests.

``toyfer`` is a loader registered only by importing this module (from tests): a raw folder
``<subject>/<class>_<k>.png`` (+ a 16-bit depth PNG beside each) converted by ``ferbench.build.convert``.
Each class has its own bright square, so a tiny model learns it within an epoch or two.
``toy-kfold`` is a protocol over it (subject-grouped 3-fold, registered the way ferbench's own are).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ferbench.build import convert
from ferbench.datasets import DatasetLoader, Item, register_dataset
from ferbench.errors import SampleError
from ferbench.imageio import encode_png
from ferbench.protocols import materialise
from ferbench.protocols.base import Protocol
from ferbench.protocols.base import register as register_protocol
from ferbench.protocols.grouped import grouped_plan
from ferbench.schema import EMOTIONS, image, namespaced

CLASSES = ("neutral", "happiness", "surprise")
CANONICAL = tuple(EMOTIONS.index(c) for c in CLASSES)


@register_dataset
class ToyFer(DatasetLoader):
    name = "toyfer"
    title = "Toy FER (test fixture)"
    version = "1"
    homepage = "https://example.invalid/toyfer"
    license = "test fixture"
    citation = "none"
    layouts = {"folders": "<subject>/<class>_<k>.png, <subject>/<class>_<k>.depth.png"}
    label_map = {c: EMOTIONS.index(c) for c in CLASSES}

    def detect(self) -> str:
        if not any(self.root.glob("*/*.png")):
            raise self.not_found("no <subject>/*.png")
        return "folders"

    def scan(self, report):
        for path in sorted(self.root.glob("*/*.png")):
            if path.name.endswith(".depth.png"):
                continue
            rel = self.rel(path)
            yield Item(f"toyfer/{rel[:-4]}", rel, payload=(path.parent.name, path.stem.split("_")[0]))

    def load(self, item: Item) -> dict[str, Any]:
        subject, label = item.payload
        path = self.root / item.source
        if label not in self.label_map:
            raise SampleError("unknown-label", label, file=item.source)
        return {
            "sample_id": item.sample_id,
            "source_split": "all",
            "subject_id": namespaced("toyfer", subject),
            "label_raw": label,
            "label_source": "folder",
            "rgb": image(path.read_bytes(), item.source),
            "depth": image(path.with_suffix(".depth.png").read_bytes(), item.source[:-4] + ".depth.png"),
        }

    def metadata(self) -> dict[str, Any]:
        return {"depth": {"unit_mm": 0.1, "zero": "no surface"}}


def _face(label: int, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    q = size // 4
    y, x = [(0, 0), (0, 2 * q), (2 * q, q)][label]
    rgb[y:y + 2 * q, x:x + 2 * q] = 230
    depth = np.full((size, size), 5000, np.uint16)
    depth[y:y + 2 * q, x:x + 2 * q] = 4000
    return rgb, depth


def make_dataset(root: Path, subjects: int = 6, per_class: int = 2, size: int = 16, synthetic: bool = False,
                 seed: int = 0) -> Path:
    """Write the raw toy folder under ``root`` and convert it; returns the converted dataset dir."""
    raw, out = root / "raw", root / "toyfer"
    rng = np.random.default_rng(seed)
    for s in range(subjects):
        d = raw / f"S{s:02d}"
        d.mkdir(parents=True)
        for label, name in enumerate(CLASSES):
            for k in range(per_class):
                rgb, depth = _face(label, rng, size)
                (d / f"{name}_{k}.png").write_bytes(encode_png(rgb))
                (d / f"{name}_{k}.depth.png").write_bytes(encode_png(depth))
    if synthetic:
        (raw / "FERBENCH_SYNTHETIC").write_text("test\n")
    convert("toyfer", raw, out, workers=1, progress=False)
    return out


#: A subject-grouped stratified k-fold protocol over toyfer (val = the next fold), as ferbench's own protocols do.
TOY_PROTOCOL = register_protocol(
    Protocol("toy-kfold", "toyfer, subject-grouped 3-fold", ("toyfer",), grouped_plan("toyfer", CANONICAL),
             {"k": 3, "repeats": 1, "val": "next-fold"})
)


def write_manifest(data_dir: Path, path: Path, seed: int = 0, **params: Any) -> Path:
    """Materialise ``toy-kfold`` over the toy dataset and write the manifest file."""
    return materialise("toy-kfold", [data_dir], seed=seed, **params).write(path)


def write_recipe(path: Path, manifest: Path, out_dir: Path, **sections: Any) -> Path:
    """A small recipe YAML on the toy manifest (tiny_cnn, 16 px, 1 epoch, CPU); ``sections`` merge over it."""
    import yaml

    from ferbench.train.recipe import merge

    base = {
        "protocol": {"manifest": str(manifest)},
        "model": {"name": "tiny_cnn"},
        "input": {"size": 16},
        "train": {"epochs": 1, "batch_size": 8},
        "eval": {"bootstrap": 200},
        "runtime": {"device": "cpu", "workers": 1, "progress": False, "out_dir": str(out_dir)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merge(base, sections)))
    return path
