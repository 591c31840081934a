"""Wall time of a homework's student notebook run end to end with the reference package
in a real Jupyter kernel (budget: under 3 minutes on 2 cores).

    python bench/notebook.py [--homework hw01_ngrams ...]   (default: every homework)
"""

from __future__ import annotations

import argparse
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
from autograder.release import find_homeworks, release  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", nargs="*", default=None)
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
            start = time.perf_counter()
            NotebookClient(nb, timeout=600, kernel_name="python3",
                           resources={"metadata": {"path": str(work)}}).execute()
            seconds = time.perf_counter() - start
        report(f"notebook_{hw}", {"seconds": seconds, "budget_s": 180.0})


if __name__ == "__main__":
    main()
