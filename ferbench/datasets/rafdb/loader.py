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

UNVERIFIED variants accepted: the label file's spelling; the aligned image size (kept as stored);
Kaggle file names with or without ``_aligned``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ...errors import SampleError
from ...imageio import check_image
from ...schema import image
from ..base import register_dataset, DatasetLoader, Item, Option, find_dir

if TYPE_CHECKING:
    from ..base import Report

LABEL_FILES = ("list_patition_label.txt", "list_partition_label.txt")
SPLITS = ("train", "test")
ALIGNED = "_aligned"
_PRUNE = frozenset({"Image", "original", "aligned"})


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

    def detect(self) -> str:
        variant = self.opts["image"]
        emolabel = find_dir(self.root, "EmoLabel", prune=_PRUNE, include_root=False)
        if emolabel is not None:
            self._label_file = next((emolabel / n for n in LABEL_FILES if (emolabel / n).is_file()), None)
            if self._label_file is None:
                raise self.not_found(f"{self.rel(emolabel)}/ holds neither {' nor '.join(LABEL_FILES)}")
            self._images = emolabel.parent / "Image" / variant
            if not self._images.is_dir():
                other = "original" if variant == "aligned" else "aligned"
                hint = f"; Image/{other}/ is there: pass -o image={other}" if (self._images.parent / other).is_dir() else ""
                raise self.not_found(f"{self.rel(self._images)}/ is missing (option image={variant}){hint}")
            return "basic"
        packed = find_dir(self.root, "DATASET", prune=_PRUNE)
        if packed is not None and any((packed / s).is_dir() for s in SPLITS):
            if variant != "aligned":
                raise self.not_found("the Kaggle repack DATASET/ holds aligned faces only (option image=original)")
            self._images = packed
            return "kaggle"
        raise self.not_found("no EmoLabel/ label file (basic release) and no DATASET/{train,test}/ (Kaggle repack)")

    def scan(self, report: "Report") -> Iterator[Item]:
        assert self._images is not None
        if self._label_file is not None:
            yield from self._scan_basic(report)
        else:
            yield from self._scan_kaggle(report)

    def _scan_basic(self, report: "Report") -> Iterator[Item]:
        assert self._label_file is not None and self._images is not None
        label_rel, images_rel = self.rel(self._label_file), self.rel(self._images)
        on_disk = set(_files(self._images))
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
                for name in _files(folder):
                    rel = self.rel(folder / name)
                    stem = os.path.splitext(name)[0].removesuffix(ALIGNED)
                    if folder.name not in self.label_map:
                        report.fault("unknown-label", f"label folder {folder.name!r} not in 1..7", rel)
                    elif stem in seen:
                        report.fault("duplicate-image", f"same name as {seen[stem]}", rel)
                    else:
                        seen[stem] = rel
                        yield Item(f"{self.name}/{stem}", rel, (split, folder.name, "folder"))

    def load(self, item: Item) -> dict[str, Any]:
        split, label_raw, label_source = item.payload
        try:
            data = (self.root / item.source).read_bytes()
        except FileNotFoundError:
            raise SampleError("missing-image", "image vanished after the scan", file=item.source) from None
        check_image(data, item.source)
        return {
            "sample_id": item.sample_id,
            "source_split": split,
            "subject_id": None,
            "label_raw": label_raw,
            "label_source": label_source,
            "rgb": image(data, item.source),
        }


def _files(folder: Path) -> list[str]:
    """Names of the non-hidden files in a folder, sorted."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_file() and not e.name.startswith("."))
