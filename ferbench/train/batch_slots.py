"""Batch buffers shared with forked loader workers and reused from batch to batch.

Sending a freshly allocated shared-memory batch from a worker to the main process costs a new
shared segment, its page faults on both sides and its teardown: about a third of the decode time
of 64 JPEGs at 224² on two cores. ``BatchSlots`` instead maps one anonymous shared region before
the workers fork and cuts it into ``count`` slots, each big enough for one batch (colour, then
depth). The main process owns the bookkeeping:

* ``assign()`` — when the loader's batch sampler dispatches a batch, it gets a free slot (or
  ``-1`` when every slot is in use: that batch takes the ordinary fresh-buffer path, so a
  consumer that keeps many batches alive only loses speed, never correctness);
* the worker decodes straight into ``arrays(slot, n)`` and sends back only the slot number;
* ``receive(slot, n)`` gives the main process new array views of that slot and releases the slot
  when the last view of it dies (a ``weakref.finalize`` on the views' common base; tensors made
  with ``torch.from_numpy`` keep their array alive, so a batch is never overwritten while any
  tensor or view of it exists);
* ``start_epoch()`` releases the slots of batches that were dispatched but never received (an
  epoch left early; the DataLoader has drained those results by the time the sampler restarts).
"""

from __future__ import annotations

import mmap
import threading
import weakref
from collections import deque

import numpy as np

_ALIGN = 4096


class BatchSlots:
    """``count`` shared buffers of one batch each: (B, s, s, c) uint8 colour and (B, 1, s, s) float32 depth."""

    def __init__(self, count: int, batch: int, size: int, color_channels: int, depth: bool):
        self.color_shape = (batch, size, size, color_channels) if color_channels else None
        self.depth_shape = (batch, 1, size, size) if depth else None
        self._color_len = int(np.prod(self.color_shape)) if self.color_shape else 0  # uint8 values
        self._depth_len = int(np.prod(self.depth_shape)) if self.depth_shape else 0  # float32 values
        self._depth_at = -(-self._color_len // 64) * 64
        self.slot_bytes = max(_ALIGN, -(-(self._depth_at + 4 * self._depth_len) // _ALIGN) * _ALIGN)
        self.count = count
        self._region = mmap.mmap(-1, count * self.slot_bytes)  # MAP_SHARED | MAP_ANONYMOUS: inherited by forks
        self._free: deque[int] = deque(range(count))
        self._pending: set[int] = set()  # dispatched, not received
        self._lock = threading.Lock()

    def start_epoch(self) -> None:
        """Free the slots of batches dispatched in an earlier pass and never received."""
        with self._lock:
            self._free.extend(sorted(self._pending))
            self._pending.clear()

    def assign(self) -> int:
        with self._lock:
            if not self._free:
                return -1
            slot = self._free.popleft()
            self._pending.add(slot)
            return slot

    def arrays(self, slot: int, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(colour, depth) views of the first ``n`` samples of ``slot`` (``None`` for an unused modality)."""
        return self._views(self._base(slot), n)

    def receive(self, slot: int, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Views of a batch a worker filled; the slot is free again once every view of it is gone."""
        base = self._base(slot)
        with self._lock:
            self._pending.discard(slot)
        weakref.finalize(base, self._release, slot)
        return self._views(base, n)

    def _base(self, slot: int) -> np.ndarray:
        # A fresh array straight over the region (not a view of another array, whose base numpy
        # would collapse to that array), so every view made from it keeps this object alive.
        return np.frombuffer(self._region, np.uint8, count=self.slot_bytes, offset=slot * self.slot_bytes)

    def _release(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)

    def _views(self, base: np.ndarray, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        color = depth = None
        if self.color_shape:
            color = base[:self._color_len].reshape(self.color_shape)[:n]
        if self.depth_shape:
            depth = base[self._depth_at:self._depth_at + 4 * self._depth_len].view(np.float32).reshape(self.depth_shape)[:n]
        return color, depth
