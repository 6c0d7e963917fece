"""JAFFE (Lyons, Kamachi & Gyoba, 1998): 213 posed grayscale faces of 10 Japanese women, 7 expressions incl. neutral.

Layout ``official``: the database as distributed (Zenodo record 3451524, formerly kasrl.org): one
folder (``jaffe/`` or ``jaffedbase/``) holding 256×256 8-bit grayscale TIFFs named
``<poser>.<code><repetition>.<image number>.tiff`` (``KA.AN1.39.tiff``), next to a README and
a semantic-ratings text file, which are ignored (as is every file that is not a TIFF). The
images are found anywhere from the given root down to three folders below it, so pointing at
the image folder itself, at its parent, or at a copy whose images sit one folder further down
(``jaffedbase/jaffe/``) all work; hidden files (``._*``, ``.DS_Store``) and ``__MACOSX/`` are
skipped.

Rows: ``sample_id`` is ``jaffe/<poser>.<code><repetition>.<number>`` built from the parsed file
name alone (``jaffe/KA.AN1.39``), so it does not depend on the folder the converter is pointed at;
``subject_id`` is ``jaffe:<poser>`` (``jaffe:KA``); ``label_raw`` the two-letter expression code;
``label_source`` "annotation" (the posed expression named in the file name); ``source_split`` null
(JAFFE has no official split). Extra columns: ``image_number`` (int32, the database's running
number) and ``repetition`` (int8, the index after the code). Each TIFF is decoded in full and
re-encoded losslessly as an 8-bit grayscale PNG, so every reader (HF ``datasets``, timm, browsers)
decodes it; the ``rgb.path`` is ``<sample_id>.png``.

Labels: NE→0 neutral, HA→1 happiness, SA→2 sadness, SU→3 surprise, FE→4 fear, DI→5 disgust,
AN→6 anger. No contempt. The posers are KA, KL, KM, KR, MK, NA, NM, TM, UY and YM; any two-letter
initials are accepted.

Faults (reported with the file, then skipped): ``bad-name`` (a TIFF whose name is not
``XX.YYn.nnn.tif[f]``, e.g. no image number; at most 2 repetition and 9 number digits), ``unknown-label`` (a well-formed name whose code is
not one of the seven), ``duplicate-sample`` (a second file for one (poser, code, repetition): the
file with the lowest image number, then path, is kept), ``bad-image`` (a truncated or undecodable
TIFF, or a pixel format that is not 8-bit grayscale, palette or RGB).

UNVERIFIED variants accepted: the extension spelling (``.tiff``/``.tif`` in any case); images in
subfolders (up to three levels below the root); lower-case initials and codes (read as upper case);
leading zeros in the image number; RGB or palette TIFFs (converted to gray: exact when the three
channels are equal, ITU-R 601 luma otherwise); any image size (kept as stored). The exact name of
the ratings/README files is not relied on. That (poser, code, repetition) is unique in the real
copy is assumed, not verified; a copy that breaks it loses the later files as faults.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
from PIL import Image

from ...errors import SampleError
from ...imageio import encode_png
from ...schema import image, namespaced
from ..base import DatasetLoader, Item, Report, register_dataset


#: JAFFE expression code → canonical index.
LABELS = {"NE": 0, "HA": 1, "SA": 2, "SU": 3, "FE": 4, "DI": 5, "AN": 6}
POSERS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")
TIFF_SUFFIXES = (".tif", ".tiff")
#: ``KA.AN1.39.tiff``: initials, code, repetition, image number, extension (any case).
NAME = re.compile(r"^(?P<poser>[A-Za-z]{2})\.(?P<code>[A-Za-z]{2})(?P<rep>\d{1,2})\.(?P<number>\d{1,9})\.tiff?$", re.IGNORECASE)
MAX_DEPTH = 3
_SKIP_DIRS = frozenset({"__MACOSX"})


def parse_name(name: str) -> dict[str, Any] | None:
    """``{"poser", "code", "repetition", "number"}`` of a JAFFE file name (upper-cased), or None."""
    m = NAME.match(name)
    if m is None:
        return None
    return {
        "poser": m["poser"].upper(),
        "code": m["code"].upper(),
        "repetition": int(m["rep"]),
        "number": int(m["number"]),
    }


def stem(parsed: dict[str, Any]) -> str:
    """The canonical name ``KA.AN1.39`` of a parsed file name."""
    return f"{parsed['poser']}.{parsed['code']}{parsed['repetition']}.{parsed['number']}"


def is_tiff(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in TIFF_SUFFIXES


@register_dataset
class JAFFE(DatasetLoader):
    name = "jaffe"
    title = "JAFFE (Japanese Female Facial Expression)"
    version = "1998"
    homepage = "https://zenodo.org/record/3451524"
    license = "Free for non-commercial research (request via Zenodo; formerly http://www.kasrl.org/jaffe.html); no redistribution"
    citation = (
        "M. J. Lyons, S. Akamatsu, M. Kamachi, J. Gyoba. Coding Facial Expressions with Gabor Wavelets. "
        "Proc. 3rd IEEE International Conference on Automatic Face and Gesture Recognition (FG), 1998, pp. 200-205."
    )
    layouts = {
        "official": """
jaffe/  (or jaffedbase/; images also found up to three folders down)
├── KA.AN1.39.tiff  KA.AN2.40.tiff ... YM.SU3.63.tiff   (213 × 256×256 8-bit gray; .tif accepted)
├── README
└── (semantic ratings text file; ignored)
""",
    }
    label_map = dict(LABELS)
    extra_fields = (pa.field("image_number", pa.int32()), pa.field("repetition", pa.int8()))

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        self._tiffs: list[str] | None = None

    def _find_tiffs(self, report: "Report | None" = None) -> list[str]:
        """Relative paths of every TIFF from the root down to ``MAX_DEPTH`` folders, sorted (bad
        links left out, and reported when a ``report`` is given)."""
        if self._tiffs is None or report is not None:
            probe = report if report is not None else Report()
            found: list[str] = []
            level = [self.root]
            for _ in range(MAX_DEPTH + 1):
                below = []
                for folder in level:
                    for entry in _scandir(folder):
                        if entry.name.startswith("."):
                            continue
                        if _is_dir(entry):
                            if entry.name not in _SKIP_DIRS:
                                below.append(Path(entry.path))
                        elif is_tiff(entry.name) and self.usable_file(entry, probe):
                            found.append(self.rel(Path(entry.path)))
                level = below
            self._tiffs = sorted(found)
        return self._tiffs

    def detect(self) -> str:
        tiffs = self._find_tiffs()
        if any(parse_name(rel.rpartition("/")[2]) is not None for rel in tiffs):
            return "official"
        seen = f"{len(tiffs)} TIFF file(s), none named like KA.AN1.39.tiff" if tiffs else "no .tiff/.tif images"
        raise self.not_found(f"{seen} in the root or up to {MAX_DEPTH} folders below it")

    def scan(self, report: "Report") -> Iterator[Item]:
        kept: dict[tuple[str, str, int], tuple[int, str]] = {}
        for rel in self._find_tiffs(report):
            name = rel.rpartition("/")[2]
            parsed = parse_name(name)
            if parsed is None:
                report.fault("bad-name", f"{name!r} is not <poser>.<code><n>.<image number>.tiff (e.g. KA.AN1.39.tiff)", rel)
                continue
            if parsed["code"] not in LABELS:
                report.fault("unknown-label", f"expression code {parsed['code']!r} is not one of {sorted(LABELS)}", rel)
                continue
            key = (parsed["poser"], parsed["code"], parsed["repetition"])
            rank = (parsed["number"], rel)
            if key not in kept or rank < kept[key]:
                kept[key] = rank  # the lowest image number (then path) of a repeated key wins
        for rel in self._find_tiffs():
            parsed = parse_name(rel.rpartition("/")[2])
            if parsed is None or parsed["code"] not in LABELS:
                continue
            key = (parsed["poser"], parsed["code"], parsed["repetition"])
            winner = kept[key][1]
            if rel != winner:
                report.fault(
                    "duplicate-sample",
                    f"{parsed['poser']} {parsed['code']} repetition {parsed['repetition']} is already {winner}",
                    rel,
                )
                continue
            yield Item(f"{self.name}/{stem(parsed)}", rel, parsed)

    def load(self, item: Item) -> dict[str, Any]:
        p = item.payload
        data = self.read_scanned(item.source)
        pixels = gray_pixels(data, item.source)
        return {
            "sample_id": item.sample_id,
            "source_split": None,
            "subject_id": namespaced(self.name, p["poser"]),
            "label_raw": p["code"],
            "label_source": "annotation",
            "rgb": image(encode_png(pixels), f"{item.sample_id}.png"),
            "image_number": p["number"],
            "repetition": p["repetition"],
        }


def gray_pixels(data: bytes, file: str | None = None) -> np.ndarray:
    """Fully decoded (H, W) uint8 pixels of an image file; ``SampleError`` ``bad-image`` if broken."""
    if not data:
        raise SampleError("bad-image", "empty file", file=file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns about the corrupt tags of truncated TIFFs
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                mode = im.mode
                if mode == "L":
                    return np.array(im, dtype=np.uint8)
                if mode in ("1", "P", "PA", "LA", "RGB", "RGBA", "CMYK", "YCbCr"):
                    rgb = np.asarray(im.convert("RGB"))
                    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                        return np.ascontiguousarray(rgb[..., 0])
                    return np.asarray(im.convert("RGB").convert("L"), dtype=np.uint8)
    except SampleError:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        detail = "unrecognised or truncated header" if "cannot identify" in str(exc) else str(exc)
        raise SampleError("bad-image", f"undecodable image ({type(exc).__name__}: {detail})", file=file) from None
    raise SampleError("bad-image", f"pixel mode {mode!r} is not 8-bit grayscale, palette or RGB", file=file)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop: not a folder (a file name would make it a bad link)
        return False


def _scandir(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []
