"""FER+ (Barsoum et al., 2016): the FER2013 faces relabelled by 10 crowd taggers each, 8 emotions.

Layout: a FER2013 CSV (``fer2013.csv`` or ``icml_face_data.csv``, found as the ``fer2013``
converter finds them) plus ``fer2013new.csv`` (in ``.``, ``FERPlus/``, ``ferplus/`` or
``fer2013/``), header ``Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,
contempt,unknown,NF`` or the original 11-column one without ``Image name``. The two files are
joined by position (i-th data row ↔ i-th data row, as ``generate_training_data.py`` does); the
image names are opaque and not unique, so they are only kept (``image_name``, null when empty).
Differing data-row counts are a fatal error; a row whose ``Usage`` differs is a ``usage-mismatch``
fault. Faulty rows of either file are reported and skipped.

Rows: ``sample_id`` ``ferplus/<data-row index, 5 digits>``, ``source_split`` = ``Usage``
(Training / PublicTest = FER+ "Valid" / PrivateTest = FER+ "Test"), 48×48 grayscale PNG, no
subject ids. Extra columns: ``votes`` (the 10 counts in file order: neutral, happiness, surprise,
sadness, anger, disgust, fear, contempt, unknown, NF), ``image_name``, ``fer2013_label`` (the
FER2013 emotion id 0..6) and ``csv_row``.

Labels: option ``label_rule`` picks how votes become one label (``label_source`` is
``ferplus-<rule>``). All rules but ``plurality`` first zero every count ≤ 1 (outlier removal,
as the official ``src/ferplus.py``); thresholds are exact fractions of the remaining vote mass.

* ``majority`` (default, the official rule): the top count if it is more than half of the mass
  (first index on ties), else unknown.
* ``plurality``: the top raw count (first index on ties), no outlier removal or threshold.
* ``probability`` / ``crossentropy``: take the largest counts (all tied at the current maximum
  together) until ≥ 75 % of the mass is covered, at most 3 emotions, stopping at unknown/NF (left
  out if emotions were taken before it); unknown if ≤ 50 % is covered or > 3 emotions were
  needed; the label is the top of what was taken.
* ``multi_target``: keep every class with ≥ 30 % of the mass; unknown if the kept classes cover
  ≤ 50 %; the label is the top kept class.

A row whose label comes out unknown or NF keeps ``label`` null (``label_raw`` "unknown" / "NF").
FER+ index → canonical: neutral 0, happiness 1, surprise 3, sadness 2, anger 6, disgust 5, fear 4,
contempt 7. On the real fer2013new.csv, ``majority`` labels 25,060 / 3,199 / 3,153 rows
(Training / PublicTest / PrivateTest); the 173 empty-name rows are all-NF and stay unlabelled.

UNVERIFIED variants accepted: the FER2013 CSV quoting / line endings (as for ``fer2013``), vote
sums other than 10 (the real file has one 9-vote row), blank trailing lines, blank lines before
either file's header (skipped with a note; only a file of blank lines is "empty").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import ConversionError
from ..fer2013 import loader as fer2013
from ..base import register_dataset, DatasetLoader, Item, Option
from ..fer2013.loader import LABELLED_CSVS, find_file, pixel_image, read_csv, read_fer2013_csv, stripped

if TYPE_CHECKING:
    from ..base import Report

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
UNKNOWN = VOTE_COLUMNS.index("unknown")
#: FER+ class index → canonical index (unknown and NF have none).
TO_CANONICAL = (0, 1, 3, 2, 6, 5, 4, 7)
NEW_CSV = "fer2013new.csv"
NEW_DIRS = ("", "FERPlus", "ferplus", "fer2013")
IMAGE_NAME = "Image name"


# -- label rules: 10 vote counts → FER+ class index (8 unknown, 9 NF) ------------------------------
def _drop_single_votes(votes: Sequence[int]) -> list[int]:
    return [v if v > 1 else 0 for v in votes]


def _first_max(values: list[int]) -> int:
    return values.index(max(values))


def majority(votes: Sequence[int]) -> int:
    kept = _drop_single_votes(votes)
    top = max(kept)
    return kept.index(top) if 2 * top > sum(kept) else UNKNOWN


def plurality(votes: Sequence[int]) -> int:
    return _first_max(list(votes))


def probability(votes: Sequence[int]) -> int:
    left = _drop_single_votes(votes)
    total = sum(left)
    taken = [0] * len(left)
    covered = count = 0
    reached_unknown = False
    while 4 * covered < 3 * total and count < 3 and not reached_unknown:
        top = max(left)
        for i in (i for i, v in enumerate(left) if v == top):
            taken[i], left[i] = top, 0
            covered += top
            count += 1
            if i >= UNKNOWN:
                reached_unknown = True
                if sum(taken) > top:  # emotions came first: unknown/NF is left out
                    taken[i] = 0
                    count -= 1
                break
    if 2 * sum(taken) <= total or count > 3:
        return UNKNOWN
    return _first_max(taken)


def multi_target(votes: Sequence[int]) -> int:
    kept = _drop_single_votes(votes)
    total = sum(kept)
    chosen = [v if 10 * v >= 3 * total else 0 for v in kept]
    return _first_max(chosen) if 2 * sum(chosen) > total else UNKNOWN


RULES: dict[str, Callable[[Sequence[int]], int]] = {
    "majority": majority,
    "plurality": plurality,
    "probability": probability,
    "crossentropy": probability,
    "multi_target": multi_target,
}


# -- fer2013new.csv ---------------------------------------------------------------------------------
@dataclass
class VoteRows:
    """The clean rows of fer2013new.csv (faulty rows already reported and dropped)."""

    file: str
    total: int
    rows: np.ndarray
    usage: list[str]
    image_name: list[str | None]
    votes: np.ndarray
    has_names: bool


def _vote_faults(table: pa.Table) -> tuple[np.ndarray, dict[int, str]]:
    """Rows whose 10 vote fields are all counts (``ok`` mask) and a reason for each other row."""
    ok = np.ones(table.num_rows, dtype=bool)
    reasons: dict[int, str] = {}
    for name in VOTE_COLUMNS:
        column = table.column(name)
        good = pc.match_substring_regex(column, r"^\s*\d{1,4}\s*$").to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(ok & ~good):
            reasons[int(i)] = f"{name} vote is {column[int(i)].as_py()!r}, not a count"
        ok &= good
    return ok, reasons


def read_votes(path: Path, root: Path, report: "Report") -> VoteRows:
    """Read fer2013new.csv (either header); malformed rows are reported in row order and dropped."""
    file = path.relative_to(root).as_posix()
    data, faults = read_csv(path, file, ("Usage", *VOTE_COLUMNS))
    data.note_blank_lines(report)
    ok, reasons = _vote_faults(data.table)
    faults += [(int(data.rows[i]), "malformed-row", reason) for i, reason in reasons.items()]
    for row, kind, reason in sorted(faults):
        report.fault(kind, reason, file, row)
    keep = np.flatnonzero(ok)
    table = data.table.take(keep)
    has_names = IMAGE_NAME in table.column_names
    names = stripped(table, IMAGE_NAME) if has_names else [""] * len(keep)
    votes = np.stack([pc.cast(pc.utf8_trim_whitespace(table.column(n)), pa.int16()).to_numpy() for n in VOTE_COLUMNS], axis=1)
    return VoteRows(file, data.total, data.rows[keep], stripped(table, "Usage"), [n or None for n in names], votes, has_names)


# -- the loader ---------------------------------------------------------------------------------------
@register_dataset
class FERPlus(DatasetLoader):
    name = "ferplus"
    title = "FER+ (FER2013 relabelled by 10 crowd taggers)"
    version = "2017-03 (fer2013new.csv @8ad5426)"
    homepage = "https://github.com/microsoft/FERPlus"
    license = (
        "Votes: MIT (Microsoft FERPlus). Images: FER2013 from Kaggle under the competition rules; "
        "no redistribution"
    )
    citation = (
        "E. Barsoum, C. Zhang, C. Canton Ferrer, Z. Zhang. Training Deep Networks for Facial Expression "
        "Recognition with Crowd-Sourced Label Distribution. ICMI 2016 (arXiv:1608.01041)."
    )
    layouts = {
        f"{fer}+{NEW_CSV}": f"""
{fer}  (or fer2013/{fer}; see the fer2013 converter)
{NEW_CSV}  (in ., FERPlus/, ferplus/ or fer2013/)
    Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF
    Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0
"""
        for fer in LABELLED_CSVS
    }
    label_map = {name: (TO_CANONICAL[i] if i < UNKNOWN else None) for i, name in enumerate(VOTE_COLUMNS)}
    extra_fields = (
        pa.field("votes", pa.list_(pa.int16())),
        pa.field("image_name", pa.string()),
        pa.field("fer2013_label", pa.int8()),
        pa.field("csv_row", pa.int32()),
    )
    options = {"label_rule": Option("majority", "how the 10 votes become one label (see the module docs)", tuple(RULES))}

    def detect(self) -> str:
        fer, _ = self._locate()
        return f"{fer.name}+{NEW_CSV}"

    def _locate(self) -> tuple[Path, Path]:
        fer = find_file(self.root, LABELLED_CSVS)
        new = find_file(self.root, [NEW_CSV], NEW_DIRS)
        if fer is None or new is None:
            missing = [what for what, path in (("fer2013.csv or icml_face_data.csv", fer), (NEW_CSV, new)) if path is None]
            raise self.not_found(f"no {' and no '.join(missing)}")
        return fer, new

    def scan(self, report: "Report") -> Iterator[Item]:
        fer_path, new_path = self._locate()
        fer = read_fer2013_csv(fer_path, self.root, report)
        new = read_votes(new_path, self.root, report)
        if fer.total != new.total:
            raise ConversionError(
                f"{new.file} has {new.total} data rows but {fer.file} has {fer.total}; FER+ pairs the two "
                "files row by row, so they must have the same number of rows (same FER2013 release?)"
            )
        if not new.has_names:
            report.note(f"{new.file} has the original 11-column header (no 'Image name'): image_name is null")
        rule_name = self.opts["label_rule"]
        rule = RULES[rule_name]
        rows, fer_at, new_at = np.intersect1d(fer.rows, new.rows, assume_unique=True, return_indices=True)
        assert fer.usage is not None and fer.emotion is not None
        for row, a, b in zip(rows.tolist(), fer_at.tolist(), new_at.tolist()):
            if fer.usage[a] != new.usage[b]:
                report.fault("usage-mismatch", f"Usage {new.usage[b]!r} here but {fer.usage[a]!r} in {fer.file}", new.file, row)
                continue
            votes = new.votes[b].tolist()
            index = rule(votes)
            fields = {
                "sample_id": f"{self.name}/{row:05d}",
                "source_split": new.usage[b],
                "label": TO_CANONICAL[index] if index < UNKNOWN else None,
                "label_raw": VOTE_COLUMNS[index],
                "label_source": f"ferplus-{rule_name}",
                "votes": votes,
                "image_name": new.image_name[b],
                "fer2013_label": int(fer.emotion[a]),
                "csv_row": row,
            }
            yield Item(fields["sample_id"], new.file, (fields, fer.pixels[a].tobytes()), row)

    def load(self, item: Item) -> dict[str, Any]:
        return pixel_image(item)

    def fingerprint_sources(self) -> tuple[Any, ...]:
        return (sys.modules[__name__], fer2013, fer2013.csv_io)
