"""Killing a ferbench command at a chosen point: a child process runs ``ferbench ARGV`` with a hook that
parks it at ``point`` (``epoch-checkpoint``: after a run's first epoch checkpoint; ``rename``: a
finished output complete under its temp name, about to be renamed over ``target``; ``verify``: split
planned, leakage not yet checked), the test kills it there, and every process it started must be gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

TESTS = Path(__file__).parent

CHILD = r'''
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import train_fixtures  # noqa: F401  (registers toyfer and toy-kfold)
point, marker, target = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
argv = sys.argv[5:]


def park():
    marker.write_text(str(os.getpid()))
    while True:
        signal.pause()  # parked here until the test kills us


if point == "epoch-checkpoint":  # after the first epoch's last.pt is on disk
    import ferbench.train.loop as loop
    save = loop._save

    def parked_save(obj, path):
        save(obj, path)
        if path.name == loop.LAST and obj["epoch"] == 0:
            park()

    loop._save = parked_save
elif point == "rename":  # a finished output complete under its temp name, not yet renamed into place
    replace = os.replace

    def parked_replace(src, dst, *a, **k):
        dst = Path(dst)
        if dst == target or (dst.parent == target and not dst.name.startswith(".")):
            park()
        return replace(src, dst, *a, **k)

    os.replace = parked_replace
elif point == "verify":  # split: the protocol planned, its leakage not yet checked
    import ferbench.protocols as protocols

    def parked_verify(*a, **k):
        park()

    protocols._verify = parked_verify
from ferbench.cli import main
sys.exit(main(argv))
'''


def _session(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry))
    return pids


def start(tmp_path: Path, point: str, target: Path, argv: list[str]) -> tuple[subprocess.Popen, Path]:
    """Start ``ferbench argv`` in a child that parks at ``point`` (its own session, so whatever it
    starts can be found afterwards)."""
    tag = uuid.uuid4().hex[:8]
    script = tmp_path / f"child-{tag}.py"  # one per child: a shared file rewritten while another child reads it runs empty
    script.write_text(CHILD)
    marker = tmp_path / f"parked-{point}-{tag}"
    proc = subprocess.Popen([sys.executable, str(script), str(TESTS), point, str(marker), str(target), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    return proc, marker


def kill_when_parked(proc: subprocess.Popen, marker: Path, sig: int) -> tuple[int, str]:
    """Wait until the child is parked, kill it with ``sig``; its exit status and stderr once it and
    every process it started are gone."""
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"child ended before parking (exit {proc.returncode}): {out[-1000:]} {err[-2000:]}")
            assert time.monotonic() < deadline, "child never parked"
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 20
    while _session(proc.pid):  # loader workers notice their parent is gone
        assert time.monotonic() < deadline, f"orphan processes left: {_session(proc.pid)}"
        time.sleep(0.1)
    return proc.returncode, err


def kill_at(tmp_path: Path, point: str, sig: int, target: Path, argv: list[str]) -> tuple[int, str]:
    return kill_when_parked(*start(tmp_path, point, target, argv), sig)
