"""Grade a folder of submissions locally with ``otter run`` (no Docker).

Each submission (a zip made by the notebook's export cell, or a bare
notebook) is graded in its own ``otter run`` process; a submission that
breaks ``otter run`` itself still gets a row, with the error. Scores come out
as a table on the terminal and as a CSV, one row per submission and one
column per question.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .release import otter_run, score_of

SUBMISSION_SUFFIXES = (".zip", ".ipynb")


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


def grade(autograder_zip: Path, submissions: list[Path], out_dir: Path, seed: int | None = None,
          log=print) -> list[dict]:
    """Grade each submission; return one row per submission."""
    if not autograder_zip.is_file():
        raise FileNotFoundError(f"{autograder_zip}: no such autograder zip")
    rows = []
    for number, submission in enumerate(expand(submissions), start=1):
        results = otter_run(autograder_zip, submission, out_dir / f"{number:03d}_{submission.stem}", seed=seed)
        score, possible = score_of(results)
        row = {"submission": submission.name, "score": round(score, 4), "possible": round(possible, 4),
               "percent": round(100 * score / possible, 2) if possible else 0.0}
        for test in results.get("tests", []):
            if "max_score" in test:
                row[test["name"]] = round(float(test.get("score", 0)), 4)
        output = results.get("output", "")
        seed_note = next((w for w in output.split() if w.startswith("GENAI_HW_SEED=")), "")
        row["seed"] = seed_note.removeprefix("GENAI_HW_SEED=").rstrip(").")
        error_lines = (results.get("error") or "").strip().splitlines()
        row["error"] = error_lines[-1][:200] if error_lines else ""
        rows.append(row)
        problem = f" ERROR {row['error']}" if row["error"] else ""
        log(f"graded {submission.name}: {row['score']:g}/{row['possible']:g}{problem}")
    return rows


def columns(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    fixed = ["submission", "score", "possible", "percent"]
    tail = ["seed", "error"]
    return fixed + [n for n in names if n not in fixed + tail] + tail


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns(rows), restval="")
        writer.writeheader()
        writer.writerows(rows)


def table(rows: list[dict]) -> str:
    names = columns(rows)
    cells = [[str(row.get(n, "")) for n in names] for row in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)
