"""Forked loader workers decoding into reused shared slots: every batch is the decoded samples of
its indices, whatever the consumer keeps or abandons, and every slot comes back."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from ferbench.protocols import read_manifest
from ferbench.train.batch_slots import BatchSlots
from ferbench.train.inputs import InputSpec
from ferbench.train.loader import Loader
from ferbench.train.store import open_store


@pytest.fixture(scope="module")
def store(toy):
    spec = InputSpec("rgbd", 16, 4, (0.5,) * 4, (0.25,) * 4)  # colour and depth share each slot
    return open_store(read_manifest(toy[1]), [toy[0]], spec)


def _loader(store, batch: int) -> Loader:
    n = len(store)
    return Loader(store, np.arange(n), batch, train=True, sampler=lambda rng: rng.permutation(n), seed=3, workers=2)


def _assert_batch(store, batch, indices) -> None:
    color, depth = store.decode_batch(indices)
    assert torch.equal(batch.color, torch.from_numpy(np.ascontiguousarray(color)))
    assert torch.equal(batch.depth, torch.from_numpy(depth))
    assert torch.equal(batch.label, torch.from_numpy(store.labels[indices]))


def _all_free(slots: BatchSlots) -> bool:
    gc.collect()
    return len(slots._free) == slots.count and not slots._pending


def test_batches_from_reused_slots_are_the_decoded_samples(store):
    loader = _loader(store, 4)
    assert loader.slots is not None and loader.slots.count == 2 * 4 + 4
    for epoch in range(3):  # 21 batches a pass through 12 slots: every slot is reused
        loader.set_epoch(epoch)
        expected = loader.index_batches()
        seen = 0
        for batch, indices in zip(loader, expected):
            _assert_batch(store, batch, indices)
            seen += 1
        assert seen == len(expected)
    assert not _all_free(loader.slots)  # the last batch is still held
    del batch
    assert _all_free(loader.slots)


def test_a_consumer_keeping_every_batch_gets_intact_batches(store):
    loader = _loader(store, 2)
    kept = list(loader)  # 42 batches alive at once, more than the slots: the rest take fresh buffers
    assert len(kept) == len(store) // 2 > loader.slots.count
    for batch, indices in zip(kept, loader.index_batches()):
        _assert_batch(store, batch, indices)
    views = [b.color[:, :1] for b in kept]  # a view alone keeps its slot
    del kept
    assert not _all_free(loader.slots)
    del views
    assert _all_free(loader.slots)


def test_a_pass_left_early_gives_its_slots_back(store):
    loader = _loader(store, 4)
    for first in loader:
        break
    del first
    loader.set_epoch(1)
    for batch, indices in zip(loader, loader.index_batches()):
        _assert_batch(store, batch, indices)
    del batch
    assert _all_free(loader.slots)


def test_dropping_a_loader_stops_its_workers_cleanly(store):
    """No reference cycle leaves the DataLoader to the cyclic collector (which would close the
    workers' queues first, so the workers would be killed after a join timeout instead)."""
    loader = _loader(store, 4)
    for first in loader:
        break
    del first
    workers = list(loader._loader._iterator._workers)
    del loader
    assert [w.exitcode for w in workers] == [0, 0]  # stopped by their signal, not terminated (-15)
