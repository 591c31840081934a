"""Grading time and peak memory of one homework submission vs a trivial Otter assignment.

Budget: grading one submission (the reference) with ``otter run`` takes at
most 2x the time of grading a trivial one-question Otter assignment measured
in the same run, with a peak of at most 768 MiB for the whole grading (RSS
summed over every process of it, sampled every 20 ms: Otter, the kernel,
the package runner, and what they start).

    python bench/grading.py [--homework hw01_ngrams] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import measure_tree, report, shipped_reference  # noqa: E402

from autograder.build.release import find_homeworks, make_submission, release, run_assign  # noqa: E402


def trivial_assignment(tmp: Path) -> tuple[Path, Path]:
    """A one-question Otter assignment (x = 2, test x == 2) and a correct submission."""
    master = tmp / "trivial" / "trivial.ipynb"
    master.parent.mkdir()
    cells = [
        nbformat.v4.new_raw_cell("# ASSIGNMENT CONFIG\nname: trivial\nexport_cell: false\ntests:\n  ok_format: false"),
        nbformat.v4.new_raw_cell("# BEGIN QUESTION\nname: q1\npoints: 1"),
        nbformat.v4.new_raw_cell("# BEGIN SOLUTION"),
        nbformat.v4.new_code_cell("x = 2 # SOLUTION"),
        nbformat.v4.new_raw_cell("# END SOLUTION"),
        nbformat.v4.new_raw_cell("# BEGIN TESTS"),
        nbformat.v4.new_code_cell("def test_x(x):\n    assert x == 2"),
        nbformat.v4.new_raw_cell("# END TESTS"),
        nbformat.v4.new_raw_cell("# END QUESTION"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, master)
    out = tmp / "trivial_dist"
    subprocess.run([sys.executable, "-m", "otter", "assign", "--no-pdfs", str(master), str(out)],
                   check=True, capture_output=True)
    return next((out / "autograder").glob("*.zip")), out / "autograder" / "trivial.ipynb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--homework", default="hw01_ngrams")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        trivial_zip, trivial_nb = trivial_assignment(tmp)
        hw = args.homework
        hw_zip = release(ROOT, [hw], tmp / "dist", verify=False, log=lambda *_: None)[0]
        homework = find_homeworks(ROOT, [hw])[0]
        solution_nb = run_assign(ROOT, homework, tmp / "build") / "autograder" / f"{hw}.ipynb"
        hw_sub = make_submission(solution_nb, shipped_reference(ROOT, homework, tmp / "reference"), tmp / f"{hw}.zip")
        runs = {"trivial": (trivial_zip, trivial_nb), "homework": (hw_zip, hw_sub)}
        times: dict[str, list[float]] = {k: [] for k in runs}
        peaks: dict[str, float] = {k: 0.0 for k in runs}
        for _ in range(args.repeat):
            for label, (ag, sub) in runs.items():  # interleaved, so both see the same machine load
                (tmp / f"out_{label}").mkdir(exist_ok=True)
                seconds, peak, rc = measure_tree([sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(ag),
                                             "-o", str(tmp / f"out_{label}"), str(sub)])
                if rc != 0:
                    raise SystemExit(f"otter run failed for {label}")
                times[label].append(seconds)
                peaks[label] = max(peaks[label], peak)
        trivial, graded = statistics.median(times["trivial"]), statistics.median(times["homework"])
        report(f"grading_{hw}", {"trivial_s": trivial, "homework_s": graded, "ratio": graded / trivial,
                                 "budget_ratio": 2.0, "trivial_tree_peak_mib": peaks["trivial"],
                                 "homework_tree_peak_mib": peaks["homework"], "budget_tree_peak_mib": 768.0,
                                 "repeat": args.repeat})


if __name__ == "__main__":
    main()
