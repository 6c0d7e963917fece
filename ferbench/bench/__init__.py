"""Speed benchmarks: every figure measured beside its baseline and its peers in the same run.

``base`` holds the result type (``BenchResult``, ``Comparison``), the timer (``measure``) and the
registry (``BENCHMARKS``); each module below registers its benchmarks when imported here:
``convert`` (ferbench convert vs HF ``datasets`` and read-and-hash), ``loader`` (vs torchvision
and HF ``datasets``), ``loop`` (vs a bare PyTorch loop; GPU variants), ``feed`` (GPU: training on
streamed images vs images already in device memory), ``protocols``,
``geometry`` and ``leaderboard``. ``inputs`` writes the raw trees they read. ``ferbench bench``
(``ferbench.commands.bench``) runs them and writes ``bench.json`` and ``bench.md``.
"""

from .base import BENCHMARKS, Benchmark, BenchResult, Comparison, Timing, benchmark, measure
from . import convert, feed, geometry, leaderboard, loader, loop, protocols  # noqa: F401  (they register)

__all__ = ["BENCHMARKS", "Benchmark", "BenchResult", "Comparison", "Timing", "benchmark", "measure"]
