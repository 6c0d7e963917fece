"""Benchmark inputs: face-like pictures written by the datasets' own raw-layout writers, and the
read-and-hash floor every conversion is compared with.

The pictures are cheap procedural faces (a gradient background, a skin ellipse, dark eyes and
mouth, plus noise), so thousands are made in seconds and encode to realistic sizes (≈10–25 kB as
JPEG quality 90 at 224²). The synthetic world (``ferbench synth``) renders far better faces, but
too slowly for tens of thousands of benchmark images. Trees:

* ``write_affectnet_small`` — AffectNet's small release (``datasets/affectnet/layout.py``): a
  JPEG plus four npy annotation files per image;
* ``write_rafdb_kaggle`` — RAF-DB's Kaggle repack (``datasets/rafdb/layout.py``): the class-folder
  tree (``DATASET/{train,test}/<1..7>/*.jpg``) that ``torchvision.datasets.ImageFolder`` and
  Hugging Face's ``imagefolder`` read as they are;
* ``write_ck48`` — CK+48 (``datasets/ckplus/layout.py``): grayscale PNGs in seven class folders.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..datasets.affectnet.layout import Sample, write_small


def _face_bases(rng: np.random.Generator, size: int, count: int) -> list[np.ndarray]:
    """Smooth face-like pictures (int16 RGB)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bases = []
    for _ in range(count):
        c0, c1 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
        img = c0 + (c1 - c0) * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))[..., None]
        cx, cy = rng.uniform(0.4, 0.6, 2)
        rx, ry = rng.uniform(0.25, 0.35), rng.uniform(0.32, 0.45)
        blobs = [(cx, cy, rx, ry, rng.uniform([150, 100, 80], [240, 190, 160]))]  # skin
        for dx, dy, r in ((-0.4, -0.25, 0.04), (0.4, -0.25, 0.04), (0.0, 0.5, 0.07)):  # eyes, mouth
            blobs.append((cx + dx * rx, cy + dy * ry, r, r / 1.8, np.array([40.0, 30.0, 30.0])))
        for bx, by, sx, sy, colour in blobs:
            mask = np.clip((1 - ((xx - bx) / sx) ** 2 - ((yy - by) / sy) ** 2) * 4, 0, 1)[..., None]
            img = img * (1 - mask) + colour * mask
        bases.append(img.astype(np.int16))
    return bases


def faces(n: int, size: int, seed: int = 0, gray: bool = False) -> Iterator[np.ndarray]:
    """``n`` deterministic face-like uint8 pictures, (size, size, 3) or (size, size) grayscale."""
    rng = np.random.default_rng(seed)
    bases = _face_bases(rng, size, 32)
    noise = [(rng.normal(0, 1, (2 * size, 2 * size, 3)) * s).astype(np.int16) for s in (6, 9, 12)]
    for i in range(n):
        base = bases[rng.integers(len(bases))]
        oy, ox = rng.integers(0, size, 2)
        pixels = np.clip(base + noise[i % 3][oy:oy + size, ox:ox + size] + rng.integers(-20, 20), 0, 255).astype(np.uint8)
        yield (pixels @ np.array([0.299, 0.587, 0.114])).astype(np.uint8) if gray else pixels


def affectnet_small_samples(n: int, size: int = 224, seed: int = 0) -> Iterator[Sample]:
    """``n`` AffectNet-small samples: face-like pictures, random labels 0-7, valence/arousal and 68
    landmarks; ids are non-contiguous and the two splits share ids, like the real release."""
    rng = np.random.default_rng(seed + 1)
    n_val = max(1, n // 10)
    for i, pixels in enumerate(faces(n, size, seed)):
        split, k = ("val", i - (n - n_val)) if i >= n - n_val else ("train", i)
        yield Sample(
            split=split, name=str(k * 3 // 2), image=pixels, expression=int(rng.integers(8)),
            valence=float(rng.uniform(-1, 1)), arousal=float(rng.uniform(-1, 1)), landmarks=rng.uniform(0, size, (68, 2)),
        )


def write_affectnet_small(root: Path, n: int, size: int = 224, seed: int = 0) -> Path:
    """AffectNet's small release with ``n`` images (``root`` is the raw directory)."""
    write_small(root, affectnet_small_samples(n, size, seed))
    return root


def write_rafdb_kaggle(root: Path, n: int, size: int = 224, seed: int = 0, test_fraction: float = 0.2) -> Path:
    """RAF-DB's Kaggle repack with ``n`` JPEGs (``test_fraction`` of them in ``test/``); returns the
    class-folder root ``root/DATASET`` (``root`` is the raw directory ferbench converts)."""
    from ..datasets.rafdb.layout import Sample as RafSample, write_kaggle

    labels = np.random.default_rng(seed + 1).integers(1, 8, n)
    n_train = n - int(n * test_fraction)

    def samples() -> Iterator[RafSample]:
        for i, pixels in enumerate(faces(n, size, seed)):
            name = f"train_{i + 1:05d}" if i < n_train else f"test_{i - n_train + 1:04d}"
            yield RafSample(name, int(labels[i]), pixels)

    write_kaggle(root, samples())
    return root / "DATASET"


def write_ck48(root: Path, n: int, size: int = 48, seed: int = 0) -> Path:
    """CK+48 with ``n`` grayscale PNGs (the last 3 frames of n/3 sequences, 50 per subject);
    returns the class-folder root ``root/CK+48``."""
    from ..datasets.ckplus.layout import CKSequence, write_ck48 as write

    emotions = np.random.default_rng(seed + 1).integers(1, 8, -(-n // 3))
    pictures = list(faces(n, size, seed, gray=True))

    def sequences() -> Iterator[CKSequence]:
        for k, emotion in enumerate(emotions):
            frames = pictures[3 * k:3 * k + 3]
            yield CKSequence(f"S{k // 50 + 1:03d}", k % 50 + 1, frames, int(emotion))

    return write(root, sequences())


def image_folder_files(root: Path) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_and_hash(paths: list[str], verify: bool = False) -> tuple[int, int]:
    """Read every file and sha256 it: (files, bytes). The floor of any conversion. With
    ``verify``, every image is also validated in full as conversion does (``imageio.verify_image``):
    the floor of a conversion that checks every image."""
    from ..imageio import verify_image

    files, nbytes = 0, 0
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        hashlib.sha256(data).digest()
        if verify and path.lower().endswith(_IMAGE_SUFFIXES):
            verify_image(data, path)
        files, nbytes = files + 1, nbytes + len(data)
    return files, nbytes


def read_and_hash_parallel(paths: list[str], processes: int, verify: bool = False) -> tuple[int, int]:
    """The same work in ``processes`` processes (every ``processes``-th file each), pool start included."""
    import multiprocessing as mp

    with mp.get_context("fork").Pool(processes) as pool:
        counts = pool.map(functools.partial(read_and_hash, verify=verify), [paths[i::processes] for i in range(processes)])
    return sum(c[0] for c in counts), sum(c[1] for c in counts)
