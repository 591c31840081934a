"""The grading image runs what the tests ran, and the autograder zip is self-contained."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib.metadata import version

import pytest

from autograder.build.release import make_submission
from conftest import HW01, ROOT, shipped


def test_grading_pins_are_the_tested_versions():
    files = [ROOT / "autograder" / "requirements-grading.txt", *sorted(ROOT.glob("assignments/*/requirements.txt"))]
    lines = [line.strip() for path in files for line in path.read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line and not line.startswith(("#", "--")))
    assert pins, "the grading image pins nothing"
    for package, pinned in pins.items():
        assert version(package) == pinned, f"{package}: tests ran on {version(package)}, the image pins {pinned}"
    assert version("otter-grader") == "7.0.0"


def test_master_notebooks_pin_this_python():
    for master in (ROOT / "assignments").glob("*/*.ipynb"):
        config = "".join(json.loads(master.read_text())["cells"][0]["source"])
        assert "# ASSIGNMENT CONFIG" in config
        assert f'python_version: "{sys.version_info.major}.{sys.version_info.minor}"' in config, master.name
        assert "autograder.grading.plugin.GenaiHwGrader" in config, master.name


GRADESCOPE = """
import sys
# As on Gradescope: run_otter.py's folder (/autograder/source) is first on sys.path,
# and this project is not installed.
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path = [p for p in sys.path if p and p.rstrip("/") != "{root}"]
sys.path.insert(0, "{source}")
from otter.run.run_autograder import main
main("{ag}")
import autograder.grading.plugin
print("PLUGIN FROM", autograder.grading.plugin.__file__)
"""


@pytest.mark.slow
def test_autograder_zip_grades_in_gradescopes_layout(released, solution_notebook, tmp_path):
    """Unpacked as Gradescope does (/autograder/source, /autograder/submission), the zip
    grades a submission with the plugin it carries, not with an installed copy."""
    ag = tmp_path / "autograder"
    for sub in ("source", "submission", "results"):
        (ag / sub).mkdir(parents=True)
    zipfile.ZipFile(released["zip"]).extractall(ag / "source")
    zipfile.ZipFile(make_submission(solution_notebook, shipped(HW01), tmp_path / "s.zip")).extractall(ag / "submission")
    (ag / "submission_metadata.json").write_text("{}")
    script = GRADESCOPE.format(root=ROOT, source=ag / "source", ag=ag)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"PLUGIN FROM {ag / 'source' / 'autograder' / 'grading' / 'plugin.py'}" in proc.stdout
    results = json.loads((ag / "results" / "results.json").read_text())
    scores = {t["name"]: (t["score"], t["max_score"]) for t in results["tests"] if "max_score" in t}
    assert all(got == possible for got, possible in scores.values()) and len(scores) == 9
    assert not (ag / "source" / "genai_hw_grading" / "reference").exists()
    assert f"{HW01}" in json.loads((ag / "source" / "otter_config.json").read_text())["assignment_name"]
