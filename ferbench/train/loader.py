"""Batches of model input out of a sample store: decoding, and the training / evaluation loader.

With a decoded store (``Store.decode_all``: every image decoded once, resized to the input size)
batches are served by indexing one uint8 tensor (on the GPU when training there); otherwise images
are decoded in ``DataLoader`` workers every epoch (pinned memory on CUDA). Encoded bytes stay in
Arrow buffers, which forked loader workers share without copying; on CPU, forked workers decode
into batch buffers mapped before the fork and reused (``BatchSlots``), so a batch crosses from a
worker as a slot number. With ``decode="gpu"`` there are no workers: each batch's encoded JPEGs are
decoded on the CUDA device itself (``device_decode.DeviceDecoder``).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch

from .batch_slots import BatchSlots
from .device_decode import DeviceDecoder
from .inputs import Batch
from .samplers import Sampler

if TYPE_CHECKING:
    from .store import Store

_PREFETCH = 4  # batches in flight per worker
_HELD = 4  # batches a consumer may keep alive before new batches fall back to fresh shared buffers


class _StreamDataset(torch.utils.data.Dataset):
    """Decodes whole batches in a loader worker (``__getitems__``).

    A batch dispatched with a slot (``BatchSlots``, forked workers on CPU) is decoded straight into
    that shared slot and only ``(slot, None, None, labels)`` travels back. Otherwise images are
    decoded into a batch tensor allocated (in a worker) in shared memory, so that sending it copies
    nothing: ``(-1, colour, depth, labels)``. Colour comes as a channels-last (B, c, H, W) view of
    the decoder's (B, H, W, c) layout."""

    def __init__(self, store: Store, slots: BatchSlots | None = None):
        self.store, self.slots = store, slots

    def __len__(self) -> int:
        return len(self.store)

    def __getitems__(self, task: tuple[int, list[int]]) -> tuple[Any, ...]:
        slot, indices = task
        labels = self.store.labels[np.asarray(indices, dtype=np.int64)]
        if slot >= 0:  # only assigned when there are slots
            self.store.decode_batch(indices, *self.slots.arrays(slot, len(indices)))  # type: ignore[union-attr]
            return slot, None, None, labels
        spec, n = self.store.spec, len(indices)
        shared = torch.utils.data.get_worker_info() is not None

        def buffer(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
            t = torch.empty(shape, dtype=dtype)
            return t.share_memory_() if shared else t

        s, c = spec.size, spec.color_channels
        color = buffer((n, s, s, c), torch.uint8) if c else None
        depth = buffer((n, 1, s, s), torch.float32) if spec.uses_depth else None
        self.store.decode_batch(indices, None if color is None else color.numpy(), None if depth is None else depth.numpy())
        return -1, None if color is None else color.permute(0, 3, 1, 2), depth, torch.from_numpy(labels)


def _as_is(batch: Any) -> Any:
    return batch


class _IndexBatches(torch.utils.data.Sampler):
    """Batches of store indices (with the slot each is decoded into), recomputed each time it is iterated.

    It holds its ``Loader`` weakly: a reference cycle would leave the DataLoader to the cyclic
    garbage collector, which closes the workers' index queues before the DataLoader's own shutdown
    can send them the stop signal, so every worker then waits out a 5 s join timeout."""

    def __init__(self, loader: "Loader"):
        self._loader = weakref.ref(loader)

    @property
    def loader(self) -> "Loader":
        loader = self._loader()
        assert loader is not None, "the Loader owns its DataLoader, so it outlives it"
        return loader

    def __iter__(self) -> Iterator[tuple[int, list[int]]]:
        return self._batches(self.loader.slots, self.loader.index_batches())  # the generator holds no Loader

    @staticmethod
    def _batches(slots: BatchSlots | None, batches: list[np.ndarray]) -> Iterator[tuple[int, list[int]]]:
        if slots is None:
            yield from ((-1, b.tolist()) for b in batches)
            return
        slots.start_epoch()  # runs at the first dispatch, after the DataLoader drained the last pass
        yield from ((slots.assign(), b.tolist()) for b in batches)

    def __len__(self) -> int:
        return len(self.loader)


class Loader:
    """Batches over store indices ``indices``: shuffled per epoch (training) or in order (evaluation).

    Training: the sampler's order for (seed, epoch), padded to a multiple of ``world`` and strided
    over ranks; the incomplete last batch is dropped when at least one full batch exists.
    Evaluation: rank r gets a contiguous block, no sample padded or repeated.
    ``decode``: "cpu" (loader workers) or "gpu" (a streamed JPEG store decoded on ``device``;
    ``throughput.choose_decode`` says when it can and should be used).
    """

    def __init__(self, store: Store, indices: np.ndarray, batch_size: int, *, train: bool, sampler: Sampler | None = None,
                 seed: int = 0, rank: int = 0, world: int = 1, device: torch.device | str = "cpu", workers: int = 0,
                 decode: str = "cpu"):
        self.store, self.indices, self.batch_size, self.train = store, indices, batch_size, train
        self.sampler, self.seed, self.rank, self.world = sampler, seed, rank, world
        self.device, self.epoch = torch.device(device), 0
        self.slots: BatchSlots | None = None
        self._decoder = DeviceDecoder(store, self.device) if decode == "gpu" and not store.cached else None
        self._loader = None if store.cached or self._decoder else self._stream_loader(workers)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        if not self.train:
            n = len(self.indices)
            return self.indices[self.rank * n // self.world:(self.rank + 1) * n // self.world]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = self.indices[self.sampler(rng)] if self.sampler else self.indices
        pad = (-len(order)) % self.world
        order = np.concatenate([order, order[:pad]])
        return order[self.rank::self.world]

    def index_batches(self) -> list[np.ndarray]:
        order = self._order()
        n_full = len(order) // self.batch_size
        cut = n_full * self.batch_size if self.train and n_full else len(order)
        return [order[i:i + self.batch_size] for i in range(0, cut, self.batch_size)]

    def __len__(self) -> int:
        return len(self.index_batches())

    def __iter__(self) -> Iterator[Batch]:
        if self._decoder is not None:
            yield from self._device_batches(self._decoder)
        elif self._loader is None:
            yield from self._memory_batches()
        else:
            for slot, color, depth, labels in self._loader:
                if slot >= 0:
                    c, d = self.slots.receive(slot, len(labels))
                    color = None if c is None else torch.from_numpy(c).permute(0, 3, 1, 2)
                    depth = None if d is None else torch.from_numpy(d)
                    labels = torch.from_numpy(labels)
                yield Batch(*(None if t is None else t.to(self.device, non_blocking=True) for t in (color, depth, labels)))

    def _device_batches(self, decoder: DeviceDecoder) -> Iterator[Batch]:
        labels = torch.from_numpy(self.store.labels)
        for idx in self.index_batches():
            label = labels.index_select(0, torch.from_numpy(idx)).to(self.device, non_blocking=True)
            yield Batch(decoder(idx.tolist()), None, label)

    def _memory_batches(self) -> Iterator[Batch]:
        s = self.store
        home = (s.color if s.color is not None else s.depth).device
        color, depth, labels = s.color, s.depth, torch.from_numpy(s.labels).to(home)
        move = home != self.device
        for idx in self.index_batches():
            t = torch.from_numpy(idx)
            if home.type != "cpu":
                t = t.to(home, non_blocking=True)
            batch = Batch(None if color is None else color.index_select(0, t),
                          None if depth is None else depth.index_select(0, t), labels.index_select(0, t))
            if move:
                batch = Batch(*(None if p is None else p.to(self.device, non_blocking=True)
                                for p in (batch.color, batch.depth, batch.label)))
            yield batch

    def _stream_loader(self, workers: int) -> torch.utils.data.DataLoader:
        import multiprocessing as mp
        import sys

        kw: dict[str, Any] = {}
        if workers > 0:
            fork = sys.platform.startswith("linux")
            kw = dict(persistent_workers=True, prefetch_factor=_PREFETCH, multiprocessing_context=mp.get_context("fork" if fork else "spawn"))
            if fork and self.device.type == "cpu":
                spec = self.store.spec
                self.slots = BatchSlots(workers * _PREFETCH + _HELD, self.batch_size, spec.size, spec.color_channels, spec.uses_depth)
        return torch.utils.data.DataLoader(
            _StreamDataset(self.store, self.slots), batch_sampler=_IndexBatches(self), collate_fn=_as_is, num_workers=workers,
            pin_memory=self.device.type == "cuda", **kw,
        )
