"""Whole-grading memory of every homework: the reference, the stubs and misbehaving uploads; and what
watching student memory costs.

Each upload is graded with ``otter run``; its memory is the RSS summed over the whole process tree (Otter,
the kernel, the package runner and what they start), sampled every 20 ms. Where this machine lets root
make a memory cgroup, each grading also runs inside one of 768 MiB, like Gradescope's default container,
and the cgroup's own peak (page cache included) and OOM kills are printed. Budget: 768 MiB. The
misbehaving uploads are the reference plus one misbehaviour in the package runner or the notebook (see
tests/test_limits.py, which checks the points and messages).

Watching costs: the reference graded ``--repeat`` times with the memory watch sampling every
``WATCH_INTERVAL`` and with it sampling once an hour (so never), alternating; the medians of wall and CPU
seconds (every process of the grading).

    python bench/limits.py [--homework hw01_ngrams ...] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import MemoryCgroup, cpu_seconds, measure_tree, report, shipped_reference  # noqa: E402

from autograder.build.release import find_homeworks, make_submission, release, run_assign  # noqa: E402
from autograder.grading.sandbox import WATCH_INTERVAL  # noqa: E402

IN_RUNNER = "import sys\nif 'ipykernel' not in sys.modules:\n"
PACKAGE_HOG = IN_RUNNER + "    import numpy\n    numpy.ones(3 * 2**30 // 8)\n"
PACKAGE_SWARM_HOG = IN_RUNNER + ("    import subprocess\n    for _ in range(4):\n"
                                 "        subprocess.Popen([sys.executable, '-c', 'b = bytearray(200 * 2**20); "
                                 "import time; time.sleep(60)'], start_new_session=True)\n")
NOTEBOOK_HOG = ("import subprocess, sys, time\nkids = [subprocess.Popen([sys.executable, '-c', "
                "'b = bytearray(300 * 2**20); import time; time.sleep(60)']) for _ in range(4)]\ntime.sleep(20)")
NOTEBOOK_BURST = ("import subprocess, sys, time\ngo = time.time() + 2\nkids = [subprocess.Popen([sys.executable, "
                  "'-c', f'import time; time.sleep(max(0, {go} - time.time())); b = bytearray(300 * 2**20); "
                  "time.sleep(30)']) for _ in range(4)]\ntime.sleep(20)")
PRINT_FLOOD = "for _ in range(200):\n    print('x' * 2**20)"
BUDGET_MIB = 768


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", nargs="*", default=None)
    parser.add_argument("--repeat", type=int, default=5, help="gradings of the reference per watch setting")
    args = parser.parse_args()
    for homework in find_homeworks(ROOT, args.homework):
        hw = homework.name
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            zip_path = release(ROOT, [hw], tmp / "dist", verify=False, log=lambda *_: None)[0]
            solution_nb = run_assign(ROOT, homework, tmp / "build") / "autograder" / f"{hw}.ipynb"
            reference = shipped_reference(ROOT, homework, tmp / "reference")  # what an upload of it carries
            uploads = {
                "reference": (solution_nb, reference, None, None),
                "stubs": (tmp / "dist" / "student" / hw / f"{hw}.ipynb", tmp / "dist" / "student" / hw / "genai_hw",
                          None, None),
                "package_hog": (solution_nb, reference, None, PACKAGE_HOG),
                "package_swarm_hog": (solution_nb, reference, None, PACKAGE_SWARM_HOG),
                "notebook_hog": (solution_nb, reference, NOTEBOOK_HOG, None),
                "notebook_burst": (solution_nb, reference, NOTEBOOK_BURST, None),
                "print_flood": (solution_nb, reference, PRINT_FLOOD, None),
            }
            figures: dict[str, float] = {}
            commands: dict[str, list[str]] = {}
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
                command = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(zip_path),
                           "-o", str(folder / "out"), str(upload)]
                commands[label] = command
                cgroup = MemoryCgroup(BUDGET_MIB)
                boxed = cgroup.available()
                try:
                    seconds, peak, _ = measure_tree(command, wrap=cgroup.wrap if boxed else None)
                    figures[f"{label}_tree_peak_mib"] = peak
                    if boxed:
                        figures[f"{label}_cgroup_peak_mib"] = cgroup.peak_mib() or float("nan")
                        figures[f"{label}_oom_kills"] = cgroup.oom_kills()
                    figures[f"{label}_s"] = seconds
                finally:
                    cgroup.remove()
            runs: dict[str, list[tuple[float, float]]] = {"watched": [], "unwatched": []}
            for _ in range(args.repeat):
                for mode, interval in (("watched", WATCH_INTERVAL), ("unwatched", 3600.0)):
                    env = {**os.environ, "GENAI_HW_WATCH_INTERVAL": str(interval)}
                    runs[mode].append(cpu_seconds(commands["reference"], env=env))
            for mode, values in runs.items():
                figures[f"reference_{mode}_wall_s"] = statistics.median(v[0] for v in values)
                figures[f"reference_{mode}_cpu_s"] = statistics.median(v[1] for v in values)
            figures["watch_cost_cpu_pct"] = 100 * (figures["reference_watched_cpu_s"]
                                                   / figures["reference_unwatched_cpu_s"] - 1)
            figures["watch_cost_wall_pct"] = 100 * (figures["reference_watched_wall_s"]
                                                    / figures["reference_unwatched_wall_s"] - 1)
            report(f"limits_{hw}", {**figures, "budget_mib": float(BUDGET_MIB)})


if __name__ == "__main__":
    main()
