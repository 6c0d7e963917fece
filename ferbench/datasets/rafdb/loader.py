"""RAF-DB basic (Li, Deng & Du, 2017): 15,339 in-the-wild faces, 7 basic emotions, crowd-sourced labels.

Layouts (auto-detected):

* ``basic`` — the release as distributed: ``EmoLabel/list_patition_label.txt`` (sic; the correctly
  spelled ``list_partition_label.txt`` is accepted too), one ``<file name> <label 1..7>`` per line,
  and ``Image/original/train_00001.jpg`` / ``Image/aligned/train_00001_aligned.jpg``. Option
  ``image`` picks ``aligned`` (default) or ``original`` faces. The split is the ``train_`` /
  ``test_`` name prefix (``source_split`` "train"/"test": 12,271 + 3,068).
* ``kaggle`` — the Kaggle repack ``DATASET/{train,test}/{1..7}/*.jpg`` (aligned faces only; the
  folder name is the label).

``sample_id`` is ``rafdb/<file stem without _aligned>`` (``rafdb/train_00001``). Labels 1..7
(Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral) map to canonical 3, 4, 5, 1, 2, 6, 0;
``label_raw`` keeps the 1-based id. Malformed label lines, unknown labels, listed images missing
on disk and images not listed are reported faults. No subject ids, no landmarks. Image bytes
pass through untouched.

Stored image paths (``rgb.path``) are relative to the layout root, whichever folder the raw
directory names: the folder holding ``EmoLabel/`` and ``Image/`` (``Image/aligned/train_00001_aligned.jpg``)
or the one holding ``DATASET/`` (``DATASET/train/1/train_00001_aligned.jpg``), so pointing the converter
at ``basic/`` or at the folder above it gives the same rows and fingerprint.

The compound release is refused, never converted. RAF-DB also ships a *compound* set whose tree
looks the same (``compound/EmoLabel/list_patition_label.txt``, ``Image/aligned/train_0001_aligned.jpg``)
but whose labels 1..11 name compound emotions (UNVERIFIED, from memory: 1 happily surprised …
11 disgustedly surprised); read as the basic set, every one of its images would get a wrong
basic label. A label file is taken for the compound release when its train names all have 4
digits (basic train names have 5) or when it uses labels above 7 as data rather than as a stray
line (two or more distinct labels among 8..11, or labels above 7 on more than a quarter of the
rows); a Kaggle-style ``DATASET/`` with class folders 8..11 likewise. Refusing is the safe
choice: the basic converter stops with a ``DatasetNotFoundError`` saying so, unless a basic
``EmoLabel/`` is found beside the compound one (the authors' archive unpacks both side by side),
which is then converted and the compound copy noted.

UNVERIFIED variants accepted: the label file's spelling; the aligned image size (kept as stored);
Kaggle file names with or without ``_aligned``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ...imageio import check_image
from ...schema import image
from ..base import register_dataset, DatasetLoader, Item, Option, find_dir

if TYPE_CHECKING:
    from ..base import Report

LABEL_FILES = ("list_patition_label.txt", "list_partition_label.txt")
SPLITS = ("train", "test")
ALIGNED = "_aligned"
_PRUNE = frozenset({"Image", "original", "aligned"})
#: Labels of RAF-DB's compound release beyond the basic 1..7.
COMPOUND_LABELS = frozenset({"8", "9", "10", "11"})
_TRAIN_DIGITS = re.compile(r"train_(\d+)")


@register_dataset
class RafDB(DatasetLoader):
    name = "rafdb"
    title = "RAF-DB (Real-world Affective Faces, basic emotions)"
    version = "basic"
    homepage = "http://www.whdeng.cn/RAF/model1.html"
    license = "Non-commercial research licence agreement (request by e-mail); no redistribution"
    citation = (
        "S. Li, W. Deng, J. Du. Reliable Crowdsourcing and Deep Locality-Preserving Learning for "
        "Expression Recognition in the Wild. CVPR 2017."
    )
    layouts = {
        "basic": """
basic/
├── EmoLabel/list_patition_label.txt      (sic; "<name>.jpg <label 1..7>" per line)
├── Image/original/train_00001.jpg test_0001.jpg ...
└── Image/aligned/train_00001_aligned.jpg test_0001_aligned.jpg ...
""",
        "kaggle": """
DATASET/
├── train/{1..7}/train_00001_aligned.jpg ...
└── test/{1..7}/test_0001_aligned.jpg ...
""",
    }
    label_map = {"1": 3, "2": 4, "3": 5, "4": 1, "5": 2, "6": 6, "7": 0}
    options = {"image": Option("aligned", "faces to convert: aligned crops or original images", ("aligned", "original"))}

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        self._label_file: Path | None = None
        self._images: Path | None = None
        self._base: Path = self.root
        self._compound_skipped: list[str] = []
        self._bad_links: set[str] = set()

    def detect(self) -> str:
        variant = self.opts["image"]
        emolabel = self._basic_emolabel()
        if emolabel is not None:
            self._label_file = next((emolabel / n for n in LABEL_FILES if (emolabel / n).is_file()), None)
            if self._label_file is None:
                raise self.not_found(f"{self.rel(emolabel)}/ holds neither {' nor '.join(LABEL_FILES)}")
            self._base = Path(os.path.abspath(emolabel)).parent
            self._images = emolabel.parent / "Image" / variant
            if not self._images.is_dir():
                other = "original" if variant == "aligned" else "aligned"
                hint = f"; Image/{other}/ is there: pass -o image={other}" if (self._images.parent / other).is_dir() else ""
                raise self.not_found(f"{self.rel(self._images)}/ is missing (option image={variant}){hint}")
            return "basic"
        packed = find_dir(self.root, "DATASET", prune=_PRUNE)
        if packed is not None and any((packed / s).is_dir() for s in SPLITS):
            extra = sorted({p.name for s in SPLITS for p in _dirs(packed / s) if p.name in COMPOUND_LABELS}, key=int)
            if extra:
                raise self.not_found(
                    f"{self.rel(packed) or '.'}/ has class folders {', '.join(extra)}: this looks like RAF-DB's compound "
                    "release (labels 1..11), which the basic converter does not read (it would mislabel every image)"
                )
            if variant != "aligned":
                raise self.not_found("the Kaggle repack DATASET/ holds aligned faces only (option image=original)")
            self._base = Path(os.path.abspath(packed)).parent
            self._images = packed
            return "kaggle"
        raise self.not_found("no EmoLabel/ label file (basic release) and no DATASET/{train,test}/ (Kaggle repack)")

    def _basic_emolabel(self) -> Path | None:
        """The shallowest ``EmoLabel/`` whose label file is not the compound release's.

        The compound copy is skipped when a basic one is found too (both unpack side by side);
        when only compound label files are there, detection stops with a clear refusal."""
        found = _all_dirs(self.root, "EmoLabel", prune=_PRUNE)
        compound: list[tuple[Path, str]] = []
        for emolabel in found:
            label_file = next((emolabel / n for n in LABEL_FILES if (emolabel / n).is_file()), None)
            why = _compound_evidence(label_file) if label_file is not None else None
            if why is None:
                self._compound_skipped = [self.rel(p.parent.parent) for p, _ in compound]
                return emolabel
            compound.append((label_file, why))
        if compound:
            label_file, why = compound[0]
            raise self.not_found(
                f"{self.rel(label_file)} is RAF-DB's compound-emotion release ({why}), not the basic one: the basic "
                "converter does not read it (its labels 1..11 are compound emotions, not basic labels 1..7); "
                "point the raw directory at the basic/ release"
            )
        return None

    def _stored(self, rel: str) -> str:
        """A raw-root-relative path made relative to the layout root (what ``rgb.path`` stores)."""
        return Path(os.path.relpath(os.path.join(self.root, rel), self._base)).as_posix()

    def scan(self, report: "Report") -> Iterator[Item]:
        assert self._images is not None
        if self._label_file is not None:
            yield from self._scan_basic(report)
        else:
            yield from self._scan_kaggle(report)

    def _scan_basic(self, report: "Report") -> Iterator[Item]:
        assert self._label_file is not None and self._images is not None
        for rel in self._compound_skipped:
            report.note(f"{rel}/ is RAF-DB's compound release: skipped (the basic converter reads {self.rel(self._label_file)})")
        label_rel, images_rel = self.rel(self._label_file), self.rel(self._images)
        on_disk = set(self._file_names(self._images, report))
        suffix = ALIGNED if self.opts["image"] == "aligned" else ""
        first: dict[str, int] = {}
        for lineno, line in enumerate(self._label_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            stem, ext = os.path.splitext(fields[0])
            split = stem.partition("_")[0]
            if len(fields) != 2 or split not in SPLITS or not ext:
                report.fault("malformed-row", f"expected '<train_|test_name>.jpg <label>', got {line.strip()!r}", label_rel, lineno)
            elif fields[1] not in self.label_map:
                report.fault("unknown-label", f"label {fields[1]!r} not in 1..7", label_rel, lineno)
            elif stem in first:
                report.fault("duplicate-row", f"{fields[0]} already listed on line {first[stem]}", label_rel, lineno)
            else:
                first[stem] = lineno
                name = f"{stem}{suffix}{ext}"
                if name in self._bad_links:
                    continue  # reported as a bad link
                if name not in on_disk:
                    report.fault("missing-image", f"listed on {label_rel} line {lineno} but not on disk", f"{images_rel}/{name}")
                    continue
                on_disk.discard(name)
                yield Item(f"{self.name}/{stem}", f"{images_rel}/{name}", (split, fields[1], "annotation"))
        for name in sorted(on_disk):
            report.fault("unlisted-image", f"not listed in {label_rel}", f"{images_rel}/{name}")

    def _scan_kaggle(self, report: "Report") -> Iterator[Item]:
        assert self._images is not None
        seen: dict[str, str] = {}
        for split in SPLITS:
            for folder in sorted(p for p in (self._images / split).glob("*") if p.is_dir()):
                for name in self._file_names(folder, report):
                    rel = self.rel(folder / name)
                    stem = os.path.splitext(name)[0].removesuffix(ALIGNED)
                    if folder.name not in self.label_map:
                        report.fault("unknown-label", f"label folder {folder.name!r} not in 1..7", rel)
                    elif stem in seen:
                        report.fault("duplicate-image", f"same name as {seen[stem]}", rel)
                    else:
                        seen[stem] = rel
                        yield Item(f"{self.name}/{stem}", rel, (split, folder.name, "folder"))

    def _file_names(self, folder: Path, report: "Report") -> list[str]:
        """Names of the non-hidden files in a folder, sorted; bad links are ``bad-link`` faults
        (their names go to ``self._bad_links``, so that no other fault repeats them)."""
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        names = []
        for e in entries:
            before = sum(report.kinds.values())
            if self.usable_file(e, report):
                names.append(e.name)
            elif sum(report.kinds.values()) > before:
                self._bad_links.add(e.name)
        return names

    def load(self, item: Item) -> dict[str, Any]:
        split, label_raw, label_source = item.payload
        data = self.read_scanned(item.source)
        check_image(data, item.source)
        return {
            "sample_id": item.sample_id,
            "source_split": split,
            "subject_id": None,
            "label_raw": label_raw,
            "label_source": label_source,
            "rgb": image(data, self._stored(item.source)),
        }


def _dirs(folder: Path) -> list[Path]:
    """Non-hidden sub-folders of a folder (none if it is not one)."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]


def _all_dirs(root: Path, name: str, max_depth: int = 3, prune: frozenset[str] = frozenset()) -> list[Path]:
    """Every folder called ``name`` strictly below ``root`` (at most ``max_depth`` levels down),
    shallowest first, in sorted order; like ``find_dir`` but all of them, not the first."""
    found: list[Path] = []
    level = [root]
    for depth in range(max_depth + 1):
        if depth:
            found += [d for d in level if d.name == name]
        level = sorted(
            d for parent in level if parent.name != name or parent == root for d in _dirs(parent) if d.name not in prune
        )
    return found


def _compound_evidence(label_file: Path) -> str | None:
    """Why ``label_file`` is the compound release's label file, or None when it reads as the basic one.

    Evidence: train names that all have 4 digits (basic: 5), or labels above 7 used as data (two
    or more distinct labels among 8..11, or labels above 7 on more than a quarter of the rows).
    A single stray label 8 stays an ``unknown-label`` fault of the basic set."""
    rows = high = 0
    high_labels: set[str] = set()
    train_digits: set[int] = set()
    with open(label_file, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) != 2:
                continue
            rows += 1
            m = _TRAIN_DIGITS.match(os.path.splitext(fields[0])[0])
            if m is not None:
                train_digits.add(len(m[1]))
            if fields[1].isdigit() and int(fields[1]) > 7:
                high += 1
                high_labels.add(fields[1])
    if train_digits == {4}:
        return "its train_ names have 4 digits, like train_0001; the basic release's have 5"
    if len(high_labels & COMPOUND_LABELS) >= 2 or (rows and 4 * high > rows):
        shown = ", ".join(sorted(high_labels, key=int)[:6])
        return f"{high} of its {rows} rows have labels above 7 ({shown}); the basic release uses 1..7"
    return None
