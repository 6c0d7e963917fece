"""How board values read, in text and on the page alike: percentages, mean ± std, intervals, the
differences to the best entry and the best baseline, reported vs measured, model size, the runs
counted, and the notes that head a board (warnings first-worded SYNTHETIC, LEAKAGE or SELECTED ON TEST)."""

from __future__ import annotations

from typing import Any

from ..metrics import SCALARS
from .board import Board


def pct(v: float | None, signed: bool = False) -> str:
    return "—" if v is None else f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}"


def pm(mean: float | None, std: float | None) -> str:
    """"55.20 ± 1.30"; a single run has no spread: "55.20 ± —"."""
    return "—" if mean is None else f"{pct(mean)} ± {'—' if std is None else pct(std)}"


def interval(lo: float | None, hi: float | None) -> str:
    return "—" if lo is None else f"[{pct(lo, True)}, {pct(hi, True)}]"


def entry_label(e: dict[str, Any]) -> str:
    return f"{' = '.join(e['names'] or ['?'])} @{e['short_hash']}"


def vs_best(e: dict[str, Any]) -> str:
    if e.get("diff_best") is None:
        return "—"
    if e["position"] == 1:
        return "best"
    return f"{pct(e['diff_best'], True)} {interval(e['diff_best_lo'], e['diff_best_hi'])}" + (
        " tied" if e["tied_with_best"] else "")


def vs_baseline(e: dict[str, Any]) -> str:
    if not e.get("vs_baseline"):
        return "—"
    diff = f"{pct(e['diff_baseline'], True)} {interval(e['diff_baseline_lo'], e['diff_baseline_hi'])} vs {e['best_baseline']}"
    word = {"not distinguishable": "not distinguishable from baseline"}.get(e["vs_baseline"], e["vs_baseline"])
    return f"{word}: {diff}"


#: published figures shown in an entry's row; the rest are in the reported-vs-measured table
ROW_FIGURES = 3


def vs_reported(e: dict[str, Any]) -> str:
    """"55.54 vs 53.20 accuracy (test)": each published figure beside the measured mean of the same metric
    and role (the scalar scores first, in ``SCALARS`` order, then model and per-class figures; past
    ``ROW_FIGURES``, a count pointing to the full table)."""
    def order(r: dict[str, Any]) -> tuple[int, int, str]:
        m = r["metric"]
        return (0, SCALARS.index(m), "") if m in SCALARS else (2 if ":" in m else 1, 0, m)

    figures = sorted(e.get("reported", []), key=order)
    parts = []
    for r in figures[:ROW_FIGURES]:
        measured = "—" if r["measured"] is None else f"{r['measured']:.2f}"
        parts.append(f"{r['reported']:.2f} vs {measured} {r['metric']} ({r['role']})")
    if len(figures) > ROW_FIGURES:
        parts.append(f"{len(figures) - ROW_FIGURES} more in the reported-figures table")
    return "; ".join(parts) or "—"


def size_text(params: int | None, gflops: float | None) -> tuple[str, str]:
    p = "—" if params is None else f"{params / 1e6:.2f}M" if params >= 1e4 else str(params)
    return p, "—" if gflops is None else f"{gflops:.3g}"


def runs_text(e: dict[str, Any]) -> str:
    return f"{e['n_runs']} ({e['n_folds']} {'fold' if e['n_folds'] == 1 else 'folds'} × {e['n_seeds']} " \
           f"{'seed' if e['n_seeds'] == 1 else 'seeds'})"


def board_notes(board: Board) -> list[str]:
    notes = []
    if board.synthetic:
        notes.append("SYNTHETIC DATA: these results come from generated data, not from the real dataset(s).")
    if board.leakage and board.leakage != "clean":
        notes.append(f"LEAKAGE: the manifest's leakage verdict is {board.leakage!r}; results are not subject-independent.")
    if board.siblings:
        notes.append(f"{board.siblings} other manifest(s) exist for {board.protocol}; they are ranked separately, never together.")
    if board.section == "ranked":
        notes.append(f"Every entry here is scored on exactly the same runs: {board.coverage} "
                     f"({board.k_folds}/{board.total_folds} folds); the baselines on the same runs.")
    else:
        notes.append("These entries do not cover the ranked coverage: each is shown on its own runs, unranked, beside "
                     "the best baseline on the same runs.")
    if not board.paired:
        notes.append("Some entries here saw different test samples in a run: no paired test is given.")
    return notes + board.notes


def is_warning(note: str) -> bool:
    return note.startswith(("SYNTHETIC", "LEAKAGE", "SELECTED ON TEST"))
