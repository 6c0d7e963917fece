"""The AVFER merge (2-D, 8 classes).

**AVFER** (FER2013 + CK+48-style peak frames + AffectNet; Aggregation for ViT on FER): 8 classes.
Grayscale images are brought to 3 channels (RGB PNG, identical channels); RGB passes through.
CK+ contributes the last 3 frames of each labelled sequence with the sequence label
(label_source ``sequence-label``). Test: ``test_per_class`` (500) AffectNet validation images per
class; val: ``val_per_class`` (500) AffectNet training images per class; both drawn by seed;
train: everything else (``avfer_split``), with AffectNet capped at ``affectnet_images`` in all
(60,000 as the report; 0 = the whole release). ``balance_per_class`` N > 0 balances train to N per
class (the original used 20,000 via offline augmentation): larger classes are subsampled, smaller
ones keep every image plus augmented copies spread evenly over their sources, in the
``augmentation`` style (``report``: the report's Keras settings, zoom 0.4–1.6, rotation ±10°,
shifts ±20 %, brightness 0.2–0.6; ``mild``: rotation ±10°, zoom 0.8–1.2, brightness 0.7–1.3,
flip); a copy's ``sample_id`` is ``<source sample_id>#aug<k>``, ``augmented_from`` names its source
row and ``augment`` its parameters (JSON).
CK+'s peak frames are ``last_frames`` of ``ferbench/datasets/ckplus/protocols.py``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image, ImageEnhance, ImageOps

from ..datasets.ckplus.protocols import last_frames
from ..errors import FerbenchError
from ..imageio import encode_png
from ..protocols.base import TEST, TRAIN, Inputs, np_col, split_roles, stream
from ..protocols.kfold import per_class_draw
from .base import MergeSpec, RowImages, Selection, register_merge

AVFER_CLASSES = tuple(range(8))


def _avfer_select(inputs: Inputs, seed: int, params: dict[str, Any]) -> dict[str, Selection]:
    if params["augmentation"] not in AUGMENTATIONS:
        raise FerbenchError(f"merge avfer: augmentation={params['augmentation']!r} is not one of {', '.join(AUGMENTATIONS)}")
    sels: dict[str, Selection] = {}
    split: dict[str, np.ndarray] = {}
    for name, src in inputs.sources.items():
        t = src.table
        label = np_col(t, "label", -1).astype(np.int64)
        sel = Selection(np.zeros(t.num_rows, bool), label)
        if name == "ckplus":
            peak = last_frames(t, 3)
            sel.label = np.where(peak, np_col(t, "sequence_label", -1), -1).astype(np.int64)
            sel.label_source = {int(i): "sequence-label" for i in np.flatnonzero(peak & (label < 0))}
            sel.excluded["not-a-peak-frame"] = int((~peak).sum())
        labelled = np.isin(sel.label, AVFER_CLASSES)
        sel.excluded["no-label"] += int((~labelled).sum() - sel.excluded["not-a-peak-frame"])
        roles = np.full(t.num_rows, TRAIN, np.int8)  # FER2013 (all splits) and CK+ only ever train
        if name == "affectnet":
            roles = split_roles(t["source_split"], {"train": TRAIN, "val": TEST}, name)
        s = np.full(t.num_rows, "", dtype=object)
        s[labelled & (roles == TRAIN)] = "train"
        if name == "affectnet":
            test = per_class_draw(sel.label, labelled & (roles == TEST), params["test_per_class"], stream(seed, "avfer", "test"))
            val = per_class_draw(sel.label, labelled & (roles == TRAIN), params["val_per_class"], stream(seed, "avfer", "val"))
            s[test], s[val] = "test", "val"
            sel.excluded["affectnet-val-beyond-test-quota"] = int((labelled & (roles == TEST) & ~test).sum())
            _affectnet_draw(sel, s, int(test.sum() + val.sum()), params["affectnet_images"], seed)
        sel.keep = s != ""
        sels[name], split[name] = sel, s
    if params["balance_per_class"] > 0:
        _balance(sels, split, params["balance_per_class"], seed)
    for name, sel in sels.items():
        sel.columns["avfer_split"] = np.where(split[name] == "", None, split[name])
    return sels


def _affectnet_draw(sel: Selection, split: np.ndarray, held_out: int, budget: int, seed: int) -> None:
    """Keep ``budget`` AffectNet images in all (0: every one): the test and val draws, then a seeded
    uniform draw of the training images up to the budget; the rest are excluded."""
    pool = np.flatnonzero(split == "train")
    room = max(0, budget - held_out)
    if budget <= 0 or len(pool) <= room:
        return
    kept = stream(seed, "avfer", "affectnet-draw").choice(pool, room, replace=False)
    beyond = np.setdiff1d(pool, kept)
    split[beyond] = ""
    sel.excluded["affectnet-beyond-draw"] = len(beyond)


def _balance(sels: dict[str, Selection], split: dict[str, np.ndarray], n: int, seed: int) -> None:
    """Train to ``n`` per class: subsample big classes, add evenly spread copies to small ones."""
    names = sorted(sels)
    owner = np.concatenate([np.full(len(sels[k].keep), i) for i, k in enumerate(names)])
    row = np.concatenate([np.arange(len(sels[k].keep)) for k in names])
    label = np.concatenate([sels[k].label for k in names])
    train = np.concatenate([split[k] == "train" for k in names])
    copies = np.zeros(len(label), np.int64)
    drop = np.zeros(len(label), bool)
    for c in AVFER_CLASSES:
        idx = np.flatnonzero(train & (label == c))
        if not len(idx):
            continue
        rng = stream(seed, "avfer", "balance", c)
        if len(idx) >= n:
            drop[np.setdiff1d(idx, rng.choice(idx, n, replace=False))] = True
        else:
            perm = rng.permutation(idx)
            need = n - len(idx)
            copies[perm] += need // len(idx)
            copies[perm[: need % len(idx)]] += 1
    for i, k in enumerate(names):
        mine = owner == i
        sels[k].copies = copies[mine]
        dropped = row[mine & drop]
        split[k][dropped] = ""
        sels[k].keep[dropped] = False
        sels[k].excluded["balanced-out"] = len(dropped)


class _ToRGB(RowImages):
    """Grayscale (or palette, CMYK, ...) images → 3-channel RGB PNG; RGB bytes pass through."""

    note = {"grayscale": "to 3-channel RGB PNG"}

    def rgb(self, data: bytes) -> bytes:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode == "RGB":
                return data
            self.counts["converted_to_rgb"] += 1
            return encode_png(np.asarray(im.convert("RGB")))


#: offline augmentation styles: "report" = report 002's Keras ``ImageDataGenerator(zoom_range=0.6,
#: rotation_range=10, width_shift_range=0.2, height_shift_range=0.2, brightness_range=(0.2, 0.6))``
#: (zoom factor in [0.4, 1.6], no flip); "mild" = rotation ±10°, zoom 0.8–1.2, brightness 0.7–1.3, flip
AUGMENTATIONS = ("report", "mild")


def _draw(rng: np.random.Generator, style: str) -> dict[str, Any]:
    if style == "report":
        return {"rotate": round(float(rng.uniform(-10, 10)), 3), "zoom": round(float(rng.uniform(0.4, 1.6)), 3),
                "shift_x": round(float(rng.uniform(-0.2, 0.2)), 3), "shift_y": round(float(rng.uniform(-0.2, 0.2)), 3),
                "brightness": round(float(rng.uniform(0.2, 0.6)), 3), "flip": False}
    return {"rotate": round(float(rng.uniform(-10, 10)), 3), "zoom": round(float(rng.uniform(0.8, 1.2)), 3),
            "brightness": round(float(rng.uniform(0.7, 1.3)), 3), "flip": bool(rng.random() < 0.5)}


def augment(data: bytes, rng: np.random.Generator, style: str = "report") -> tuple[bytes, dict[str, Any]]:
    """One augmented copy of an RGB image in ``style`` (``AUGMENTATIONS``), and its parameters. Zoom
    > 1 enlarges (a centre crop resized back), < 1 shrinks (the image resized down on a black canvas,
    as Keras' nearest-fill would not be: UNVERIFIED fill); shifts move by a fraction of the side."""
    p = _draw(rng, style)
    with Image.open(io.BytesIO(data)) as im:
        fmt, img = im.format, im.convert("RGB")
    w, h = img.size
    img = img.rotate(p["rotate"], resample=Image.Resampling.BILINEAR)
    z = p["zoom"]
    if z >= 1:
        cw, ch = min(w, round(w / z)), min(h, round(h / z))
        img = img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)).resize((w, h), Image.Resampling.BILINEAR)
    else:
        small = img.resize((max(1, round(w * z)), max(1, round(h * z))), Image.Resampling.BILINEAR)
        img = Image.new("RGB", (w, h))
        img.paste(small, ((w - small.width) // 2, (h - small.height) // 2))
    if p.get("shift_x") or p.get("shift_y"):
        img = img.transform((w, h), Image.Transform.AFFINE, (1, 0, -p["shift_x"] * w, 0, 1, -p["shift_y"] * h),
                            resample=Image.Resampling.BILINEAR)
    img = ImageEnhance.Brightness(img).enhance(p["brightness"])
    if p["flip"]:
        img = ImageOps.mirror(img)
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=90)
    else:
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), p


def _copy(r: dict[str, Any], k: int, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    data, params = augment(r["rgb"]["bytes"], stream(seed, "avfer", "augment", r["sample_id"], k), params["augmentation"])
    return {
        **r,
        "sample_id": f"{r['sample_id']}#aug{k:05d}",
        "rgb": {"bytes": data, "path": r["rgb"]["path"]},
        "landmarks": None,  # the geometry changed
        "landmark_scheme": None,
        "augmented_from": r["sample_id"],
        "augment": json.dumps(params, sort_keys=True),
    }


AVFER = register_merge(MergeSpec(
    name="avfer",
    title="AVFER (FER2013 + CK+ peak frames + AffectNet, 8 classes)",
    sources=("affectnet", "ckplus", "fer2013"),
    params={"test_per_class": 500, "val_per_class": 500, "balance_per_class": 0, "affectnet_images": 60000,
            "augmentation": "report"},
    columns=("sequence_id", "frame_index", "n_frames", "sequence_label"),
    extra_fields=(
        pa.field("avfer_split", pa.string()),
        pa.field("augmented_from", pa.string()),
        pa.field("augment", pa.string()),
    ),
    select=_avfer_select,
    images=_ToRGB,
    copy=_copy,
    require=("rgb",),
    reference={
        "source": "AVFER report (Aggregation for ViT on FER)",
        "train_balanced": {"per_class": 20000, "total_reported": 161000},
        "test": {"per_class": 500, "total": 4000, "origin": "AffectNet only"},
        "explanations": [
            "the report used about 60,000 AffectNet images (affectnet_images=60000: the 4,000 test and 4,000 val "
            "images, then a seeded uniform draw of training images; how the report drew its 60,000 is not "
            "stated, UNVERIFIED); affectnet_images=0 keeps the whole release",
            "offline augmentation as the report's Keras ImageDataGenerator (augmentation=report: zoom 0.6, "
            "rotation 10°, shifts 0.2, brightness 0.2-0.6); augmentation=mild is ferbench's earlier, gentler set",
            "the report balanced its training set to about 20,000 per class (161,000 images) with offline "
            "augmentation: use balance_per_class=20000 to do the same",
            "the report used a Kaggle copy of CK+48 (about 1,000 images); ferbench takes the last 3 frames of "
            "each labelled CK+ sequence (981 images from the full release or CK+48)",
            "the AffectNet small release has 499 contempt validation images, so its test set has 3,999",
        ],
    },
))
