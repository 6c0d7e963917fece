"""Test-wide settings: everything offline, caches in a temp dir, fixtures written at test time."""

import os
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("FERBENCH_CACHE", tempfile.mkdtemp(prefix="ferbench-test-cache-"))
