"""What the command line says while it works: verbosity, progress, and third-party banners kept out.

* Verbosity is global (``ferbench -q|-v COMMAND`` or after the command): -1 quiet (results and
  errors only), 0 normal, 1 verbose. Child processes inherit it through ``FERBENCH_VERBOSITY``.
* ``Progress`` reports a long step: a tqdm bar on a terminal; elsewhere (a log file, CI) one line
  at most every ``interval`` seconds with the count, rate and ETA, and one when the step ends.
* ``quiet_native_stderr`` keeps the banners that native libraries write straight to the stderr file
  descriptor (TensorFlow Lite's "Created TensorFlow Lite XNNPACK delegate", absl's "All log messages
  before absl::InitializeLog()" and its ``W0000 ...`` lines, from mediapipe) out of normal output:
  file descriptor 2 goes through a filter that drops those lines and passes everything else on,
  while Python's own ``sys.stderr`` keeps writing to the terminal directly. ``-v`` shows them.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading
import time
from typing import Iterator, TextIO

ENV = "FERBENCH_VERBOSITY"
QUIET, NORMAL, VERBOSE = -1, 0, 1


def set_verbosity(level: int) -> None:
    os.environ[ENV] = str(level)


def verbosity() -> int:
    try:
        return int(os.environ.get(ENV, NORMAL))
    except ValueError:
        return NORMAL


def quiet() -> bool:
    return verbosity() <= QUIET


def say(text: str, *, level: int = NORMAL, file: TextIO | None = None) -> None:
    """Print a status line to stderr when the verbosity is at least ``level``."""
    if verbosity() >= level:
        print(text, file=file or sys.stderr, flush=True)


def is_tty(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Progress of ``total`` steps: a tqdm bar on a terminal, periodic one-line reports elsewhere.

    ``update(n)`` advances; ``close()`` (or leaving the ``with`` block) ends it. Nothing is shown
    when quiet or ``enabled`` is false.
    """

    def __init__(self, total: int, desc: str, unit: str = "it", *, enabled: bool = True, interval: float = 30.0,
                 stream: TextIO | None = None):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.stream = stream or sys.stderr
        self.enabled = enabled and not quiet()
        self.n, self.t0 = 0, time.perf_counter()
        self._last = self.t0
        self._bar = None
        if self.enabled and is_tty(self.stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False, mininterval=0.5)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.perf_counter() - self._last >= self.interval and self.n < self.total:
            self._line()

    def line(self) -> str:
        """``convert fer2013: 4200/35887 (12%), 310 img/s, ETA 1m42s``."""
        elapsed = time.perf_counter() - self.t0
        rate = self.n / elapsed if elapsed > 0 else 0.0
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        eta = f", ETA {duration((self.total - self.n) / rate)}" if rate > 0 and self.n < self.total else ""
        done = f" in {duration(elapsed)}" if self.n >= self.total else ""
        return f"{self.desc}: {self.n}/{self.total}{pct}, {rate:.3g} {self.unit}/s{eta}{done}"

    def _line(self) -> None:
        self._last = time.perf_counter()
        print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.n and self.t0 != self._last:  # a periodic line was shown: close with the total
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- native banners --------------------------------------------------------------------------------
#: Lines native libraries print to fd 2 that say nothing to a ferbench user.
BANNERS = re.compile(
    rb"^(INFO: Created TensorFlow Lite .*delegate.*"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] .*)$"
)
_PREFIXES = (b"INFO: Created TensorFlow Lite", b"WARNING: All log messages before absl")
_GLOG = re.compile(rb"^[IWE]\d{0,4}( \d{0,2}(:\d{0,2}(:\d*(\.\d*)?)?)?)?$|^[IWE]\d{4} \d\d:\d\d:\d+\.\d+ ")


def _maybe_banner(partial: bytes) -> bool:
    """Whether an unfinished line could still turn out to be a banner (then it waits for its end)."""
    return any(p.startswith(partial) or partial.startswith(p) for p in _PREFIXES) or bool(_GLOG.match(partial))


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Route file descriptor 2 through a filter dropping ``BANNERS`` lines (children inherit it);
    ``sys.stderr`` keeps writing to the original stream. POSIX only; a no-op when disabled."""
    if not enabled or os.name != "posix":
        yield
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    read_end, write_end = os.pipe()
    thread = threading.Thread(target=_pump, args=(read_end, os.dup(original)), daemon=True, name="ferbench-stderr-filter")
    thread.start()
    saved_stderr = sys.stderr
    # Python-level writes bypass the filter: same terminal, same isatty(), no reordering
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(original), "wb", buffering=0), encoding=saved_stderr.encoding or "utf-8",
                                  errors="backslashreplace", line_buffering=True)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        replaced, sys.stderr = sys.stderr, saved_stderr
        os.dup2(original, 2)  # the filter sees end-of-file once no child holds the pipe any more
        thread.join(timeout=2)
        with contextlib.suppress(Exception):
            replaced.close()
        os.close(original)


def _pump(read_end: int, out: int) -> None:
    buf = b""
    try:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not BANNERS.match(line.rstrip(b"\r")))
            if buf and not _maybe_banner(buf):  # an unfinished line (e.g. a \r progress bar): pass it on now
                kept, buf = kept + buf, b""
            if kept:
                os.write(out, kept)
        if buf and not BANNERS.match(buf):
            os.write(out, buf)
    except OSError:
        pass
    finally:
        os.close(read_end)
        os.close(out)
