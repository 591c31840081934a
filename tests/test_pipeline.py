"""The whole path, for real: otter assign -> release -> submissions graded by otter run."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.build.release import (
    find_homeworks,
    make_submission,
    otter_run,
    release_contents,
    scan_student_release,
    score_of,
)
from autograder.grading.harness import load_cases
from conftest import BROKEN_BY, HW01, HW02, ROOT, SOLUTIONS, STUBS, planted_bugs, shipped

pytestmark = pytest.mark.slow
PACKAGE_QUESTIONS = [f"q{i}" for i in range(1, 9)]


def per_question(results: dict) -> dict[str, tuple[float, float]]:
    return {t["name"]: (t["score"], t["max_score"]) for t in results["tests"] if "max_score" in t}


def with_extra_cell(notebook: Path, source: str, dest: Path, position: int = 1) -> Path:
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.insert(position, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, dest)
    return dest


def test_release_verified_reference_and_stubs(released):
    messages = "\n".join(released["messages"])
    assert "reference submission scores 20/20" in messages
    assert "stubs submission scores 0/20" in messages
    assert (released["out"] / "student" / f"{HW01}.zip").is_file()
    with zipfile.ZipFile(released["zip"]) as zf:
        names = zf.namelist()
    assert "autograder/grading/plugin.py" in names and "genai_hw_grading/hidden_cases.py" in names
    assert "genai_hw_grading/reference/genai_hw/ngrams.py" in names
    # Per-homework: hw01's reference, student folder and zip carry nothing of hw02.
    reference = {n for n in names if n.startswith("genai_hw_grading/reference/")}
    assert reference == {f"genai_hw_grading/reference/genai_hw/{m}.py"
                         for m in ("__init__", "data", "utils", "training", "ngrams")}
    assert not any(n.startswith("genai_hw_grading/data/") for n in names)  # hw01's cases load no data file
    config = json.loads(zipfile.ZipFile(released["zip"]).read("otter_config.json"))
    assert "autograder.grading.plugin.GenaiHwGrader" in config["plugins"]
    env = zipfile.ZipFile(released["zip"]).read("environment.yml").decode()
    assert "python=3.11" in env and "numpy==2.4.6" in env


def test_student_release_has_no_solution_hidden_test_or_reference(released):
    student = released["student"]
    cases = [c.name for c in load_cases(ROOT / "assignments" / HW01 / "hidden_cases.py")]
    master = ROOT / "assignments" / HW01 / f"{HW01}.ipynb"
    assert scan_student_release(student, SOLUTIONS, cases, master) == []
    files = {p.relative_to(student).as_posix() for p in student.rglob("*") if p.is_file()}
    assert f"{HW01}.ipynb" in files and "genai_hw/ngrams.py" in files and "requirements.txt" in files
    assert {f for f in files if f.startswith("genai_hw/")} == {
        "genai_hw/__init__.py", "genai_hw/data.py", "genai_hw/utils.py", "genai_hw/training.py",
        "genai_hw/ngrams.py", "genai_hw/data/README.md", "genai_hw/data/moby_dick.txt"}
    assert (released["out"] / "student" / f"{HW01}.zip").stat().st_size < 2 * 2**20
    assert not any("hidden_cases" in f or "reference" in f for f in files)
    with zipfile.ZipFile(released["out"] / "student" / f"{HW01}.zip") as zf:
        assert {f"{HW01}/{f}" for f in files} == set(zf.namelist())


def test_leak_scan_has_teeth(tmp_path):
    """The scan flags the master notebook, the reference package and a hidden case name."""
    cases = [c.name for c in load_cases(ROOT / "assignments" / HW01 / "hidden_cases.py")]
    master = ROOT / "assignments" / HW01 / f"{HW01}.ipynb"
    shutil.copy(master, tmp_path / master.name)
    shutil.copytree(SOLUTIONS, tmp_path / "genai_hw")
    (tmp_path / "notes.md").write_text(f"see {cases[0]}")
    problems = "\n".join(scan_student_release(tmp_path, SOLUTIONS, cases, master))
    assert "solution marker" in problems and "solution code" in problems
    assert "hidden test" in problems and "names hidden case" in problems


def test_planted_bugs_cost_exactly_the_questions_they_break(released, solution_notebook, tmp_path):
    bugs = ["q2", "q6", "q8"]
    submission = make_submission(solution_notebook, planted_bugs(tmp_path, bugs), tmp_path / "bugs.zip")
    results = otter_run(released["zip"], submission, tmp_path / "out")
    scores = per_question(results)
    broken = set().union(*(BROKEN_BY[q] for q in bugs))
    for q, (got, possible) in scores.items():
        if q in broken:
            assert got < possible, f"{q} should lose points"
        else:
            assert got == possible, f"{q} lost points: {got}/{possible}"
    total, possible = score_of(results)
    assert 0 < total < possible
    assert any(0 < got < possible for q, (got, possible) in scores.items() if q in broken), "no partial credit"
    q2 = next(t for t in results["tests"] if t["name"] == "q2")
    assert "on input" in q2["output"] and "expected" in q2["output"] and "got" in q2["output"]
    assert "re.sub" not in q2["output"]  # no reference code in messages
    # Each package question explains itself: how many hidden cases ran and passed, by kind, with the seed.
    seed = re.search(r"seed (\d+)", results["output"]).group(1)
    for q in ("q2", "q3"):
        test = next(t for t in results["tests"] if t["name"] == q)
        cases = [c for c in load_cases(ROOT / "assignments" / HW01 / "hidden_cases.py") if c.question == q]
        passed = len(cases) if q == "q3" else sum("FAILED" not in line for line in test["output"].splitlines()
                                                  if line.startswith("  ") and ":" in line)
        assert test["output"].startswith(f"{q}: {passed} of {len(cases)} hidden cases passed (")
        assert f"seed {seed})" in test["output"].splitlines()[0]
        assert "Edge cases (the same inputs at every grading" in test["output"]
        assert "Random inputs (new at every grading" in test["output"]
        assert test["visibility"] == "visible"
    assert "FAILED: normalize" in q2["output"] and "passed: char_ngram_counts" in next(
        t for t in results["tests"] if t["name"] == "q3")["output"]


def test_same_seed_replays_the_same_cases(released, solution_notebook, tmp_path):
    submission = make_submission(solution_notebook, planted_bugs(tmp_path, ["q8"]), tmp_path / "bug.zip")
    first = otter_run(released["zip"], submission, tmp_path / "a", seed=424242)
    second = otter_run(released["zip"], submission, tmp_path / "b", seed=424242)
    assert "made from seed 424242" in first["output"] and first["extra_data"]["genai_hw"]["seed"] == 424242
    q8 = [[t["output"] for t in r["tests"] if t["name"] == "q8"][0] for r in (first, second)]
    assert q8[0] == q8[1] and "on input" in q8[0]


def test_notebook_only_upload_gets_a_clear_message(released, solution_notebook, tmp_path):
    notebook = shutil.copy(solution_notebook, tmp_path / f"{HW01}.ipynb")
    results = otter_run(released["zip"], Path(notebook), tmp_path / "out")
    assert "no genai_hw/ folder" in results["output"]
    scores = per_question(results)
    assert all(scores[q][0] == 0 for q in PACKAGE_QUESTIONS)
    assert all("no genai_hw/ folder" in t["output"] for t in results["tests"] if t["name"] in PACKAGE_QUESTIONS)


TAMPER = '''
import glob, os, pathlib, pickle, sys
here = pathlib.Path.cwd()
# 1. read the reference from the grader's files (it must be gone by now)
leak = list(here.parent.glob("source/genai_hw_grading/reference/**/*.py"))
leak += glob.glob("/tmp/*/autograder/source/genai_hw_grading/reference/**/*.py", recursive=True)
pathlib.Path({report!r}).write_text(str(len(leak)))
# 2. overwrite the stubs on disk with working code
(here / "genai_hw" / "ngrams.py").write_text({ngrams!r})
(here / "genai_hw" / "training.py").write_text({training!r})
# 3. make Otter's own process run code when it reads the results
class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/genai_hw_tamper_pwned",))
_dump = pickle.dump
pickle.dump = lambda obj, f, *a, **k: _dump(Payload(), f)
'''


def test_notebook_cannot_tamper_with_package_grading(released, solution_notebook, tmp_path):
    reports = Path(tempfile.mkdtemp(prefix="genai-hw-tamper-"))
    reports.chmod(0o777)  # the kernel may run as another user
    found = reports / "found_reference"
    for marker in ("/tmp/genai_hw_tamper_pwned", found):
        Path(marker).unlink(missing_ok=True)
    source = TAMPER.format(report=str(found), ngrams=(SOLUTIONS / "ngrams.py").read_text(),
                           training=(SOLUTIONS / "training.py").read_text())
    notebook = with_extra_cell(solution_notebook, source, tmp_path / f"{HW01}.ipynb")
    submission = make_submission(notebook, shipped(HW01, STUBS), tmp_path / "tamper.zip")
    results = otter_run(released["zip"], submission, tmp_path / "out")
    assert not Path("/tmp/genai_hw_tamper_pwned").exists(), "Otter's process ran the notebook's payload"
    assert found.read_text() == "0"
    shutil.rmtree(reports)
    scores = per_question(results)
    assert all(scores[q][0] == 0 for q in PACKAGE_QUESTIONS), scores
    assert scores["q9"] == (1, 1)  # the kernel reports JSON now: a patched pickle changes nothing


def test_dying_kernel_still_gives_results(released, solution_notebook, tmp_path):
    notebook = with_extra_cell(solution_notebook, "import os\nos._exit(1)", tmp_path / f"{HW01}.ipynb", position=5)
    submission = make_submission(notebook, shipped(HW01), tmp_path / "dies.zip")
    results = otter_run(released["zip"], submission, tmp_path / "out")
    scores = per_question(results)
    assert all(scores[q][0] == scores[q][1] for q in PACKAGE_QUESTIONS), scores
    assert scores["q9"][0] == 0
    assert "could not be graded" in results["output"]


def test_grader_python_called_through_a_private_link(released, solution_notebook, tmp_path):
    """``. .venv/bin/activate`` in a private checkout (as root, .venv links to an environment outside it):
    Otter's kernel spec names that path, which student users cannot follow; the kernel still starts."""
    private = tmp_path / "checkout"
    private.mkdir(mode=0o700)
    (private / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    submission = make_submission(solution_notebook, shipped(HW01), tmp_path / "ok.zip")
    shutil.copyfile(released["zip"], private / "autograder.zip")
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([str(private / ".venv" / "bin" / "python"), "-m", "otter", "run", "--no-logo", "-a",
                           str(private / "autograder.zip"), "-o", str(out), str(submission)],
                          cwd=private, capture_output=True, text=True, timeout=600)
    results = json.loads((out / "results.json").read_text())
    assert "could not be graded" not in results["output"], results["output"]
    assert per_question(results)["q9"] == (1, 1), proc.stdout[-2000:]
    public = next(t for t in results["tests"] if t["name"] == "Public Tests")
    assert "the notebook could not be run" not in public["output"]


@pytest.fixture(scope="module")
def graded_class(released, solution_notebook, tmp_path_factory):
    """``genai-hw grade --jobs 2`` on a small class: a perfect upload, the stubs, a broken zip, an upload with
    planted bugs and one whose notebook hangs past ``--timeout``."""
    tmp = tmp_path_factory.mktemp("class")
    subs = tmp / "subs"
    subs.mkdir()
    make_submission(solution_notebook, shipped(HW01), subs / "alice.zip")
    make_submission(released["notebook"], shipped(HW01, STUBS), subs / "bob.zip")
    (subs / "carol.zip").write_bytes(b"this is not a zip file")
    make_submission(solution_notebook, planted_bugs(tmp / "dave", ["q2", "q8"]), subs / "dave.zip")
    hanging = with_extra_cell(solution_notebook, "import time\ntime.sleep(300)", tmp / f"{HW01}.ipynb")
    make_submission(hanging, shipped(HW01), subs / "erin.zip")
    proc = subprocess.run([sys.executable, "-m", "autograder.build.cli", "grade", "--autograder", str(released["zip"]),
                           str(subs), "--out", str(tmp / "grades"), "--jobs", "2", "--timeout", "45"],
                          capture_output=True, text=True, cwd=ROOT)
    return proc, tmp / "grades"


def test_grade_command_table_csv_and_progress(graded_class):
    proc, grades = graded_class
    assert proc.returncode == 1, proc.stderr  # carol's broken upload and erin's hang are reported, not fatal
    with open(grades / "grades.csv") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    assert list(rows) == ["alice.zip", "bob.zip", "carol.zip", "dave.zip", "erin.zip"]  # the folder's order
    assert float(rows["alice.zip"]["score"]) == 20 and float(rows["alice.zip"]["q7"]) == 3
    assert float(rows["bob.zip"]["score"]) == 0 and rows["bob.zip"]["seed"].isdigit()
    assert rows["carol.zip"]["error"]
    dave = {q: float(rows["dave.zip"][q]) for q in ("q1", "q2", "q8")}
    assert dave["q2"] < 2 and dave["q8"] < 3 and dave["q1"] == 2
    assert "did not finish within 45 s" in rows["erin.zip"]["error"]
    assert float(rows["erin.zip"]["seconds"]) >= 45 > float(rows["alice.zip"]["seconds"]) > 0  # the whole otter run
    assert float(rows["erin.zip"]["q1"]) == 2  # graded before the notebook hung: kept
    assert all(Path(row["results"]).is_file() for row in rows.values())
    assert "alice.zip" in proc.stdout and "percent" in proc.stdout and "report.html" in proc.stdout
    assert "grading 5 submission(s), 2 at a time" in proc.stderr
    progress = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 5 and progress[-1].startswith("[5/5] 100.0%") and "ETA 0:00:00" in progress[-1]


def test_a_clean_grading_explains_itself_and_warns_of_nothing(graded_class):
    """alice's perfect upload, from the class above: no warning in Otter's log, a report per question."""
    _, grades = graded_class
    results = json.loads((grades / "001_alice" / "results.json").read_text())
    assert score_of(results)[0] == score_of(results)[1]
    log = (grades / "001_alice" / "otter_run.log").read_text()
    assert "differs from logged score" not in log and "No log found" not in log
    assert "warn" not in log.lower() and "error" not in log.lower() and "Traceback" not in log, log[-2000:]
    q1 = next(t for t in results["tests"] if t["name"] == "q1")
    assert q1["output"].startswith("q1: 2 of 2 hidden cases passed") and "FAILED" not in q1["output"]
    # the student reads only what helps them; the grader's housekeeping is in the instructor's log and record
    student_text = json.dumps([results.get("output"), results["tests"]])
    for housekeeping in ("OTTER_LOG", "GENAI_HW_SEED", "replay", "isolated", "No log found"):
        assert housekeeping not in student_text, housekeeping
    seed = results["extra_data"]["genai_hw"]["seed"]
    assert f"graded on random inputs made from seed {seed}" in results["output"]
    assert any("OTTER_LOG" in note for note in results["extra_data"]["genai_hw"]["notes"])
    assert f"GENAI_HW_SEED={seed}" in log


def test_a_grading_records_where_its_time_went(graded_class):
    """results.json's timeline: every step of a clean grading, in the order they happen, and its slowest cells
    (Otter's own first cell among them) with their first line."""
    _, grades = graded_class
    timeline = json.loads((grades / "001_alice" / "results.json").read_text())["extra_data"]["genai_hw"]["timeline"]
    steps = [step for step, _ in timeline["steps"]]
    offsets = [at for _, at in timeline["steps"]]
    assert timeline["at"] > 1.7e9 and offsets == sorted(offsets) and offsets[0] == 0
    assert len(steps) == len(set(steps)), steps  # a clean grading starts each process once
    for before, after in [("otter", "sandbox"), ("sandbox", "inputs"), ("snapshot", "student.launched"),
                          ("student.launched", "student.libraries"), ("student.libraries", "student.ready"),
                          ("student.ready", "student.cases"), ("reference.launched", "reference.ready"),
                          ("reference.cases", "judged"), ("student.cases", "judged"), ("judged", "package"),
                          ("package", "kernel_dir"), ("executor", "kernel.ready"), ("kernel.ready", "cells.first"),
                          ("cells.first", "cells.last"), ("cells.last", "notebook"), ("notebook", "otter_checks"),
                          ("otter_checks", "merged")]:
        assert steps.index(before) < steps.index(after), (before, after, steps)
    cells = timeline["cells"]
    assert 0 < len(cells) <= 8 and [c[0] for c in cells] == sorted((c[0] for c in cells), reverse=True)
    assert any(first.startswith("from otter import Notebook") for _, _, first in cells), cells
    assert sum(seconds for seconds, _, _ in cells) <= offsets[steps.index("cells.last")] - offsets[
        steps.index("cells.first")] + 0.01


def test_the_report_renders_in_a_real_browser(graded_class):
    """The HTML report opened in headless Chromium: its charts are drawn, its tables filled, its links work."""
    browser_path = shutil.which("chromium")
    if browser_path is None:
        pytest.skip("no chromium here (`apt-get install chromium`; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    _, grades = graded_class
    report = grades / "report.html"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(report.as_uri())
        charts = page.locator("svg.chart")
        assert charts.count() == 1 + 9  # the totals and q1..q9
        heights = page.eval_on_selector_all("svg.chart rect.bar", "rects => rects.map(r => r.getBBox().height)")
        assert len(heights) >= 10 and max(heights) > 50
        assert page.locator("svg.chart").first.bounding_box()["width"] > 300  # laid out, not collapsed
        rows = page.locator("table.submissions tr")
        assert rows.count() == 1 + 5
        assert rows.nth(1).inner_text().startswith("alice.zip")
        failures = page.locator("table.failures").all_inner_texts()
        assert any("normalize" in t and "edge cases" in t for t in failures), failures
        assert any("perplexity" in t for t in failures), failures
        assert "carol.zip" in page.locator("ul.errors").inner_text()
        timing = page.locator("table.timing tr")  # where grading time went: the whole run and each phase
        assert timing.count() == 1 + 3
        assert timing.nth(1).inner_text().split("\t")[-1] == "erin.zip"  # the hung notebook, stopped at 45 s
        href = page.locator("table.submissions a").first.get_attribute("href")
        assert json.loads((grades / href).read_text())["tests"]
        page.goto((grades / href).resolve().as_uri())
        assert '"tests"' in page.content()
        browser.close()


def test_hw02_release_verified_and_clean(release_of):
    released = release_of(HW02)
    messages = "\n".join(released["messages"])
    assert "reference submission scores 25/25" in messages and "stubs submission scores 0/25" in messages
    with zipfile.ZipFile(released["zip"]) as zf:
        names = zf.namelist()
        env = zf.read("environment.yml").decode()
    assert "genai_hw_grading/data/word2vec_bolukbasi_f16.npz" in names
    assert not any(n.startswith("genai_hw_grading/reference/genai_hw/data/") for n in names)
    assert "gensim==4.4.0" in env
    cases = [c.name for c in load_cases(ROOT / "assignments" / HW02 / "hidden_cases.py")]
    master = ROOT / "assignments" / HW02 / f"{HW02}.ipynb"
    assert scan_student_release(released["student"], SOLUTIONS, cases, master) == []
    package = {p.relative_to(released["student"]).as_posix() for p in (released["student"] / "genai_hw").rglob("*")
               if p.is_file()}
    assert "genai_hw/tokenizer.py" in package and "genai_hw/data/word2vec_bolukbasi_f16.npz" in package
    assert "genai_hw/ngrams.py" not in package and "genai_hw/training.py" not in package


TORCH_HOMEWORKS = {
    # points, the modules the reference carries, files the release ships, files it must not ship
    "hw03_gans_vaes": (15, ("gan", "vae"), {"genai_hw/gan.py", "genai_hw/vae.py", "genai_hw/data/digits_8x8.npz"},
                       {"genai_hw/ngrams.py", "genai_hw/tokenizer.py", "genai_hw/data/word2vec_bolukbasi_f16.npz"}),
    "hw04_diffusion": (22, ("diffusion",), {"genai_hw/diffusion.py", "genai_hw/data/grace_hopper_64.npz",
                                            "genai_hw/data/digits_8x8.npz"},
                       {"genai_hw/gan.py", "genai_hw/ngrams.py", "genai_hw/data/word2vec_bolukbasi_f16.npz"}),
    # homework 1's code (its normalize and perplexity) is not shipped: the text and the n-gram figures come as data
    "hw05_transformers": (24, ("attention", "sampling"),
                          {"genai_hw/attention.py", "genai_hw/sampling.py", "genai_hw/data/moby_dick_27.txt",
                           "genai_hw/data/tiny_gpt_moby.npz"},
                          {"genai_hw/ngrams.py", "genai_hw/diffusion.py", "genai_hw/data/moby_dick.txt",
                           "genai_hw/data/word2vec_bolukbasi_f16.npz"}),
    # homework 5's modules given solved: in the student folder and in the reference
    "hw06_fine_tuning": (19, ("finetune", "attention", "sampling"),
                         {"genai_hw/finetune.py", "genai_hw/attention.py", "genai_hw/sampling.py",
                          "genai_hw/data/moby_dick_27.txt", "genai_hw/data/tiny_gpt_moby.npz"},
                         {"genai_hw/ngrams.py", "genai_hw/diffusion.py", "genai_hw/data/moby_dick.txt",
                          "genai_hw/data/word2vec_bolukbasi_f16.npz"}),
}


@pytest.mark.parametrize("hw", sorted(TORCH_HOMEWORKS))
def test_torch_homework_release_verified_and_clean(release_of, hw):
    points, modules, shipped, absent = TORCH_HOMEWORKS[hw]
    released = release_of(hw)
    messages = "\n".join(released["messages"])
    assert f"reference submission scores {points}/{points}" in messages
    assert f"stubs submission scores 0/{points}" in messages
    cases = [c.name for c in load_cases(ROOT / "assignments" / hw / "hidden_cases.py")]
    master = ROOT / "assignments" / hw / f"{hw}.ipynb"
    given = release_contents(ROOT, find_homeworks(ROOT, [hw])[0]).given
    assert scan_student_release(released["student"], SOLUTIONS, cases, master, given) == []
    package = {p.relative_to(released["student"]).as_posix() for p in (released["student"] / "genai_hw").rglob("*")
               if p.is_file()}
    assert shipped <= package and not package & absent
    with zipfile.ZipFile(released["zip"]) as zf:
        reference = {n for n in zf.namelist() if n.startswith("genai_hw_grading/reference/")}
        requirements = zf.read("environment.yml").decode()  # Otter puts the pip requirements there
    assert reference == {f"genai_hw_grading/reference/genai_hw/{m}.py" for m in ("__init__", "data", "utils",
                                                                                  *modules)}
    # The CPU build: PyPI's plain torch would pull gigabytes of CUDA libraries into the grading image.
    assert "- torch==2.13.0+cpu" in requirements
    assert "- --extra-index-url https://download.pytorch.org/whl/cpu" in requirements
    assert "diffusers" not in requirements  # the oracle of the project's tests, not part of grading
