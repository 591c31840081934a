"""Grading time of the reference as a normal user (student code in namespaces) against root (student users).

Budget (issue 23): the normal user's grading of a homework's reference submission takes at most 1.5x the
root grading's, measured in the same run, alternately, on the same machine. Run as root: the normal user is
uid 1234, dropped to with ``setpriv`` (no account needed).

    python bench/laptop.py [--homework hw01_ngrams] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import shipped_reference  # noqa: E402

from autograder.build.release import find_homeworks, make_submission, release, run_assign, score_of  # noqa: E402
from autograder.grading.sandbox import resolve_folders  # noqa: E402

USER = 1234


def otter_run(zip_path: Path, upload: Path, folder: Path, as_user: bool) -> float:
    """Seconds one ``otter run`` of ``upload`` takes, as root or as ``USER`` (in ``folder``, owned by it)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(zip_path, folder / "ag.zip")
    shutil.copy(upload, folder / "sub.zip")
    shutil.copytree(ROOT / "autograder", folder / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "tmp").mkdir()
    python = resolve_folders(sys.executable)  # not through a private checkout's .venv link
    env = {"HOME": str(folder), "TMPDIR": str(folder / "tmp"), "PATH": f"{Path(python).parent}:/usr/bin:/bin",
           "LANG": "C.UTF-8", "PYTHONPATH": str(folder)}
    command = ["env", "-i", *[f"{k}={v}" for k, v in env.items()], python, "-m", "otter", "run",
               "--no-logo", "-a", "ag.zip", "-o", str(folder), "sub.zip"]
    if as_user:
        subprocess.run(["chown", "-R", f"{USER}:{USER}", str(folder)], check=True)
        command = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", *command]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    results = folder / "results.json"
    if proc.returncode != 0 or not results.is_file():
        raise SystemExit(f"otter run failed ({'normal user' if as_user else 'root'}):\n{proc.stdout[-2000:]}"
                         f"\n{proc.stderr[-2000:]}")
    record = json.loads(results.read_text())
    isolation = record["extra_data"]["genai_hw"]["isolation"]
    want = "namespaces" if as_user else "users"
    score, possible = score_of(record)
    if isolation != want or score != possible:
        raise SystemExit(f"expected a full score in {want}, got {score}/{possible} in {isolation}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", default="hw01_ngrams")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it compares root's gradings with a normal user's (setpriv to uid 1234)")
    with tempfile.TemporaryDirectory(prefix="genai-hw-bench-laptop-") as tmp:
        tmp_path = Path(tmp)
        os.chmod(tmp_path, 0o755)
        zip_path = release(ROOT, [args.homework], tmp_path / "dist", verify=False)[0]
        homework = find_homeworks(ROOT, [args.homework])[0]
        solution = run_assign(ROOT, homework, tmp_path / "assign") / "autograder" / homework.master.name
        upload = make_submission(solution, shipped_reference(ROOT, homework, tmp_path / "reference"),
                                 tmp_path / "reference.zip")
        times: dict[str, list[float]] = {"root": [], "normal user": []}
        for _ in range(args.repeat):
            times["root"].append(otter_run(zip_path, upload, tmp_path / "root", as_user=False))
            times["normal user"].append(otter_run(zip_path, upload, tmp_path / "user", as_user=True))
        for label, values in times.items():
            print(f"{args.homework} reference, {label:11s}: median {statistics.median(values):6.2f} s  "
                  f"({', '.join(f'{v:.2f}' for v in values)})")
        ratio = statistics.median(times["normal user"]) / statistics.median(times["root"])
        print(f"normal user / root: {ratio:.2f}x (budget 1.5x) {'OK' if ratio <= 1.5 else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
