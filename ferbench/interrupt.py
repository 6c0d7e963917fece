"""``terminate_as_exit``: SIGTERM unwinds like an exception, so nothing is left half-written."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator


@contextlib.contextmanager
def terminate_as_exit(hint: str = "run again to resume") -> Iterator[None]:
    """Within the block (main thread only), SIGTERM raises ``SystemExit(143)``, so ``finally`` clauses
    run (temporary files removed, locks released) instead of the process vanishing mid-write. ``hint``
    ends the one line printed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        print(f"ferbench: terminated (SIGTERM); {hint}", file=sys.stderr)
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
