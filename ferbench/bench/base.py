"""What every benchmark shares: the result type, the timer, the registry and the scratch folder.

A benchmark is a function returning one ``BenchResult``: ferbench's ``figure`` (seconds) and the
``Comparison``s measured beside it in the same run, on the same inputs: a ``baseline`` (the
cheapest thing doing part of the same job; the ``goal`` is a bound on figure / baseline) and
``peers`` (other tools doing the same job, e.g. torchvision or Hugging Face ``datasets``, and
the hardware ``limit`` such as the same bytes read in N processes). A peer that is not installed
or fails is reported as skipped with the reason, never estimated. Every ratio is ferbench's
figure divided by the other one: below 1 ferbench is faster.

Benchmarks register themselves with ``@benchmark(name, quick={...})`` in ``BENCHMARKS`` (a
``ferbench.registry.Registry``); ``ferbench.bench`` imports every module that does.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..registry import Registry

OK, SKIPPED = "ok", "skipped"


@dataclass
class Comparison:
    """One figure measured beside ferbench's: ``kind`` is "baseline", "peer" or "limit"."""

    name: str
    kind: str
    figure: float | None = None  # seconds; None when skipped
    ratio: float | None = None  # ferbench figure / this figure
    status: str = OK
    goal: float | None = None  # ratio ≤ goal is the claim
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.goal is None or self.ratio is None else self.ratio <= self.goal


@dataclass
class BenchResult:
    """One benchmark row: ferbench's figure and everything it was compared with."""

    figure: float  # ferbench's, seconds
    what: str  # what the figure measures
    name: str = ""  # set by the registry
    unit: str = "s"
    baseline: Comparison | None = None
    peers: list[Comparison] = field(default_factory=list)
    goal: float | None = None  # bound on figure / baseline
    limit: float | None = None  # absolute budget for the figure (seconds)
    machine: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for c in self.comparisons:
            if c.figure is not None and c.status == OK:
                c.ratio = self.figure / c.figure if c.figure > 0 else float("inf")
            else:
                c.figure, c.ratio, c.status = None, None, SKIPPED
        if self.baseline is not None and self.goal is not None:
            self.baseline.goal = self.goal

    @property
    def comparisons(self) -> list[Comparison]:
        return ([self.baseline] if self.baseline else []) + self.peers

    @property
    def ratio(self) -> float | None:
        """figure / baseline."""
        return None if self.baseline is None else self.baseline.ratio

    @property
    def met(self) -> bool | None:
        """Every goal and the budget met (None when there is neither)."""
        checks = [c.met for c in self.comparisons if c.met is not None]
        if self.limit is not None:
            checks.append(self.figure <= self.limit)
        return all(checks) if checks else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["baseline"] = None if self.baseline is None else {**asdict(self.baseline), "met": self.baseline.met}
        d["peers"] = [{**asdict(p), "met": p.met} for p in self.peers]
        return {**d, "ratio": self.ratio, "met": self.met}


def skipped(name: str, kind: str, why: str) -> Comparison:
    return Comparison(name, kind, status=SKIPPED, note=why)


def compared(name: str, kind: str, timing: "Timing", stat: str = "best", goal: float | None = None,
             note: str = "") -> Comparison:
    """The comparison a timing gives (its ``best`` or ``median``), or skipped when it failed."""
    if timing.error is not None:
        return skipped(name, kind, f"failed: {timing.error}")
    return Comparison(name, kind, getattr(timing, stat), goal=goal, note=note)


def missing(*modules: str) -> str | None:
    """Why a peer cannot run ("not installed: ..."), or None when every module is importable."""
    absent = [m for m in modules if not _available(m)]
    return f"not installed: {', '.join(absent)}" if absent else None


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# -- the timer --------------------------------------------------------------------------------
@dataclass
class Timing:
    """Seconds of each timed run (warm-up runs excluded); ``error`` when the function failed."""

    runs: list[float]
    error: str | None = None
    value: Any = None  # what the function returned last

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def measure(fns: dict[str, Callable[[], Any]], repeat: int = 3, warmup: int = 1, per_call: int = 1,
            fragile: tuple[str, ...] = (), setup: dict[str, Callable[[], Any]] | None = None) -> dict[str, Timing]:
    """Time every function ``repeat`` times after ``warmup`` untimed calls, round-robin (one run of
    each per round), so drifting machine load hits all alike. ``per_call`` > 1 calls a function
    that many times per run and divides (for millisecond work). ``setup[name]``, where given,
    runs untimed before every run of that function (emptying its output folder, say). A
    ``fragile`` function (a peer) that raises is dropped with its error instead of stopping the
    benchmark."""
    runs: dict[str, list[float]] = {name: [] for name in fns}
    errors: dict[str, str] = {}
    last: dict[str, Any] = {}
    for round_ in range(warmup + repeat):
        for name, fn in fns.items():
            if name in errors:
                continue
            try:
                if setup and name in setup:
                    setup[name]()
                t0 = time.perf_counter()
                for _ in range(per_call if round_ >= warmup else 1):
                    value = fn()
                seconds = (time.perf_counter() - t0) / per_call
            except Exception as e:
                if name not in fragile:
                    raise
                errors[name] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300] if str(e).strip() else ''}"
                continue
            if round_ >= warmup:
                runs[name].append(seconds)
            last[name] = value
    return {name: Timing(runs[name], errors.get(name), last.get(name)) for name in fns}


def time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


# -- machine ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _static_machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> dict[str, Any]:
    """The machine a figure was taken on, with the load average at the time (shared machines)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {**_static_machine(), "loadavg_1min": None if load is None else round(load[0], 2)}


# -- scratch ----------------------------------------------------------------------------------
@contextlib.contextmanager
def workdir(path: str | Path | None = None) -> Iterator[Path]:
    """``path`` (created, kept) or a temporary folder removed afterwards."""
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    tmp = Path(tempfile.mkdtemp(prefix="ferbench-bench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the registry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: its function, fixed arguments, small test sizes and device."""

    name: str
    fn: Callable[..., BenchResult]
    quick: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    gpu: bool = False  # run only by ``ferbench bench --device cuda``

    def run(self, quick: bool = False, **overrides: Any) -> BenchResult:
        kw = {**self.kwargs, **(self.quick if quick else {}), **overrides}
        started = machine()
        result = self.fn(**kw)
        result.name = self.name
        result.machine = {**started, **result.machine}
        return result

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


BENCHMARKS: Registry[Benchmark] = Registry("benchmark", populate=("ferbench.bench",))


def benchmark(name: str, *, quick: dict[str, Any] | None = None, gpu: bool = False,
              **kwargs: Any) -> Callable[[Callable[..., BenchResult]], Callable[..., BenchResult]]:
    """Register the decorated function as benchmark ``name`` (``kwargs`` fixed, ``quick`` for tests)."""

    def wrap(fn: Callable[..., BenchResult]) -> Callable[..., BenchResult]:
        BENCHMARKS.register(name, Benchmark(name, fn, dict(quick or {}), kwargs, gpu))
        return fn

    return wrap
