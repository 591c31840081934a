"""Batch grading: ``genai-hw grade --jobs 1`` against ``--jobs 2`` on the same 8 submissions.

The submissions are the reference (three in four) and the stubs, for hw01. Budget:
``--jobs 2`` at least 1.4x faster than ``--jobs 1`` on a 2-core machine. Also prints the peak memory of the
whole batch's process tree (two gradings at a time) next to 2 x 768 MiB.

    python bench/batch.py [--homework hw01_ngrams] [--count 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import measure_tree, report  # noqa: E402

from autograder.build.release import (  # noqa: E402
    copy_package,
    find_homeworks,
    make_submission,
    release,
    release_contents,
    run_assign,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", default="hw01_ngrams")
    parser.add_argument("--count", type=int, default=8)
    args = parser.parse_args()
    homework = find_homeworks(ROOT, [args.homework])[0]
    contents = release_contents(ROOT, homework)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        zip_path = release(ROOT, [homework.name], tmp / "dist", verify=False, log=lambda *_: None)[0]
        solution_nb = run_assign(ROOT, homework, tmp / "build") / "autograder" / f"{homework.name}.ipynb"
        student_nb = tmp / "dist" / "student" / homework.name / f"{homework.name}.ipynb"
        reference = copy_package(ROOT / "solutions" / "genai_hw", tmp / "reference" / "genai_hw", contents)
        stubs = tmp / "dist" / "student" / homework.name / "genai_hw"
        subs = tmp / "subs"
        subs.mkdir()
        for i in range(args.count):
            if i % 4 == 1:
                make_submission(student_nb, stubs, subs / f"s{i:02d}.zip")
            else:
                make_submission(solution_nb, reference, subs / f"s{i:02d}.zip")
        figures: dict[str, float] = {}
        for jobs in (1, 2):
            seconds, peak, rc = measure_tree([sys.executable, "-m", "autograder.build.cli", "grade", "--autograder",
                                              str(zip_path), str(subs), "--out", str(tmp / f"grades{jobs}"),
                                              "--jobs", str(jobs)])
            figures[f"jobs{jobs}_s"] = seconds
            figures[f"jobs{jobs}_tree_peak_mib"] = peak
        figures["speedup"] = figures["jobs1_s"] / figures["jobs2_s"]
        report(f"batch_{homework.name}", {"submissions": args.count, **figures, "speedup_budget": 1.4,
                                          "jobs2_peak_budget_mib": 2 * 768.0})


if __name__ == "__main__":
    main()
