"""Merged datasets: ``merge(name, data_dirs, out_dir)`` over the ``MERGES`` registry; one module per
merge, registered by importing it here (one import line each)."""

from .base import MERGES, MergeSpec, RowImages, Selection, merge, register_merge
from . import global_  # noqa: E402,F401  (global: CalD3r/MenD3s + BU-3DFE + Bosphorus, RGB-D)
from . import avfer  # noqa: E402,F401  (avfer: FER2013 + CK+ peak frames + AffectNet)

__all__ = ["MERGES", "MergeSpec", "RowImages", "Selection", "merge", "register_merge"]
