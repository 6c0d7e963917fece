"""Batches of model input out of a sample store: decoding, and the training / evaluation loader.

With a decoded store (``Store.decode_all``: every image decoded once, resized to the input size)
batches are served by indexing one uint8 tensor (on the GPU when training there); otherwise images
are decoded in ``DataLoader`` workers every epoch (pinned memory on CUDA). Encoded bytes stay in
Arrow buffers, which forked loader workers share without copying.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch

from .inputs import Batch
from .samplers import Sampler

if TYPE_CHECKING:
    from .store import Store


class _StreamDataset(torch.utils.data.Dataset):
    """Decodes whole batches in a loader worker (``__getitems__``), returning ready tensors.

    Images are decoded straight into the batch tensor, allocated (in a worker) in shared memory so
    that sending it to the main process copies nothing; colour comes as a channels-last (B, c, H, W)
    view of the decoder's (B, H, W, c) layout."""

    def __init__(self, store: Store):
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitems__(self, indices: list[int]) -> tuple[Any, ...]:
        spec, n = self.store.spec, len(indices)
        shared = torch.utils.data.get_worker_info() is not None

        def buffer(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
            t = torch.empty(shape, dtype=dtype)
            return t.share_memory_() if shared else t

        s, c = spec.size, spec.color_channels
        color = buffer((n, s, s, c), torch.uint8) if c else None
        depth = buffer((n, 1, s, s), torch.float32) if spec.uses_depth else None
        labels = buffer((n,), torch.int64)
        self.store.decode_batch(indices, None if color is None else color.numpy(), None if depth is None else depth.numpy())
        labels.numpy()[:] = self.store.labels[np.asarray(indices, dtype=np.int64)]
        return None if color is None else color.permute(0, 3, 1, 2), depth, labels


def _as_is(batch: Any) -> Any:
    return batch


class _IndexBatches(torch.utils.data.Sampler):
    """Batches of store indices, recomputed by ``order()`` each time it is iterated."""

    def __init__(self, loader: "Loader"):
        self.loader = loader

    def __iter__(self) -> Iterator[list[int]]:
        yield from (b.tolist() for b in self.loader.index_batches())

    def __len__(self) -> int:
        return len(self.loader)


class Loader:
    """Batches over store indices ``indices``: shuffled per epoch (training) or in order (evaluation).

    Training: the sampler's order for (seed, epoch), padded to a multiple of ``world`` and strided
    over ranks; the incomplete last batch is dropped when at least one full batch exists.
    Evaluation: rank r gets a contiguous block, no sample padded or repeated.
    """

    def __init__(self, store: Store, indices: np.ndarray, batch_size: int, *, train: bool, sampler: Sampler | None = None,
                 seed: int = 0, rank: int = 0, world: int = 1, device: torch.device | str = "cpu", workers: int = 0):
        self.store, self.indices, self.batch_size, self.train = store, indices, batch_size, train
        self.sampler, self.seed, self.rank, self.world = sampler, seed, rank, world
        self.device, self.epoch = torch.device(device), 0
        self._loader = None if store.cached else self._stream_loader(workers)

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
        if self._loader is None:
            yield from self._memory_batches()
        else:
            for tensors in self._loader:
                yield Batch(*(None if t is None else t.to(self.device, non_blocking=True) for t in tensors))

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
            kw = dict(persistent_workers=True, prefetch_factor=4,
                      multiprocessing_context=mp.get_context("fork" if sys.platform.startswith("linux") else "spawn"))
        return torch.utils.data.DataLoader(
            _StreamDataset(self.store), batch_sampler=_IndexBatches(self), collate_fn=_as_is, num_workers=workers,
            pin_memory=self.device.type == "cuda", **kw,
        )
