"""Leakage verification of a manifest: subjects, exact duplicates, near-duplicates.

* **subject_overlap**: (repeat, fold, subject) triples where the subject has rows in ``test``
  and in ``train`` or ``val`` of the same fold. Any → leaky.
* **exact_duplicates**: test samples (distinct, over all folds) whose decoded pixels equal those
  of a train/val sample of the same fold (``hashes.pixel_hash``: re-encodings of the same
  pixels count). Any → leaky.
* **near_duplicates**: sample pairs whose perceptual hashes differ in at most ``near_threshold``
  of 64 bits and that sit in different roles of some fold, or come from different source
  datasets (merged sets). A **warning**, never a leak: they never change the verdict (FER2013
  is known to hold near-identical faces, and only a person can judge them). A pair that is an
  exact duplicate across test and train/val of a fold is a leak, counted under
  ``exact_duplicates`` only, never again as a near-duplicate warning. The breakdown
  ``near_duplicate_kinds`` is disjoint and sums to ``near_duplicates``: ``test_vs_train_val``
  (test against train/val of some fold), ``train_vs_val`` (train against val only),
  ``cross_source`` (two source datasets, never in different roles of one fold);
  ``pixel_identical`` counts the warnings whose pixels are equal (a subset, not a fourth kind).

The verdict is "clean" exactly when there is no leak (no subject overlap, no exact duplicate);
``severity`` in the report says which count is a leak and which a warning, and each entry of
``details`` is one by its ``kind`` ("subject", "exact": leaks; "near": warning). ``details`` lists
at most ``max_details`` leaks and, separately, at most ``max_details`` near-duplicate pairs
(test-vs-train/val pairs first), so warnings never crowd out leaks nor the reverse.

**Confirmation on small images.** A 64-bit perceptual hash of a tiny crop (FER2013's and CK+48's
48×48 faces: aligned, gray, same pose) puts different people within a few bits, so every hash
candidate that is not pixel-identical is confirmed by a second measure: the Pearson correlation of
the two images, gray and box-resized to 32×32, must reach ``NEAR_CORRELATION`` (0.9). Re-encodings,
brightness/contrast changes and light noise keep it above 0.95; two aligned faces of different
people stay well below. ``near_rejected`` counts the hash candidates the check turned down.

The near-duplicate search is a multi-index hash (pigeonhole): with t allowed differing bits, the
64 bits are cut into t + 1 chunks and two hashes within distance t agree exactly on at least
one chunk; candidates are generated per equal-chunk bucket with numpy (sort, bucket bounds,
vectorised pair expansion, popcount), never by a Python loop over pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..converted import read_card
from ..errors import FerbenchError
from .base import ROLES, TEST, TRAIN, VAL
from .hashes import HASH_SCHEMA, canonical_pixels, dataset_hashes
from .manifest import Manifest

NEAR_THRESHOLD = 4
#: Pixel correlation (32×32 gray) a perceptual-hash candidate needs to count as a near-duplicate.
NEAR_CORRELATION = 0.9
_SIDE = 32
MAX_DETAILS = 20
#: What each count of the report is: a leak decides the verdict, a warning never does.
SEVERITY = {"subject_overlap": "leak", "exact_duplicates": "leak", "near_duplicates": "warning"}
#: ``details`` entry kind → severity.
DETAIL_SEVERITY = {"subject": "leak", "exact": "leak", "near": "warning"}


def verify(manifest: Manifest, near_threshold: int = NEAR_THRESHOLD, max_details: int = MAX_DETAILS,
           list_exact: bool = False, near_correlation: float = NEAR_CORRELATION) -> dict[str, Any]:
    """Leakage report of a manifest; ``verdict`` is "clean" or "leaky". With ``list_exact`` the report
    also lists every test sample pixel-identical to a train/val image (``exact_duplicate_samples``)."""
    t = manifest.table
    samples = pc.unique(t["sample_id"]).sort()
    idx = pc.index_in(t["sample_id"], value_set=samples).to_numpy(zero_copy_only=False)
    n_folds = int(pc.max(t["fold"]).as_py()) + 1
    group = t["repeat"].to_numpy().astype(np.int64) * n_folds + t["fold"].to_numpy()
    role = pc.index_in(t["role"], value_set=pa.array(ROLES)).to_numpy(zero_copy_only=False)
    _check_structure(group, idx, len(samples))
    roles = np.full((int(group.max()) + 1, len(samples)), -1, dtype=np.int8)
    roles[group, idx] = role
    details: list[dict[str, Any]] = []

    subjects = _subject_overlap(t, group, role, details, max_details)
    hashes = _hashes(manifest, samples)
    where = pc.index_in(hashes["sample_id"], value_set=samples).to_numpy(zero_copy_only=False)
    pix = np.zeros(len(samples), np.uint64)
    ph = np.zeros(len(samples), np.uint64)
    has = np.zeros(len(samples), bool)
    pix[where], ph[where], has[where] = hashes["pixel_hash"].to_numpy(), hashes["phash"].to_numpy(), True
    rows = has[idx]  # manifest rows whose image was hashed
    exact_ids: list[str] = []
    exact = _exact_leaks(group[rows], role[rows], pix[idx[rows]], idx[rows], samples, details, max_details, exact_ids)

    hashed = np.flatnonzero(has)
    a, b = near_pairs(ph[hashed], near_threshold)
    a, b = hashed[a], hashed[b]
    confirmed = confirm_near(manifest, samples, a, b, pix[a] == pix[b], near_correlation)
    rejected = int((~confirmed).sum())
    a, b = a[confirmed], b[confirmed]
    dataset = _sample_dataset(t, samples)
    kinds = _classify(roles, a, b, dataset)
    identical = pix[a] == pix[b]
    # A pixel-identical pair across test and train/val of a fold is an exact-duplicate leak,
    # already counted above: it is not listed again as a (non-fatal) near-duplicate warning.
    test_near = kinds["test_leak"] & ~identical
    train_val = kinds["cross_role"] & ~kinds["test_leak"]
    cross_source = kinds["cross_source"] & ~kinds["cross_role"]
    warned = test_near | train_val | cross_source
    for i in np.concatenate([np.flatnonzero(test_near), np.flatnonzero(warned & ~test_near)])[:max_details]:
        details.append(_near_detail(roles, samples, a[i], b[i], int(np.bitwise_count(ph[a[i]] ^ ph[b[i]])), n_folds))
    return {
        "verdict": "clean" if subjects == 0 and exact == 0 else "leaky",
        "subject_overlap": subjects,
        "exact_duplicates": exact,
        "near_duplicates": int(warned.sum()),
        "near_duplicate_kinds": {
            "test_vs_train_val": int(test_near.sum()),
            "train_vs_val": int(train_val.sum()),
            "cross_source": int(cross_source.sum()),
            "pixel_identical": int((warned & identical).sum()),
        },
        "severity": dict(SEVERITY),
        "near_threshold": near_threshold,
        "near_correlation": near_correlation,
        "near_rejected": rejected,
        "hashed_samples": int(has.sum()),
        "unhashed_samples": int((~has).sum()),
        "details": details,
        **({"exact_duplicate_samples": exact_ids} if list_exact and exact_ids else {}),
    }


def _check_structure(group: np.ndarray, idx: np.ndarray, n_samples: int) -> None:
    key = np.sort(group * n_samples + idx)
    if (key[1:] == key[:-1]).any():
        raise FerbenchError("malformed manifest: a sample appears twice in one (repeat, fold)")


def _hashes(manifest: Manifest, samples: pa.Array) -> pa.Table:
    """Hashes of the manifest's samples, from the datasets it names (fingerprints checked)."""
    tables = []
    for ds in manifest.meta["datasets"]:
        card = read_card(ds["path"])
        if card.fingerprint != ds["fingerprint"]:
            raise FerbenchError(
                f"{ds['name']} at {ds['path']} has fingerprint {card.fingerprint}, the manifest was built "
                f"from {ds['fingerprint']}: rebuild the manifest"
            )
        h = dataset_hashes(ds["path"])
        tables.append(h.filter(pc.is_in(h["sample_id"], value_set=samples)))
    return pa.concat_tables(tables) if tables else HASH_SCHEMA.empty_table()


def _keys_in_both(group: np.ndarray, role: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Boolean per row: a test row whose (group, key) also occurs among train/val rows."""
    if not len(key):
        return np.zeros(0, bool)
    _, code = np.unique(key, return_inverse=True)
    packed = group * (int(code.max()) + 1) + code
    return (role == TEST) & np.isin(packed, packed[(role == TRAIN) | (role == VAL)])


def _subject_overlap(t: pa.Table, group: np.ndarray, role: np.ndarray, details: list, max_details: int) -> int:
    valid = t["subject_id"].is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return 0
    subj = t["subject_id"].filter(pa.array(valid))
    uniq = pc.unique(subj)
    code = pc.index_in(subj, value_set=uniq).to_numpy(zero_copy_only=False)
    hit = _keys_in_both(group[valid], role[valid], code)
    triples = np.unique(np.stack([group[valid][hit], code[hit]], axis=1), axis=0)
    folds = int(pc.max(t["fold"]).as_py()) + 1
    for g, c in triples[: max(0, max_details - len(details))]:
        details.append({"kind": "subject", "subject_id": uniq[int(c)].as_py(), "repeat": int(g // folds), "fold": int(g % folds)})
    return len(triples)


def _exact_leaks(group, role, pix, idx, samples, details, max_details, listed: list | None = None) -> int:
    hit = _keys_in_both(group, role, pix.view(np.int64))
    leaked = np.unique(idx[hit])
    if listed is not None:
        listed += samples.take(pa.array(leaked, pa.int64())).to_pylist()
    for i in leaked[: max(0, max_details - len(details))]:
        details.append({"kind": "exact", "test_sample": samples[int(i)].as_py()})
    return len(leaked)


def _sample_dataset(t: pa.Table, samples: pa.Array) -> np.ndarray:
    first = pc.index_in(samples, value_set=t["sample_id"]).to_numpy(zero_copy_only=False)
    names = t["dataset"].take(pa.array(first))
    uniq = pc.unique(names)
    return pc.index_in(names, value_set=uniq).to_numpy(zero_copy_only=False)


def _classify(roles: np.ndarray, a: np.ndarray, b: np.ndarray, dataset: np.ndarray) -> dict[str, np.ndarray]:
    """Per pair: in test vs train/val of some fold; in two different roles of some fold; two sources."""
    out = {k: np.zeros(len(a), bool) for k in ("test_leak", "cross_role")}
    step = max(1, 20_000_000 // max(1, roles.shape[0]))
    for s in range(0, len(a), step):
        ra, rb = roles[:, a[s : s + step]], roles[:, b[s : s + step]]
        both = (ra >= 0) & (rb >= 0)
        out["cross_role"][s : s + step] = (both & (ra != rb)).any(0)
        out["test_leak"][s : s + step] = (both & (ra != rb) & ((ra == TEST) | (rb == TEST))).any(0)
    out["cross_source"] = dataset[a] != dataset[b]
    return out


def _near_detail(roles, samples, i, j, distance, n_folds) -> dict[str, Any]:
    """A near-duplicate pair, with the first (repeat, fold) where the two sit in different roles."""
    apart = np.flatnonzero((roles[:, i] >= 0) & (roles[:, j] >= 0) & (roles[:, i] != roles[:, j]))
    where = {}
    if len(apart):
        g = int(apart[0])
        where = {"repeat": g // n_folds, "fold": g % n_folds, "roles": [ROLES[roles[g, i]], ROLES[roles[g, j]]]}
    return {"kind": "near", "a": samples[int(i)].as_py(), "b": samples[int(j)].as_py(), "distance": distance, **where}


def near_pairs(h: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i < j) whose 64-bit hashes differ in at most ``threshold`` bits."""
    h = np.asarray(h, dtype=np.uint64)
    n = len(h)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    m = min(threshold + 1, 64)
    widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    found = []
    shift = 0
    for w in widths:
        key = (h >> np.uint64(shift)) & np.uint64((1 << w) - 1)
        shift += w
        found += _bucket_pairs(key, h, threshold)
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    packed = np.unique(np.concatenate(found))
    return packed // n, packed % n


def _bucket_pairs(key: np.ndarray, h: np.ndarray, threshold: int) -> list[np.ndarray]:
    """Pairs sharing ``key`` within ``threshold`` bits, as packed i * n + j (i < j).

    After sorting by key, a bucket is a run of equal keys; pairs at offset d inside runs are
    compared for d = 1, 2, ... over the positions whose run still has an element d further on,
    so the work is the number of candidate pairs, in contiguous numpy passes.
    """
    n = len(key)
    order = np.argsort(key, kind="stable")
    ks, hs = key[order], h[order]
    later = np.searchsorted(ks, ks, side="right") - np.arange(n) - 1
    active = np.flatnonzero(later >= 1)
    out = []
    d = 1
    while len(active):
        close = active[np.bitwise_count(hs[active] ^ hs[active + d]) <= threshold]
        if len(close):
            a, b = order[close], order[close + d]
            out.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
        d += 1
        active = active[later[active] >= d]
    return out


# -- confirming near-duplicate candidates -----------------------------------------------------------------
def confirm_near(manifest: Manifest, samples: pa.Array, a: np.ndarray, b: np.ndarray, identical: np.ndarray,
                 threshold: float = NEAR_CORRELATION) -> np.ndarray:
    """Per candidate pair: pixel-identical, or gray 32×32 pixel correlation ≥ ``threshold``."""
    ok = np.asarray(identical, bool).copy()
    todo = np.flatnonzero(~ok)
    if not len(todo) or threshold <= -1:
        return ok | (threshold <= -1)
    need = np.unique(np.concatenate([a[todo], b[todo]]))
    small = _small_images(manifest, samples.take(pa.array(need, pa.int64())))
    pos = {int(i): k for k, i in enumerate(need)}
    for i in todo:
        x, y = small.get(pos[int(a[i])]), small.get(pos[int(b[i])])
        ok[i] = x is not None and y is not None and correlation(x, y) >= threshold
    return ok


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two equally sized images (1.0 when both are flat and equal)."""
    x, y = x.ravel() - x.mean(), y.ravel() - y.mean()
    den = float(np.sqrt((x @ x) * (y @ y)))
    if den == 0:
        return 1.0 if not (x.any() or y.any()) else 0.0
    return float(x @ y) / den


def small_gray(pixels: np.ndarray) -> np.ndarray:
    """An image as 32×32 float gray (box-resized), the form ``correlation`` compares."""
    from PIL import Image

    gray = pixels.astype(np.float32) if pixels.ndim == 2 else pixels.astype(np.float32).mean(axis=2)
    return np.asarray(Image.fromarray(gray, mode="F").resize((_SIDE, _SIDE), Image.Resampling.BOX), dtype=np.float64)


def _small_images(manifest: Manifest, wanted: pa.Array) -> dict[int, np.ndarray]:
    """Index into ``wanted`` → 32×32 gray image, for the wanted samples of the manifest's datasets."""
    import pyarrow.parquet as pq

    from ..converted import open_dataset

    out: dict[int, np.ndarray] = {}
    for ds in manifest.meta["datasets"]:
        data = open_dataset(ds["path"])
        for shard in data.shard_paths:
            t = pq.read_table(shard, columns=["sample_id", "rgb", "depth"])
            t = t.filter(pc.is_in(t["sample_id"], value_set=wanted))
            if not t.num_rows:
                continue
            where = pc.index_in(t["sample_id"], value_set=wanted).to_pylist()
            for k, rgb, depth in zip(where, t["rgb"].to_pylist(), t["depth"].to_pylist()):
                blob = next((img["bytes"] for img in (rgb, depth) if img is not None and img.get("bytes")), None)
                if blob is None:
                    continue
                try:
                    out[k] = small_gray(canonical_pixels(blob))
                except Exception:  # an undecodable image was never hashed; nothing to confirm
                    continue
    return out
