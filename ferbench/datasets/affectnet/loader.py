"""AffectNet (Mollahosseini, Hasani & Mahoor, 2017): in-the-wild faces with 11 expression ids and valence/arousal.

Two published releases are read (the layout is auto-detected; ``-o release=small|full`` picks one
when a root holds both, ``auto`` prefers the full release):

* ``small`` — the cropped 224×224 release ("AffectNet-8"): ``train_set/`` and ``val_set/``, each with
  ``images/<id>.jpg`` and ``annotations/<id>_{exp,val,aro,lnd}.npy``. Ids are integers, not
  contiguous, and the same id occurs in both splits, so ``sample_id`` is
  ``affectnet/<train|val>/<id>``. An image without its four annotation files, or annotations
  without an image (the real validation set lacks one Contempt image), is a reported fault.
* ``full`` — the manually annotated release: ``Manually_Annotated_file_lists/{training,validation}.csv``
  (searched for below the root) with columns ``subDirectory_filePath, face_x, face_y, face_width,
  face_height, facial_landmarks, expression, valence, arousal``, and the original web images under
  ``Manually_Annotated_Images/<folder>/<56 hex>.<jpg|png|jpeg|JPG>``. ``sample_id`` is
  ``affectnet/<train|val>/<subDirectory_filePath without extension>``. Malformed lines (the real
  training.csv has one), images listed but missing, and broken image files (hcai lists one corrupt
  validation image) are reported faults; conversion goes on. The automatically annotated part is
  not converted.

Classes: ids 0-7 (Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger, Contempt) map to the
canonical index by identity; 8 None, 9 Uncertain and 10 No-Face are kept with ``label`` null and
``label_raw`` "8"/"9"/"10". Valence and arousal are float32 columns; the -2 sentinel (ids 9, 10)
becomes null. ``landmarks`` are the 68 iBUG points as (68, 2) x/y pixels (``ibug68-2d``);
``face_box`` is the full release's [x, y, width, height]; ``release`` says which release a row
came from. There are no subject ids. Image bytes pass through untouched. ``rgb.path`` is relative
to the layout root (the folder holding ``train_set/`` / ``val_set/``, or the one holding
``Manually_Annotated_Images/``), not to the raw directory given, so pointing the converter one
folder higher or lower gives the same rows and fingerprint.

UNVERIFIED variants accepted: scalar npy files 0-d or shape (1,), holding a unicode string
(what the real files hold), a byte string or a number; ``_lnd.npy`` float32 or float64, shape
(136,) or (68, 2); the coordinate frame of the small release's landmarks (kept as stored);
validation.csv with or without its header row (columns are matched by header name when present).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pyarrow as pa

from ...errors import SampleError
from ...imageio import check_image
from ...schema import image
from ..base import register_dataset, DatasetLoader, Item, Option, find_dir
from . import parsing
from .parsing import (
    CSV_COLUMNS,
    LABEL_MAP,
    N_LANDMARK_VALUES,
    NO_VALUE,
    RowFault,
    _affect,
    _csv_landmarks,
    _csv_payload,
    _header,
    _npy_text,
    _scalar_text,
    read_npy,
)

#: Re-exported: callers and tests import these from here.
__all__ = ["AffectNet", "CSV_COLUMNS", "N_LANDMARK_VALUES", "NO_VALUE", "read_npy", "_npy_text", "_scalar_text"]

if TYPE_CHECKING:
    from ..base import Report

SPLIT_DIRS = {"train": "train_set", "val": "val_set"}
CSV_FILES = {"train": "training.csv", "val": "validation.csv"}
ANNOTATION_KINDS = ("exp", "val", "aro", "lnd")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_IMAGE_EXTENSIONS = frozenset(suffix[1:] for suffix in IMAGE_SUFFIXES)
#: Never descend into these while looking for a release's top folders (they hold the images).
_PRUNE = frozenset({"images", "annotations", "Manually_Annotated_Images", "Automatically_Annotated_Images"})


@register_dataset
class AffectNet(DatasetLoader):
    name = "affectnet"
    title = "AffectNet"
    version = "2017"
    homepage = "http://mohammadmahoor.com/affectnet/"
    license = "Research-only licence agreement (request form on the homepage); no redistribution"
    citation = (
        "A. Mollahosseini, B. Hasani, M. H. Mahoor. AffectNet: A Database for Facial Expression, "
        "Valence, and Arousal Computing in the Wild. IEEE Transactions on Affective Computing 10(1), 2019."
    )
    layouts = {
        "small": """
AffectNet/
├── train_set/
│   ├── images/0.jpg 1.jpg 2.jpg 3.jpg 5.jpg ...
│   └── annotations/0_exp.npy 0_val.npy 0_aro.npy 0_lnd.npy ...
└── val_set/
    ├── images/...
    └── annotations/...
""",
        "full": """
AffectNet/
├── Manually_Annotated_file_lists/training.csv
├── Manually_Annotated_file_lists/validation.csv
└── Manually_Annotated_Images/<folder>/<56 hex>.<jpg|png|jpeg|JPG>
""",
    }
    label_map = LABEL_MAP
    extra_fields = (
        pa.field("valence", pa.float32()),
        pa.field("arousal", pa.float32()),
        pa.field("face_box", pa.list_(pa.int32())),
        pa.field("release", pa.string()),
    )
    options = {
        "release": Option("auto", "release to convert when both are present (auto prefers full)", ("auto", "small", "full")),
    }

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        self._small: Path | None = None
        self._lists: Path | None = None
        self._images: Path | None = None
        # (small root, images dir) → (layout root, its path relative to ``root``, "/"-terminated)
        self._top_inner: dict[tuple[Path | None, Path | None], tuple[Path, str]] = {}

    # -- detection ------------------------------------------------------------------------
    def detect(self) -> str:
        wanted = self.opts["release"]
        if wanted in ("auto", "full"):
            self._lists = find_dir(self.root, "Manually_Annotated_file_lists", prune=_PRUNE, include_root=False)
            if self._lists is not None:
                self._images = self._images_dir(self._lists)
                return "full"
            if wanted == "full":
                raise self.not_found("no Manually_Annotated_file_lists/ folder (full release)")
        self._small = self._small_root()
        if self._small is None:
            raise self.not_found(
                "no train_set/ or val_set/ holding images/ and annotations/ (small release)"
                + (" and no Manually_Annotated_file_lists/ (full release)" if wanted == "auto" else "")
            )
        return "small"

    def _small_root(self) -> Path | None:
        for split_dir in SPLIT_DIRS.values():
            found = find_dir(self.root, split_dir, prune=_PRUNE, include_root=False)
            if found is not None and (found / "images").is_dir() and (found / "annotations").is_dir():
                return found.parent
        return None

    def _images_dir(self, lists: Path) -> Path:
        sibling = lists.parent / "Manually_Annotated_Images"
        found = sibling if sibling.is_dir() else find_dir(self.root, "Manually_Annotated_Images")
        if found is None:
            raise self.not_found(f"{self.rel(lists)}/ found but no Manually_Annotated_Images/ folder")
        return found

    # -- scanning -------------------------------------------------------------------------
    def scan(self, report: "Report") -> Iterator[Item]:
        if self._lists is not None:
            if self._small_root() is not None:
                report.note("the small release is present too; convert it with -o release=small")
            if find_dir(self.root, "Automatically_Annotated_file_lists", prune=_PRUNE) is not None:
                report.note("the automatically annotated part is not converted (manually annotated only)")
            for split, file_name in CSV_FILES.items():
                yield from self._scan_csv(self._lists / file_name, split, report)
        else:
            assert self._small is not None
            for split, split_dir in SPLIT_DIRS.items():
                if (self._small / split_dir).is_dir():
                    yield from self._scan_split_dir(self._small / split_dir, split, report)

    def _scan_split_dir(self, folder: Path, split: str, report: "Report") -> Iterator[Item]:
        images_rel, ann_rel = self.rel(folder / "images"), self.rel(folder / "annotations")
        images: dict[str, str] = {}
        for name in sorted(_names(folder / "images", report, images_rel)):
            stem, _, ext = name.rpartition(".")
            if not (stem.isdigit() and ext.lower() in _IMAGE_EXTENSIONS):
                report.fault("unexpected-file", "not an <id>.jpg image", f"{images_rel}/{name}")
            elif stem in images:
                report.fault("duplicate-image", f"id {stem} has two images ({images[stem]})", f"{images_rel}/{name}")
            else:
                images[stem] = name
        annotations = set(_names(folder / "annotations", report, ann_rel))
        wanted = {f"{stem}_{kind}.npy" for stem in images for kind in ANNOTATION_KINDS}
        absent = wanted - annotations  # set algebra: this runs over 290k ids
        missing = {
            stem: [name for kind in ANNOTATION_KINDS if (name := f"{stem}_{kind}.npy") in absent]
            for stem in {name.rpartition("_")[0] for name in absent}
        }
        image_dir, ann_dir, id_prefix = f"{images_rel}/", f"{ann_rel}/", f"{self.name}/{split}/"
        for stem in sorted(images, key=int):
            image_rel = image_dir + images[stem]
            if stem in missing:
                report.fault("missing-annotation", f"no {', '.join(missing[stem])} in {ann_rel}", image_rel)
            else:
                yield Item(id_prefix + stem, image_rel, ("small", split, image_rel, ann_dir + stem))
        _leftover_faults(annotations - wanted, ann_rel, report)

    def _scan_csv(self, path: Path, split: str, report: "Report") -> Iterator[Item]:
        rel = self.rel(path)
        if not path.is_file():
            report.note(f"{rel} not found: no {split} rows")
            return
        images_rel = self.rel(self._images) if self._images is not None else ""
        first: dict[str, int] = {}
        columns: dict[str, int] | None = None
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            for lineno, line in enumerate(fh, 1):
                fields = line.rstrip("\r\n").lstrip("\ufeff").split(",")
                if fields == [""]:
                    continue
                if columns is None:
                    columns = _header(fields, rel, report)
                    if columns is None:
                        return
                    if fields[0] == CSV_COLUMNS[0]:
                        continue
                try:
                    payload = _csv_payload(fields, columns)
                except RowFault as exc:
                    report.fault(exc.kind, str(exc), rel, lineno)
                    continue
                sample_id = f"{self.name}/{split}/{os.path.splitext(payload[0])[0]}"
                if sample_id in first:
                    report.fault("duplicate-row", f"same image as line {first[sample_id]}", rel, lineno)
                    continue
                first[sample_id] = lineno
                image_rel = f"{images_rel}/{payload[0]}"
                yield Item(sample_id, image_rel, ("full", split, image_rel, (rel, lineno), *payload[1:]))

    # -- loading (worker processes) ---------------------------------------------------------
    def load(self, item: Item) -> dict[str, Any]:
        release, split, image_rel, *rest = item.payload
        if release == "small":
            label_raw, valence, arousal, landmarks = self._small_annotations(rest[0])
            box, where = None, ""
        else:
            (csv_rel, lineno), box, label_raw, valence, arousal, landmark_text = rest
            landmarks = _csv_landmarks(landmark_text, csv_rel, lineno)
            where = f" (listed in {csv_rel} line {lineno})"
        try:
            data = self.read_raw(image_rel)
        except FileNotFoundError:
            raise SampleError("missing-image", f"image not on disk{where}", file=image_rel) from None
        check_image(data, image_rel)
        return {
            "sample_id": item.sample_id,
            "source_split": split,
            "subject_id": None,
            "label": self.label_map[label_raw],
            "label_raw": label_raw,
            "label_source": "annotation",
            "rgb": image(data, self._stored(image_rel)),
            "landmarks": landmarks,
            "landmark_scheme": "ibug68-2d",
            "valence": valence,
            "arousal": arousal,
            "face_box": box,
            "release": release,
        }

    def fingerprint_sources(self) -> tuple[Any, ...]:
        return (*super().fingerprint_sources(), parsing)

    def _stored(self, rel: str) -> str:
        """A raw-root-relative path made relative to the layout root (what ``rgb.path`` stores):
        the layout root's own relative path is cut off the front when it is a prefix (the usual
        case, a string slice), else ``relpath`` decides. The layout root is worked out once per
        detected layout, not per image."""
        key = (self._small, self._images)
        cached = self._top_inner.get(key)
        if cached is None:
            top = self._small if self._small is not None else Path(os.path.abspath(self._images or self.root)).parent
            cached = self._top_inner[key] = (top, Path(os.path.relpath(top, self._root_prefix)).as_posix() + "/")
        top, inner = cached
        if inner == "./":
            return rel
        if rel.startswith(inner) and not inner.startswith("../"):
            return rel[len(inner):]
        return Path(os.path.relpath(self._root_prefix + rel, top)).as_posix()

    def _small_annotations(self, prefix: str) -> tuple[str, float | None, float | None, np.ndarray]:
        files = [f"{prefix}_{kind}.npy" for kind in ANNOTATION_KINDS]
        try:
            exp, val, aro, lnd = [self.read_raw(rel, 4096) for rel in files]
        except FileNotFoundError as exc:
            rel = next(r for r in files if exc.filename == self._root_prefix + r)
            raise SampleError("missing-annotation", "annotation file vanished", file=rel) from None
        label_raw = _npy_text(exp, files[0])
        if label_raw not in self.label_map:
            raise SampleError("unknown-label", f"expression id {label_raw!r} not in 0..10", file=files[0])
        points = read_npy(lnd, files[3])
        if points.size != N_LANDMARK_VALUES or points.dtype.kind != "f":
            raise SampleError(
                "bad-landmarks", f"{points.size} {points.dtype} values, expected {N_LANDMARK_VALUES} floats", file=files[3]
            )
        return (
            label_raw,
            _affect(_npy_text(val, files[1]), files[1]),
            _affect(_npy_text(aro, files[2]), files[2]),
            points.astype(np.float32, copy=False).reshape(68, 2),
        )


# -- helpers ------------------------------------------------------------------------------------
def _names(folder: Path, report: "Report", rel: str) -> list[str]:
    """File names in a folder (hidden files skipped, unsorted); a missing folder is a fault."""
    try:
        return [name for name in os.listdir(folder) if not name.startswith(".")]
    except FileNotFoundError:
        report.fault("missing-folder", "folder not found", rel)
        return []


def _leftover_faults(names: set[str], ann_rel: str, report: "Report") -> None:
    """Faults for annotation files no image claimed: annotations without an image, or strays."""
    orphans: dict[str, list[str]] = {}
    for name in sorted(names):
        stem, _, kind = name.removesuffix(".npy").rpartition("_")
        if name.endswith(".npy") and stem.isdigit() and kind in ANNOTATION_KINDS:
            orphans.setdefault(stem, []).append(kind)
        else:
            report.fault("unexpected-file", "not an <id>_{exp,val,aro,lnd}.npy file", f"{ann_rel}/{name}")
    for stem in sorted(orphans, key=int):
        first = min(orphans[stem], key=ANNOTATION_KINDS.index)
        report.fault("missing-image", f"annotations of id {stem} but no image", f"{ann_rel}/{stem}_{first}.npy")
