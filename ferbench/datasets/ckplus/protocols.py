"""CK+ static-image protocols: 10-fold subject-independent cross-validation.

Images: of each of the 327 labelled sequences, the **first frame as neutral** and the **last
``last_frames`` (3) frames with the sequence's label** (ifp-uiuc / Khorrami et al. 2015): 327 × 4
= 1,308 images with 8 classes. Folds: the 118 subjects with a labelled sequence, sorted
ascending; the subject at index i tests in fold i mod 10 — exactly Emotion-FAN's published
10-fold list (its folds are numbered 1..10, ours 0..9). The folds are computed from all labelled
subjects, so every class variant below shares them.

Variants (CK+ has contempt but no sequence labelled neutral; the literature uses all of these):

* ``ckplus``: 8 classes, neutral + the 7 emotions incl. contempt — 1,308 images.
* ``ckplus7``: the 7 emotions without neutral (last 3 frames only, the CK+48 set) — 981 images.
* ``ckplus7n``: neutral + the 6 basic emotions (contempt sequences left out) — 1,236 images.
* ``ckplus6``: the 6 basic emotions, no neutral, no contempt — 927 images.

The CK+48 crop set has only the last 3 frames, so it serves ``ckplus7`` and ``ckplus6`` only.
A sequence shorter than ``last_frames + 1`` frames gives no neutral frame (its first frame is
one of the last frames); the count is in the manifest notes. Val: ``next-fold`` (the fold after
the test fold) by default, or ``none``.

Also ``<variant>-random-kfold`` (image-level random 10-fold, as most CK+ repositories do; leaky,
stated) and ``ferbench split <variant> --folds LIST`` (a published fold list such as Emotion-FAN's
``CK+_10-fold_sample_IDascendorder_step10.txt``: sequence ids under ``<n>-fold`` headers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import FerbenchError
from ...protocols.base import Inputs, Plan, Protocol, in_classes, np_col, plan_rows, register, require_columns
from ...protocols.kfold import fold_roles, group_codes
from ...protocols.published import random_kfold_protocol

K = 10
COLUMNS = ("sequence_id", "frame_index", "n_frames", "sequence_label")


def ckplus_plan(classes: tuple[int, ...]):
    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        src = inputs.get("ckplus")
        require_columns(src, *COLUMNS)
        t = src.table
        seq_label = np_col(t, "sequence_label", -1)
        labelled = seq_label >= 0
        frame = np_col(t, "frame_index", 0).astype(np.int64)
        n_frames = sequence_length(t)
        last = params["last_frames"]
        peak = last_frames(t, last)
        has_onset = t["n_frames"].is_valid().to_numpy(zero_copy_only=False)
        neutral = labelled & has_onset & (frame == 1) & (n_frames > last)
        label = np.where(peak, seq_label, np.where(neutral, 0, -1))
        if 0 in classes and not neutral.any():
            raise FerbenchError("this CK+ variant needs first (neutral) frames: the CK+48 crop set has none (use ckplus7 or ckplus6)")
        emotions = tuple(c for c in classes if c != 0)  # a sequence of a dropped class gives no frame at all
        keep = (peak | neutral) & in_classes(label, classes) & in_classes(seq_label, emotions)
        folds = _subject_folds(t, labelled)
        rows = plan_rows(src, keep, label)
        roles = fold_roles(folds[keep][None, :], K, params["val"])
        no_onset = labelled & (~has_onset | (n_frames <= last))
        short = pc.count_distinct(t["sequence_id"].filter(pa.array(no_onset))).as_py()
        return Plan(rows, roles, classes, {"sequences_without_neutral_frame": short})

    return plan


def sequence_length(t: pa.Table) -> np.ndarray:
    """Frames per row's sequence: ``n_frames`` where known, else the highest frame index present."""
    frame = np_col(t, "frame_index", 0).astype(np.int64)
    seq = group_codes(t["sequence_id"])
    top = np.zeros(seq.max() + 2 if len(seq) else 1, dtype=np.int64)
    np.maximum.at(top, seq, frame)
    return np.where(t["n_frames"].is_valid().to_numpy(zero_copy_only=False), np_col(t, "n_frames", 0), top[seq])


def last_frames(t: pa.Table, last: int = 3) -> np.ndarray:
    """Row mask: the last ``last`` frames of each labelled sequence (the CK+48 selection)."""
    frame = np_col(t, "frame_index", 0).astype(np.int64)
    return (np_col(t, "sequence_label", -1) >= 0) & (frame > sequence_length(t) - last)


def _subject_folds(t: pa.Table, labelled: np.ndarray) -> np.ndarray:
    """Fold per row: labelled subjects sorted ascending, index mod 10 (-1 for other subjects)."""
    subject = group_codes(t["subject_id"])
    ranked = np.unique(subject[labelled & (subject >= 0)])
    if len(ranked) < K:
        raise FerbenchError(f"CK+ 10-fold needs at least 10 labelled subjects, found {len(ranked)}")
    fold_of = np.full(subject.max() + 2, -1, dtype=np.int64)
    fold_of[ranked] = np.arange(len(ranked)) % K
    return fold_of[subject]


_DOC = "CK+ 10-fold subject-independent (subjects sorted, index mod 10)"
PARAMS = {"last_frames": 3, "val": "next-fold"}
for _name, _classes, _what in (
    ("ckplus", (0, 1, 2, 3, 4, 5, 6, 7), "first frame neutral + last 3 frames, 8 classes (1,308 images)"),
    ("ckplus7", (1, 2, 3, 4, 5, 6, 7), "last 3 frames, 7 emotions without neutral (CK+48 set, 981 images)"),
    ("ckplus7n", (0, 1, 2, 3, 4, 5, 6), "first frame neutral + last 3 frames, neutral + 6 basic, no contempt (1,236 images)"),
    ("ckplus6", (1, 2, 3, 4, 5, 6), "last 3 frames, 6 basic emotions (927 images)"),
):
    register(Protocol(_name, f"{_DOC}: {_what}", ("ckplus",), ckplus_plan(_classes), dict(PARAMS), COLUMNS))

# The image-level random k-fold most CK+ repositories use (leaky: a subject's frames on both sides),
# over the rows of each variant; ``ferbench split ckplus --folds FILE`` applies a published list.
for _name in ("ckplus", "ckplus7", "ckplus7n", "ckplus6"):
    random_kfold_protocol(_name, k=10)
