"""Whole-tree peak memory of a grading, for every homework: the reference, the stubs and misbehaving uploads.

Each upload is graded with ``otter run``; its memory is the RSS summed over the whole process tree (Otter,
the kernel, the package runner and what they start), sampled every 20 ms. Budget: 768 MiB (Gradescope's
default container). The misbehaving uploads are the reference plus one misbehaviour in the package runner
or the notebook (see tests/test_limits.py, which checks the points and messages).

    python bench/limits.py [--homework hw01_ngrams ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import measure_tree, report  # noqa: E402

from autograder.release import find_homeworks, make_submission, release, run_assign  # noqa: E402

IN_RUNNER = "import sys\nif 'ipykernel' not in sys.modules:\n"
PACKAGE_HOG = IN_RUNNER + "    import numpy\n    numpy.ones(3 * 2**30 // 8)\n"
PACKAGE_SWARM_HOG = IN_RUNNER + ("    import subprocess\n    for _ in range(4):\n"
                                 "        subprocess.Popen([sys.executable, '-c', 'b = bytearray(200 * 2**20); "
                                 "import time; time.sleep(60)'], start_new_session=True)\n")
NOTEBOOK_HOG = ("import subprocess, sys, time\nkids = [subprocess.Popen([sys.executable, '-c', "
                "'b = bytearray(300 * 2**20); import time; time.sleep(60)']) for _ in range(4)]\ntime.sleep(20)")
PRINT_FLOOD = "for _ in range(200):\n    print('x' * 2**20)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", nargs="*", default=None)
    args = parser.parse_args()
    for homework in find_homeworks(ROOT, args.homework):
        hw = homework.name
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            zip_path = release(ROOT, [hw], tmp / "dist", verify=False, log=lambda *_: None)[0]
            solution_nb = run_assign(ROOT, homework, tmp / "build") / "autograder" / f"{hw}.ipynb"
            uploads = {
                "reference": (solution_nb, ROOT / "solutions" / "genai_hw", None, None),
                "stubs": (tmp / "dist" / "student" / hw / f"{hw}.ipynb", ROOT / "genai_hw", None, None),
                "package_hog": (solution_nb, ROOT / "solutions" / "genai_hw", None, PACKAGE_HOG),
                "package_swarm_hog": (solution_nb, ROOT / "solutions" / "genai_hw", None, PACKAGE_SWARM_HOG),
                "notebook_hog": (solution_nb, ROOT / "solutions" / "genai_hw", NOTEBOOK_HOG, None),
                "print_flood": (solution_nb, ROOT / "solutions" / "genai_hw", PRINT_FLOOD, None),
            }
            figures: dict[str, float] = {}
            for label, (notebook, package, cell, init_code) in uploads.items():
                folder = tmp / label
                folder.mkdir()
                nb = nbformat.read(notebook, as_version=4)
                if cell:
                    nb.cells.insert(1, nbformat.v4.new_code_cell(cell))
                nbformat.write(nb, folder / notebook.name)
                shutil.copytree(package, folder / "genai_hw", ignore=shutil.ignore_patterns("__pycache__"))
                if init_code:
                    init = folder / "genai_hw" / "__init__.py"
                    init.write_text(init.read_text() + "\n" + init_code)
                upload = make_submission(folder / notebook.name, folder / "genai_hw", folder / "upload.zip")
                (folder / "out").mkdir()
                seconds, peak, _ = measure_tree([sys.executable, "-m", "otter", "run", "--no-logo", "-a",
                                                 str(zip_path), "-o", str(folder / "out"), str(upload)])
                figures[f"{label}_tree_peak_mib"] = peak
                figures[f"{label}_s"] = seconds
            report(f"limits_{hw}", {**figures, "budget_tree_peak_mib": 768.0})


if __name__ == "__main__":
    main()
