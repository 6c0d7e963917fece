"""CalD3r & MenD3s: spontaneous RGB-D facial expressions (Ulrich et al., JVCIR 2024).

Two sets captured alike with an Intel RealSense SR300 (224×224 crops, expressions elicited with
IAPS/GAPED pictures): **CalD3r** (104 subjects, Italy) and **MenD3s** (92 subjects, Brazil),
about 8.7k RGB/depth pairs together. One converter reads both; the set comes from the folder
named ``CalD3r`` or ``MenD3s`` (case-insensitive) on each file's path.

Layouts (which one the official archive uses is UNVERIFIED, so both are accepted, even mixed;
files are found by globbing ``**/*_Color.png`` / ``**/*_Depth.png`` case-insensitively, and the
label is read from the file name, never from a folder):

* ``rgb-depth``: ``<Set>/<Emotion>/RGB/<name>_Color.png`` + ``<Set>/<Emotion>/DEPTH/<name>_Depth.png``
* ``emotions-color-depth``: ``<Set>/Emotions/<Emotion>/Color/…`` + ``<Set>/Emotions/<Emotion>/Depth/…``

File name: ``[aligned_]<G>_<SSS>_<CODE>_<label>_<Color|Depth>.png`` — G gender ``F``/``M``; SSS
the subject number, zero-padded to **3 digits in CalD3r and 2 in MenD3s** (a name whose width
disagrees with its set is a ``bad-name`` fault); CODE a free token, very probably the id of the
eliciting picture (UNVERIFIED), kept as ``stimulus``; the optional ``aligned_`` prefix (written
by the public reference code after its own alignment) is kept in ``sample_id``.

Subjects are ``caldr_menders:CalD3r-001`` / ``caldr_menders:MenD3s-01``: numbers collide across
the sets. Whether numbering restarts per gender is UNVERIFIED; the gender is left out of the key,
which can only merge, never split, one person (safe for subject-independent folds).

Classes (identity on the file-name words, no contempt): anger, disgust, fear, happiness,
neutral, sadness, surprise. Label source: ``annotation``.

Images pass through untouched. The depth image must be a 16-bit single-channel PNG (else a
``bad-depth`` fault) in the sensor's raw unit, 0 = invalid; the unit is UNVERIFIED (the SR300's
native unit is about 1/8 mm, some pipelines write mm), hence ``unit_mm: null`` in the metadata.
RGB and depth look pixel-registered (UNVERIFIED), so ``align=true`` rotates both alike.

``rgb.path`` / ``depth.path`` are stored from the set folder on (``CalD3r/Anger/RGB/…_Color.png``),
whichever folder the raw directory names (the archive's top folder, the one above it, or a set
folder itself, whose own name then gives the set), so the fingerprint depends on the content only.

A colour image without its depth partner, or the reverse, is a ``missing-pair`` fault; two such
pairs are known in the real data (``CalD3r/Disgust/RGB/F_020_H064_disgust_Color.png`` and
``MenD3s/Disgust/DEPTH/F_12_1932_disgust_Depth.png``).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

from ...errors import SampleError
from ...imageio import check_image
from ...schema import EMOTION_INDEX, image, namespaced
from .. import _rgbd
from ..base import register_dataset, DatasetLoader, Item, Report

SETS = {"cald3r": "CalD3r", "mend3s": "MenD3s"}
PAD = {"CalD3r": 3, "MenD3s": 2}
LABELS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
NAME = re.compile(
    r"^(?P<aligned>aligned_)?(?P<g>[FM])_(?P<subj>\d+)_(?P<code>[A-Za-z0-9]+)_(?P<label>[A-Za-z]+)_(?P<mod>color|depth)\.png$",
    re.IGNORECASE,
)
PARTNER = {"color": "_Depth.png", "depth": "_Color.png"}
DEPTH_METADATA = {
    "unit_mm": None,
    "raw_unit": "sensor (UNVERIFIED: SR300 ≈ 0.125 mm or 1 mm)",
    "zero": "invalid",
    "source": "sensor",
}


@register_dataset
class CalD3rMenD3s(DatasetLoader):
    name = "caldr_menders"
    title = "CalD3r & MenD3s"
    version = "2024"
    homepage = "https://doi.org/10.1016/j.jvcir.2023.104033"
    license = "research use under the authors' data agreement (request from the authors)"
    citation = (
        "L. Ulrich, F. Marcolin, E. Vezzetti, F. Nonis, D. C. Mograbi, G. W. Scurati, N. Dozio, F. Ferrise, "
        '"CalD3r and MenD3s: Spontaneous 3D facial expression databases", J. Visual Communication and '
        "Image Representation 98 (2024) 104033"
    )
    layouts = {
        "rgb-depth": """
CalD3RMenD3s/
  CalD3r/Anger/RGB/F_001_1120_anger_Color.png
  CalD3r/Anger/DEPTH/F_001_1120_anger_Depth.png
  MenD3s/Disgust/RGB/F_12_1932_disgust_Color.png
  MenD3s/Disgust/DEPTH/F_12_1932_disgust_Depth.png
""",
        "emotions-color-depth": """
CalD3r/Emotions/Anger/Color/F_001_1120_anger_Color.png
CalD3r/Emotions/Anger/Depth/F_001_1120_anger_Depth.png
MenD3s/Emotions/Disgust/Color/F_12_1932_disgust_Color.png
MenD3s/Emotions/Disgust/Depth/F_12_1932_disgust_Depth.png
""",
    }
    label_map = {label: EMOTION_INDEX[label] for label in LABELS}
    extra_fields = (
        pa.field("source_set", pa.string()),
        pa.field("gender", pa.string()),
        pa.field("stimulus", pa.string()),
    )
    options = {"align": _rgbd.ALIGN}

    @property
    def block_items(self) -> int:
        """Small conversion blocks when aligning runs MediaPipe on every image."""
        return _rgbd.SLOW_BLOCK if self.opts["align"] else super().block_items

    def _images(self, report: "Report | None" = None) -> list[Path]:
        """The colour and depth PNGs below the root, sorted; bad links left out (faults of ``report``)."""
        probe = report if report is not None else Report()
        return sorted(p for p in self.root.rglob("*") if p.name.lower().endswith(("_color.png", "_depth.png")) and self.usable_file(p, probe))

    def detect(self) -> str:
        found = {self._layout(p) for p in self._images()}
        if not found:
            raise self.not_found("no *_Color.png or *_Depth.png file anywhere below it")
        return "+".join(sorted(found))

    def _layout(self, path: Path) -> str:
        parts = [part.lower() for part in path.relative_to(self.root).parts]
        return "emotions-color-depth" if "emotions" in parts else "rgb-depth"

    def _from_set(self, path: Path) -> tuple[str, str] | None:
        """(set, path from the set folder on) of a file: the last CalD3r/MenD3s folder on its path
        below the raw root, else the raw root's own name; None when neither names a set."""
        parts = path.relative_to(self.root).parts
        for i in range(len(parts) - 2, -1, -1):
            if parts[i].lower() in SETS:
                return SETS[parts[i].lower()], "/".join(parts[i:])
        top = Path(os.path.abspath(self.root)).name
        if top.lower() in SETS:
            return SETS[top.lower()], "/".join((top, *parts))
        return None

    def _source_set(self, path: Path) -> str | None:
        found = self._from_set(path)
        return None if found is None else found[0]

    def scan(self, report: "Report") -> Iterable[Item]:
        pairs: dict[tuple[str, ...], dict[str, Path]] = defaultdict(dict)
        for path in self._images(report):
            rel = self.rel(path)
            key = self._key(path, rel, report)
            if key is None:
                continue
            mod = key[-1]
            if mod in pairs[key[:-1]]:
                report.fault("duplicate", f"same sample as {self.rel(pairs[key[:-1]][mod])}", rel)
                continue
            pairs[key[:-1]][mod] = path
        genders: dict[str, set[str]] = defaultdict(set)
        for key, files in sorted(pairs.items()):
            if len(files) < 2:
                ((mod, path),) = files.items()
                expected = path.name[: -len("_color.png")] + PARTNER[mod]
                report.fault("missing-pair", f"no {expected} partner for this {mod} image", self.rel(path))
                continue
            source_set, aligned, gender, subj, code, label = key
            genders[f"{source_set}-{subj}"].add(gender)
            yield Item(
                sample_id=f"{self.name}/{source_set}/{aligned}{gender}_{subj}_{code}_{label}",
                source=self.rel(files["color"]),
                payload=(
                    self.rel(files["color"]),
                    self.rel(files["depth"]),
                    source_set,
                    gender,
                    subj,
                    code,
                    label,
                    self._from_set(files["color"])[1],  # type: ignore[index]
                    self._from_set(files["depth"])[1],  # type: ignore[index]
                ),
            )
        for subject, both in sorted(genders.items()):
            if len(both) > 1:
                report.note(f"subject {subject} appears with genders {sorted(both)} (kept as one subject)")

    def _key(self, path: Path, rel: str, report: "Report") -> tuple[str, ...] | None:
        m = NAME.match(path.name)
        if m is None:
            report.fault("bad-name", "name does not fit [aligned_]<G>_<SSS>_<CODE>_<label>_<Color|Depth>.png", rel)
            return None
        source_set = self._source_set(path)
        if source_set is None:
            report.fault("unknown-set", "no CalD3r/ or MenD3s/ folder on the path", rel)
            return None
        subj, label = m["subj"], m["label"].lower()
        if len(subj) != PAD[source_set]:
            report.fault("bad-name", f"subject number {subj!r} has {len(subj)} digits; {source_set} uses {PAD[source_set]}", rel)
            return None
        if label not in self.label_map:
            report.fault("unknown-label", f"label {m['label']!r} not in {list(LABELS)}", rel)
            return None
        aligned = "aligned_" if m["aligned"] else ""
        return (source_set, aligned, m["g"].upper(), subj, m["code"], label, m["mod"].lower())

    def load(self, item: Item) -> dict[str, Any]:
        rgb_rel, depth_rel, source_set, gender, subj, code, label, rgb_stored, depth_stored = item.payload
        rgb = self.read_raw(rgb_rel)
        depth = self.read_raw(depth_rel)
        check_image(rgb, rgb_rel)
        info = check_image(depth, depth_rel)
        if not _rgbd.is_depth16(info):
            raise SampleError("bad-depth", f"depth must be a 16-bit single-channel PNG, got {info.format} mode {info.mode}", depth_rel)
        if self.opts["align"]:
            rgb, depth, _ = _rgbd.align_images(rgb, depth, rgb_rel)
        return {
            "sample_id": item.sample_id,
            "subject_id": namespaced(self.name, f"{source_set}-{subj}"),
            "label_raw": label,
            "label_source": "annotation",
            "rgb": image(rgb, rgb_stored),
            "depth": image(depth, depth_stored),
            "source_set": source_set,
            "gender": gender,
            "stimulus": code,
        }

    def metadata(self) -> dict[str, Any]:
        return {"depth": DEPTH_METADATA}

    def fingerprint_sources(self) -> tuple[Any, ...]:
        return (*super().fingerprint_sources(), _rgbd)
