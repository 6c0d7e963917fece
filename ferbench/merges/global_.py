"""The Global merge (RGB-D, 7 classes).

**Global** (CalD3r/MenD3s + BU-3DFE + Bosphorus; Ulrich-lab thesis, 12,098 samples): 7 classes
(no contempt), rows with both RGB and depth. Bosphorus contributes its E_* and N_N scans and, with
``bosphorus_au_rule`` (default true, as in the thesis), AU scans mapped by the CK+-style rule
LFAU_24→anger, LFAU_9→disgust, LFAU_12→happiness, LFAU_15→sadness, UFAU_2→surprise,
UFAU_1→fear (exact codes; label_source ``au-rule``). Unlike the reference code, every neutral
scan and every repetition is kept (it overwrote them by name; ``bosphorus_scans=as-published``
rebuilds that: one scan per subject and label) and subjects stay whole.
Depth is brought to **one unit, orientation and reference**: 16-bit PNG, 0.1 mm per unit,
value = distance along the camera's viewing axis from a plane 50 mm in front of the face's
nearest point (larger = farther, as ``geometry.render`` draws BU-3DFE and Bosphorus), 0 = no
data, image upright (+y up) as seen from the camera. A source already in that convention passes
through untouched; others are rescaled/shifted and re-encoded (only those rows). Raw-sensor
depth (CalD3r/MenD3s, ``unit_mm: null``, an absolute distance) is scaled with ``sensor_unit_mm``
— default 0.125 mm (the SR300's native unit), **UNVERIFIED**: the dataset does not state its
unit; set 1.0 if your copy is in millimetres — and re-referenced per image to its nearest valid
pixel, so no source is told apart by its depth offset. ``depth_reference=source`` keeps each
source's own zero point (unit conversion only).
The AU rule is the Bosphorus loader's ``AU_RULE`` (``ferbench/datasets/bosphorus/loader.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ..datasets.bosphorus.loader import AU_RULE
from ..errors import FerbenchError
from ..imageio import decode, encode_png
from ..protocols.base import Inputs, Source, np_col, require_columns
from ..schema import EMOTION_INDEX
from .base import MergeSpec, RowImages, Selection, register_merge

GLOBAL_DEPTH_UNIT_MM = 0.1
#: Global depth reference: the plane this far in front of the nearest surface point (as rendered).
MARGIN_MM = 50.0
GLOBAL_CLASSES = (0, 1, 2, 3, 4, 5, 6)


def _global_select(inputs: Inputs, seed: int, params: dict[str, Any]) -> dict[str, Selection]:
    out = {}
    for name, src in inputs.sources.items():
        t = src.table
        label = np_col(t, "label", -1).astype(np.int64)
        sel = Selection(np.zeros(t.num_rows, bool), label)
        if name == "bosphorus":
            require_columns(src, "scan_class", "scan_code")
            _bosphorus_labels(t, sel, params["bosphorus_au_rule"])
        sel.keep = np.isin(sel.label, GLOBAL_CLASSES)
        sel.excluded["no-label-in-7-classes"] = int((~sel.keep).sum())
        if name == "bosphorus" and params["bosphorus_scans"] == "as-published":
            _as_published(t, sel)
        elif params["bosphorus_scans"] not in ("all", "as-published"):
            raise FerbenchError(f"merge global: bosphorus_scans={params['bosphorus_scans']!r}; choose all or as-published")
        out[name] = sel
    return out


def _bosphorus_labels(t: pa.Table, sel: Selection, au_rule: bool) -> None:
    """E_*/N_N scans keep their label; AU scans get the AU rule's label (or none)."""
    scan, code = np_col(t, "scan_class", ""), np_col(t, "scan_code", "")
    source = np_col(t, "label_source", "")
    derived = source == "au-rule"
    if not au_rule:
        sel.label[derived] = -1
        return
    for i in np.flatnonzero(sel.label < 0):
        rule = AU_RULE.get(f"{scan[i]}_{code[i]}")
        if rule is not None:
            sel.label[i] = EMOTION_INDEX[rule]
            sel.label_source[int(i)] = "au-rule"


def _as_published(t: pa.Table, sel: Selection) -> None:
    """The reference code's Bosphorus selection: it wrote each scan to a file named by subject and
    class, so one scan per (subject, label) survived — the last written, taken here as the highest
    repetition, then the last sample id (the code's file order is UNVERIFIED)."""
    subject = np_col(t, "subject_id", "")
    rep = np_col(t, "repetition", 0) if "repetition" in t.column_names else np.zeros(t.num_rows, np.int64)
    sample = np_col(t, "sample_id", "")
    best: dict[tuple[str, int], int] = {}
    for i in np.flatnonzero(sel.keep):
        key = (str(subject[i]), int(sel.label[i]))
        j = best.get(key)
        if j is None or (int(rep[i]), str(sample[i])) > (int(rep[j]), str(sample[j])):
            best[key] = int(i)
    kept = np.zeros(t.num_rows, bool)
    kept[list(best.values())] = True
    sel.excluded["overwritten-as-published"] = int((sel.keep & ~kept).sum())
    sel.keep = kept


class _DepthHarmonise(RowImages):
    """Depth to the Global convention: 0.1 mm units, nearest surface point at ``MARGIN_MM``.

    A rendered source already in 0.1 mm with the same reference plane passes through untouched;
    a rendered source with another margin is shifted; sensor depth (an absolute distance) is
    scaled by its unit and re-referenced per image to its nearest valid point.
    """

    def __init__(self, src: Source, params: dict[str, Any]):
        super().__init__(src, params)
        meta = src.data.metadata().get("depth")
        if not meta:
            raise FerbenchError(f"{src.name}: its schema metadata does not state the depth unit")
        if meta.get("up", "+y") != "+y":
            raise FerbenchError(f"{src.name}: depth image with up={meta['up']!r}; Global needs upright images")
        if params["depth_reference"] not in ("nearest", "source"):
            raise FerbenchError(f"depth_reference={params['depth_reference']!r}; choose nearest or source")
        assumed = meta.get("unit_mm") is None
        self.unit = float(params["sensor_unit_mm"] if assumed else meta["unit_mm"])
        margin = (meta.get("camera") or {}).get("margin_mm")
        self.per_image = params["depth_reference"] == "nearest" and (meta.get("source") == "sensor" or margin is None)
        self.shift = MARGIN_MM - margin if params["depth_reference"] == "nearest" and not self.per_image else 0.0
        self.identity = abs(self.unit - GLOBAL_DEPTH_UNIT_MM) < 1e-12 and self.shift == 0 and not self.per_image
        self.note = {
            "from": {k: meta.get(k) for k in ("unit_mm", "source", "zero")},
            "unit_mm": self.unit,
            "assumed_unit": assumed,
            "reference": "per image: nearest point" if self.per_image else f"shift {self.shift:+g} mm",
            "re_encoded": not self.identity,
        }

    def depth(self, data: bytes) -> bytes:
        if self.identity:
            return data
        raw = decode(data)
        valid = raw > 0
        mm = raw.astype(np.float64) * self.unit
        if self.per_image and valid.any():
            mm -= mm[valid].min() - MARGIN_MM
        else:
            mm += self.shift
        units = np.rint(mm / GLOBAL_DEPTH_UNIT_MM)
        if (units[valid] > 65535).any():
            self.counts["images_saturated"] += 1  # points beyond 6553.5 mm are clipped to 65535
        out = np.clip(units, 1, 65535).astype(np.uint16)
        out[~valid] = 0  # 0 stays "no data", a measured point never becomes 0
        return encode_png(out)


def _global_depth_metadata(images: dict[str, RowImages], params: dict[str, Any]) -> dict[str, Any]:
    """The schema's ``depth`` entry of the Global set (what every source was brought to)."""
    nearest = params["depth_reference"] == "nearest"
    return {
        "depth": {
            "unit_mm": GLOBAL_DEPTH_UNIT_MM,
            "zero": "invalid",
            "source": "harmonised",
            "reference": f"plane {MARGIN_MM:g} mm in front of the nearest surface point; larger = farther"
            if nearest
            else "each source's own (see from)",
            "up": "+y",
            "from": {n: img.note for n, img in images.items()},
        }
    }


GLOBAL = register_merge(MergeSpec(
    name="global",
    title="Global (CalD3r/MenD3s + BU-3DFE + Bosphorus, RGB-D, 7 classes)",
    sources=("bosphorus", "bu3dfe", "caldr_menders"),
    params={"bosphorus_au_rule": True, "sensor_unit_mm": 0.125, "depth_reference": "nearest", "bosphorus_scans": "all"},
    columns=("label_source", "scan_class", "scan_code"),
    extra_fields=(),
    select=_global_select,
    images=_DepthHarmonise,
    require=("rgb", "depth"),
    metadata=_global_depth_metadata,
    reference={
        "source": "Ulrich-lab RGB-D FER thesis (Global dataset) and its public code's plot script",
        "total_text": 12098,
        "total_per_class_figure": 12118,
        "per_class": {"anger": 1397, "disgust": 1646, "fear": 1055, "happiness": 1779, "neutral": 3620, "sadness": 1688, "surprise": 933},
        "per_source": {"caldr_menders": 8716, "bu3dfe": 2500, "bosphorus": 902},
        "explanations": [
            "the thesis text says 12,098 while its per-class figure sums to 12,118 (8,716 + 2,500 + 902)",
            "the reference code copied every Bosphorus neutral scan to one file name per subject and let "
            "E_X_1 overwrite E_X_0, so it kept one neutral and one scan per emotion per subject; ferbench keeps all",
            "CalD3r/MenD3s rows without their RGB or depth partner (2 known pairs) are excluded here",
            "bosphorus_au_rule=false leaves the AU-derived Bosphorus scans out",
            "bosphorus_scans=as-published keeps one Bosphorus scan per subject and label, as the reference "
            "code's overwriting did (the published 12,098-row set); all (default) keeps every scan",
        ],
    },
))
