"""Test-wide settings: everything offline, caches in a temp dir, fixtures written at test time."""

import os
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("FERBENCH_CACHE", tempfile.mkdtemp(prefix="ferbench-test-cache-"))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The tiny toy dataset of ``train_fixtures`` and its 3-fold manifest (one per test module)."""
    import train_fixtures as tf

    root = tmp_path_factory.mktemp("toy")
    data = tf.make_dataset(root)
    return data, tf.write_manifest(data, root / "manifest.parquet")
