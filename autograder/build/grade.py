"""Grade a folder of submissions locally with ``otter run`` (no Docker), several at a time.

Each submission (a zip made by the notebook's export cell, or a bare
notebook) is graded in its own ``otter run`` process (each in its own
sandbox slot, so gradings side by side never share a student user); a
submission that breaks or hangs ``otter run`` still gets a row, with the
error. Scores come out as a table on the terminal, a CSV (one row per
submission, one column per question) and an HTML report
(:mod:`autograder.build.report`).
"""

from __future__ import annotations

import csv
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TextIO

from ..grading import sandbox
from .release import otter_run, score_of

SUBMISSION_SUFFIXES = (".zip", ".ipynb")
GRADING_MEMORY_MIB = 768
"""What one grading may take (docs/grading.md); the default number of jobs leaves room for it."""


def expand(paths: list[Path]) -> list[Path]:
    """Submission files from files and folders (a folder's *.zip and *.ipynb)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in SUBMISSION_SUFFIXES and p.is_file())
        elif path.is_file() and path.suffix in SUBMISSION_SUFFIXES:
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: not a .zip, an .ipynb or a folder of them")
    if not found:
        raise FileNotFoundError("no submissions (.zip or .ipynb) found")
    return found


def default_jobs() -> int:
    """The machine's cores, fewer when its free memory holds fewer gradings of ``GRADING_MEMORY_MIB``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) // 1024
        return max(1, min(cores, available // GRADING_MEMORY_MIB))
    except (OSError, StopIteration, ValueError):
        return max(1, cores)


class Progress:
    """One line on ``stream``: done/total, percent, elapsed, ETA, the last submission graded. On a terminal
    the line is rewritten in place; elsewhere (a log file, CI) it is one line per submission."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.start = time.monotonic()
        self.live = hasattr(stream, "isatty") and stream.isatty()

    @staticmethod
    def _clock(seconds: float) -> str:
        seconds = int(round(seconds))
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def line(self, last: str = "") -> str:
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta_text = self._clock(eta) if self.done else "?"
        width = len(str(self.total))
        return (f"[{self.done:>{width}}/{self.total}] {100 * self.done / self.total:5.1f}%  "
                f"elapsed {self._clock(elapsed)}  ETA {eta_text}" + (f"  {last}" if last else ""))

    def step(self, last: str = "") -> None:
        self.done += 1
        text = self.line(last)
        if self.live:
            end = "\n" if self.done == self.total else ""
            self.stream.write("\r\x1b[2K" + text + end)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _row(submission: Path, results: dict, results_path: Path, isolation: str = "",
         seconds: float | None = None) -> dict:
    score, possible = score_of(results)
    row = {"submission": submission.name, "score": round(score, 4), "possible": round(possible, 4),
           "percent": round(100 * score / possible, 2) if possible else 0.0}
    for test in results.get("tests", []):
        if "max_score" in test:
            row[test["name"]] = round(float(test.get("score", 0)), 4)
    extra = (results.get("extra_data") or {}).get("genai_hw") or {}
    seed = extra.get("seed")
    row["seed"] = "" if seed is None else str(seed)
    row["seconds"] = "" if seconds is None else round(seconds, 1)  # the whole otter run, Otter's own work too
    row["isolation"] = extra.get("isolation") or isolation  # what the grading said, else what it was to get
    error_lines = (results.get("error") or "").strip().splitlines()
    row["error"] = error_lines[-1][:200] if error_lines else ""
    row["results"] = str(results_path)
    return row


def grade(autograder_zip: Path, submissions: list[Path], out_dir: Path, seed: int | None = None,
          jobs: int = 1, timeout: int = 900, log=None, progress: Progress | None = None,
          unisolated: bool = False) -> list[dict]:
    """Grade each submission, ``jobs`` at a time; return one row per submission, in the submissions' order.

    ``log(row)`` is called as each finishes. A grading that fails in an unexpected way (not only a
    submission Otter cannot grade, which ``otter_run`` already records) still gets a row with the error.
    Student code is isolated as :func:`sandbox.isolation` says; where nothing can isolate it, grading stops
    with :class:`sandbox.SandboxError` unless ``unisolated`` (each row's ``isolation`` then says ``none``).
    """
    if not autograder_zip.is_file():
        raise FileNotFoundError(f"{autograder_zip}: no such autograder zip")
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    found = expand(submissions)
    mode = sandbox.preflight(allow_none=unisolated)  # a grader that cannot run student code stops here
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(number: int, submission: Path) -> dict:
        folder = out_dir / f"{number:03d}_{submission.stem}"
        started = time.monotonic()
        try:
            results = otter_run(autograder_zip, submission, folder, seed=seed, timeout=timeout,
                                unisolated=unisolated)
        except Exception as err:  # noqa: BLE001 - one submission never stops the batch
            results = {"tests": [], "error": f"genai-hw grade: grading failed ({type(err).__name__}: {err})"}
        return _row(submission, results, folder / "results.json", mode, time.monotonic() - started)

    rows: list[dict | None] = [None] * len(found)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, number, sub): number - 1 for number, sub in enumerate(found, start=1)}
        for future in as_completed(futures):
            row = future.result()
            rows[futures[future]] = row
            if progress is not None:
                problem = " ERROR" if row["error"] else ""
                progress.step(f"{row['submission']} {row['score']:g}/{row['possible']:g}{problem}")
            if log is not None:
                log(row)
    return [row for row in rows if row is not None]


def columns(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    fixed = ["submission", "score", "possible", "percent"]
    tail = ["seed", "seconds", "isolation", "error", "results"]
    return fixed + [n for n in names if n not in fixed + tail] + tail


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns(rows), restval="")
        writer.writeheader()
        writer.writerows(rows)


def table(rows: list[dict]) -> str:
    names = [n for n in columns(rows) if n != "results"]
    cells = [[str(row.get(n, "")) for n in names] for row in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)
