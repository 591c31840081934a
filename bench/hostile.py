"""How long the most hostile submission takes to grade, on about half a CPU, with the default limits.

The submission's notebook runs a cell that swallows every interrupt, forever,
and every function of its package loops forever while swallowing the
per-call alarm, so each hidden case waits for its watchdog and restarts the
runner. The grading is pinned to CPU 0 with a busy loop beside it there
(about half a CPU, as on Gradescope). The package and the notebook are
graded one after the other, so the documented bound is about
PACKAGE_LIMIT + NOTEBOOK_LIMIT plus Otter's own start and finish; the
budget is 9 minutes (Gradescope's default limit is 10).

    python bench/hostile.py [--homework hw01_ngrams]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import measure_tree, report  # noqa: E402

from autograder.build.release import make_submission, release, score_of  # noqa: E402
from autograder.grading import sandbox  # noqa: E402

SWALLOW_INTERRUPTS = """\
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
"""
HANG_EVERY_FUNCTION = (
    "\n\ndef _hang(*args, **kwargs):\n" + "".join("    " + line + "\n" for line in SWALLOW_INTERRUPTS.splitlines())
    + "\n\nfor _name, _value in list(globals().items()):\n"
    "    if callable(_value) and getattr(_value, '__module__', None) == __name__ and not _name.startswith('_'):\n"
    "        globals()[_name] = _hang\n"
)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", default="hw01_ngrams")
    args = parser.parse_args()
    hw = args.homework
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        zip_path = release(ROOT, [hw], tmp / "dist", verify=False, log=lambda *_: None)[0]
        student = tmp / "dist" / "student" / hw
        package = tmp / "genai_hw"
        shutil.copytree(student / "genai_hw", package)
        for module in package.glob("*.py"):
            module.write_text(module.read_text() + HANG_EVERY_FUNCTION)
        nb = nbformat.read(student / f"{hw}.ipynb", as_version=4)
        nb.cells.insert(1, nbformat.v4.new_code_cell(SWALLOW_INTERRUPTS))
        nbformat.write(nb, tmp / f"{hw}.ipynb")
        upload = make_submission(tmp / f"{hw}.ipynb", package, tmp / "hostile.zip")
        (tmp / "out").mkdir()
        busy = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", "while True: pass"])
        try:
            seconds, peak, rc = measure_tree(["taskset", "-c", "0", sys.executable, "-m", "otter", "run",
                                              "--no-logo", "-a", str(zip_path), "-o", str(tmp / "out"),
                                              str(upload)], env=dict(os.environ))
        finally:
            busy.kill()
        import json

        results = json.loads((tmp / "out" / "results.json").read_text())
        score, possible = score_of(results)
        report(f"hostile_{hw}", {"seconds": seconds, "budget_s": 540.0, "tree_peak_mib": peak, "rc": rc,
                                 "score": score, "possible": possible,
                                 "notebook_limit_s": sandbox.NOTEBOOK_LIMIT, "package_limit_s": sandbox.PACKAGE_LIMIT,
                                 "left_running": len(sandbox.processes_of(uids=set(range(
                                     sandbox.UID_BASE, sandbox.UID_BASE + 2 * sandbox.SLOTS))))})


if __name__ == "__main__":
    main()
