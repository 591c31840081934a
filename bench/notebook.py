"""Wall time of a homework's student notebook run end to end with the reference package
in a real Jupyter kernel (budget: under 3 minutes on 2 cores, hw05 and hw06 5 minutes), and its slowest cells.

    python bench/notebook.py [--homework hw01_ngrams ...] [--keep DIR] [--cells N]

``--keep DIR`` saves each executed notebook (outputs and plots) as ``DIR/<hw>.ipynb``; ``--cells N``
prints the N slowest cells (default 5) with their first line. Measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from autograder.build.release import find_homeworks, release  # noqa: E402
from autograder.grading import timeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", nargs="*", default=None)
    parser.add_argument("--keep", type=Path, default=None, help="save the executed notebooks here")
    parser.add_argument("--cells", type=int, default=5, help="how many of the slowest cells to print")
    args = parser.parse_args()
    for homework in find_homeworks(ROOT, args.homework):
        hw = homework.name
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            release(ROOT, [hw], tmp / "dist", verify=False, log=lambda *_: None)
            work = tmp / "work"
            shutil.copytree(tmp / "dist" / "student" / hw, work)
            shutil.rmtree(work / "genai_hw")
            shutil.copytree(ROOT / "solutions" / "genai_hw", work / "genai_hw")
            nb = nbformat.read(work / f"{hw}.ipynb", as_version=4)
            client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=True,
                                    resources={"metadata": {"path": str(work)}})
            start = time.perf_counter()
            client.execute()
            seconds = time.perf_counter() - start
        cells = [(end - start, index, first[:70]) for start, end, index, first in timeline.cell_times(nb)]
        for took, index, first in sorted(cells, reverse=True)[: args.cells]:
            print(f"  {hw} cell {index}: {took:6.1f} s  {first}", file=sys.stderr)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, args.keep / f"{hw}.ipynb")
        budget = 300.0 if hw.startswith(("hw05", "hw06")) else 180.0
        report(f"notebook_{hw}", {"seconds": seconds, "budget_s": budget, "cpus": len(os.sched_getaffinity(0))})


if __name__ == "__main__":
    main()
