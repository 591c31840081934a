"""The genai-hw command answers bad input with a clear message and exit code 2."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def genai_hw(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder.build.cli", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_stubs_check_passes_on_a_clean_checkout():
    proc = genai_hw("stubs", "--check")
    assert proc.returncode == 0 and "up to date" in proc.stdout


def test_unknown_homework():
    proc = genai_hw("release", "hw99_nothing")
    assert proc.returncode == 2 and "unknown homework" in proc.stderr and "hw01_ngrams" in proc.stderr


def test_missing_autograder_zip(tmp_path):
    sub = tmp_path / "a.zip"
    sub.write_bytes(b"")
    proc = genai_hw("grade", "--autograder", str(tmp_path / "nope.zip"), str(sub))
    assert proc.returncode == 2 and "no such autograder zip" in proc.stderr


def test_folder_without_submissions(tmp_path):
    ag = tmp_path / "ag.zip"
    ag.write_bytes(b"")
    proc = genai_hw("grade", "--autograder", str(ag), str(tmp_path / "empty_dir_missing"))
    assert proc.returncode == 2 and "not a .zip" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = genai_hw("grade", "--autograder", str(ag), str(tmp_path / "empty"))
    assert proc.returncode == 2 and "no submissions" in proc.stderr


def test_root_outside_a_checkout(tmp_path):
    proc = genai_hw("--root", str(tmp_path), "stubs", "--check", cwd=tmp_path)
    assert proc.returncode == 2 and "project root" in proc.stderr


def test_gpu_grader_script_parses_and_keeps_its_environment_out_of_the_checkout():
    import os

    script = ROOT / "scripts" / "gpu_grader.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if os.geteuid() == 0:  # as root the environment must not be readable through the checkout
        proc = subprocess.run(["bash", str(script), str(ROOT / ".venv-gpu")], capture_output=True, text=True)
        assert proc.returncode == 2 and "outside the checkout" in proc.stderr
        assert not (ROOT / ".venv-gpu").exists()
