"""``ferbench clean RUNS_DIR [--dry-run]``: remove what interrupted jobs left in a runs folder.

Removed: the partial folders of unfinished or abandoned jobs (``.<run name>.partial/``: checkpoints;
removing one means the job starts from epoch 1 next time), the temporary output folders of killed
writers (``.<run name>.tmp-*``), unheld job lock files (``.<run name>.lock``) and, under
``RUNS_DIR/manifests/``, manifest temp files whose writer on this host is gone. Kept: anything of a
job whose lock a running process holds (its partial is in use), and every finished run directory
(nothing whose name does not start with a dot is ever touched). ``--dry-run`` lists, removes nothing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

#: ``.<run name>.partial`` / ``.<run name>.tmp-<hex>`` / ``.<run name>.lock``
_JOB_ENTRY = re.compile(r"^\.(?P<name>.+?)\.(?:partial|tmp-[0-9a-f]{8}|lock)$")
#: a temp file of ``Manifest.write`` written before it named its host and pid
_OLD_TEMP = re.compile(r"^\..+\.tmp-[0-9a-f]{8}$")
_OLD_TEMP_AGE_S = 3600.0


@dataclass
class Entry:
    path: Path
    why: str
    remove: bool
    bytes: int


def held_elsewhere(lock: Path) -> bool:
    """Whether a running process holds the job lock file ``lock`` (never creates or changes it)."""
    import errno
    import fcntl
    import os

    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we took
    return False


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def scan(runs: Path) -> list[Entry]:
    """What ``clean`` would remove (``remove``) or keep, and why."""
    from ..protocols.manifest import TEMP_RE, host_tag, pid_alive
    from ..run_record import RESULT

    out: list[Entry] = []
    jobs: dict[str, list[Path]] = {}
    for entry in sorted(runs.iterdir()):
        m = _JOB_ENTRY.match(entry.name)
        if m:
            jobs.setdefault(m["name"], []).append(entry)
    for name, entries in jobs.items():
        lock = runs / f".{name}.lock"
        busy = held_elsewhere(lock)
        finished = (runs / name / RESULT).is_file()
        for entry in entries:
            kind = "lock file" if entry.name.endswith(".lock") else "partial folder" if entry.name.endswith(".partial") else "temporary output folder"
            if busy:
                why = f"{kind} of a job a running process holds: kept"
            elif kind == "partial folder":
                why = f"{kind} of a {'finished' if finished else 'stopped'} job ({'left over' if finished else 'its checkpoints; the job will start over'})"
            else:
                why = f"{kind} of a stopped writer"
            out.append(Entry(entry, why, not busy, _size(entry)))
    manifests = runs / "manifests"
    if manifests.is_dir():
        now = time.time()
        for entry in sorted(manifests.iterdir()):
            m = TEMP_RE.match(entry.name)
            if m:
                if m["host"] != host_tag():
                    out.append(Entry(entry, "manifest temp file written on another host: kept", False, _size(entry)))
                elif pid_alive(int(m["pid"])):
                    out.append(Entry(entry, f"manifest temp file of running process {m['pid']}: kept", False, _size(entry)))
                else:
                    out.append(Entry(entry, f"manifest temp file of stopped process {m['pid']}", True, _size(entry)))
            elif _OLD_TEMP.match(entry.name) and now - entry.stat().st_mtime > _OLD_TEMP_AGE_S:
                out.append(Entry(entry, "manifest temp file over an hour old", True, _size(entry)))
    return out


def clean(runs: str | Path, dry_run: bool = False) -> list[Entry]:
    """Remove (unless ``dry_run``) what ``scan`` marks; each job's entries go while holding its lock,
    so a job that starts meanwhile keeps its files."""
    from ..file_lock import FileLock

    runs = Path(runs)
    entries = scan(runs)
    if dry_run:
        return entries
    for entry in entries:
        if not entry.remove:
            continue
        m = _JOB_ENTRY.match(entry.path.name)
        if m and entry.path.parent == runs:
            lock = FileLock(runs / f".{m['name']}.lock")
            if not lock.acquire(blocking=False):
                entry.remove, entry.why = False, "taken by a process that started meanwhile: kept"
                continue
            try:
                if entry.path != lock.path:
                    _remove(entry.path)
            finally:
                lock.release()  # removes the lock file too
        else:
            _remove(entry.path)
    return entries


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    from ..errors import FerbenchError

    runs = Path(args.runs_dir)
    if not runs.is_dir():
        raise FerbenchError(f"{runs} is not a folder")
    entries = clean(runs, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    gone = [e for e in entries if e.remove]
    for e in entries:
        print(f"{verb if e.remove else 'kept'} {e.path} ({e.bytes / 2**20:.1f} MiB): {e.why}")
    total = sum(e.bytes for e in gone) / 2**20
    print(f"{len(gone)} {verb} ({total:.1f} MiB), {len(entries) - len(gone)} kept; finished runs are never touched")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clean", help="remove the partial folders and temp files that interrupted jobs left in a runs folder")
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="a runs folder (runtime.out_dir)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    p.set_defaults(func=run)
