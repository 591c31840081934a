"""Per-homework releases (issue 10, part 1): each homework carries only its own modules, the shared helpers
and its data, and uses nothing else of genai_hw."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder.release import (
    ReleaseError,
    copy_package,
    find_homeworks,
    release_contents,
)
from conftest import HOMEWORKS, HW01, HW02, ROOT, SOLUTIONS


def contents_of(hw: str, root: Path = ROOT):
    return release_contents(root, find_homeworks(root, [hw])[0])


def test_each_homework_carries_its_own_modules_the_helpers_and_its_data():
    hw01, hw02 = contents_of(HW01), contents_of(HW02)
    assert hw01.modules == ["training", "ngrams"] and hw02.modules == ["tokenizer", "embeddings"]
    assert hw01.shared == hw02.shared == ["__init__", "data", "utils"]
    assert hw01.data == ["moby_dick.txt"]
    assert "word2vec_bolukbasi_f16.npz" in hw02.data


def test_copy_package_keeps_only_what_ships(tmp_path):
    dest = copy_package(ROOT / "genai_hw", tmp_path / "genai_hw", contents_of(HW01))
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["__init__.py", "data.py", "data/README.md", "data/moby_dick.txt", "ngrams.py", "training.py",
                     "utils.py"]
    init = (dest / "__init__.py").read_text()
    assert "``ngrams``" in init and "``tokenizer``" not in init and "``embeddings``" not in init
    readme = (dest / "data" / "README.md").read_text()
    assert "## moby_dick.txt" in readme and "word2vec" not in readme


def test_a_missing_data_file_says_where_it_comes_from(tmp_path):
    import importlib.util

    dest = copy_package(SOLUTIONS, tmp_path / "genai_hw", contents_of(HW01))
    spec = importlib.util.spec_from_file_location("hw01_data", dest / "data.py")
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    assert data.load_moby_dick().startswith("CHAPTER") or len(data.load_moby_dick()) > 1_000_000
    with pytest.raises(FileNotFoundError, match="carries only the data files that homework uses"):
        data.load_word_vectors()


@pytest.fixture
def project(tmp_path):
    """A copy of the project's assignments and solutions to break."""
    for folder in ("assignments", "solutions"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_homework_that_imports_another_homeworks_stubs_is_refused(project):
    training = project / "solutions" / "genai_hw" / "training.py"
    training.write_text(training.read_text().replace("import numpy as np\n",
                                                     "import numpy as np\n\nfrom .tokenizer import encode\n", 1))
    with pytest.raises(ReleaseError, match=r"training.py uses genai_hw.tokenizer, which this homework's release "
                                           r"does not ship"):
        contents_of(HW01, project)


def test_a_notebook_that_imports_another_homeworks_module_is_refused(project):
    master = project / "assignments" / HW01 / f"{HW01}.ipynb"
    nb = json.loads(master.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "from genai_hw" in "".join(c["source"]))
    cell["source"] = "from genai_hw.embeddings import analogy\n" + "".join(cell["source"])
    master.write_text(json.dumps(nb))
    with pytest.raises(ReleaseError, match=rf"{HW01}.ipynb uses genai_hw.embeddings"):
        contents_of(HW01, project)


@pytest.mark.parametrize("toml, message", [
    (None, "homework.toml is missing"),
    ("modules = [", "not valid TOML"),
    ('modules = "ngrams"', "expected `modules`"),
    ('modules = ["ngrams", "training"]\nextra = 1', "expected `modules`"),
    ('modules = ["ngramz", "training"]', "'ngramz' is not in solutions/genai_hw/"),
    ('modules = ["ngrams", "training", "utils"]', "'utils' has no exercises"),
    ('modules = ["ngrams", "training", "tokenizer"]', "'tokenizer' holds exercises of hw02"),
    ('modules = ["ngrams", "training"]\ndata = ["moby.txt"]', "data file 'moby.txt' is not in"),
])
def test_a_wrong_homework_toml_gets_a_clear_error(project, toml, message):
    spec = project / "assignments" / HW01 / "homework.toml"
    if toml is None:
        spec.unlink()
    else:
        spec.write_text(toml)
    with pytest.raises(ReleaseError, match=message.replace("(", r"\(").replace("[", r"\[")):
        contents_of(HW01, project)


def test_a_module_belongs_to_one_homework(project):
    """Its BEGIN SOLUTION markers name the homework, so no release carries another homework's stubs."""
    spec = project / "assignments" / HW02 / "homework.toml"
    spec.write_text(spec.read_text().replace('modules = ["tokenizer", "embeddings"]',
                                             'modules = ["tokenizer", "embeddings", "ngrams"]'))
    with pytest.raises(ReleaseError, match="'ngrams' holds exercises of hw01"):
        contents_of(HW02, project)


def test_results_visibility_comes_from_homework_toml(project):
    spec = project / "assignments" / HW01 / "homework.toml"
    assert contents_of(HW01, project).visibility == {"scores": "visible", "details": "visible"}
    spec.write_text(spec.read_text() + '\n[results]\ndetails = "after_due_date"\n')
    assert contents_of(HW01, project).visibility == {"scores": "visible", "details": "after_due_date"}
    spec.write_text(spec.read_text().replace("after_due_date", "tomorrow"))
    with pytest.raises(ReleaseError, match=r"\[results\] takes `scores` and `details`"):
        contents_of(HW01, project)


def test_details_shown_later_than_scores_get_an_entry_of_their_own():
    from autograder.gradescope import present

    tests = [{"name": "Public Tests", "visibility": "visible", "output": "..."},
             {"name": "q1", "score": 1, "max_score": 2, "visibility": "after_published", "output": "otter's"},
             {"name": "q10", "score": 1, "max_score": 1, "visibility": "after_published", "output": "otter's"}]
    report = "q1: 1 of 2 hidden cases passed (9 inputs, seed 5), 1 of 2 points.\n  FAILED: f on input 3: ..."
    same = present([dict(t) for t in tests], {"q1": report}, {"scores": "visible", "details": "visible"})
    assert [(t["name"], t["visibility"]) for t in same] == [("Public Tests", "visible"), ("q1", "visible"),
                                                            ("q10", "visible")]
    assert same[1]["output"] == report and same[2]["output"] == "otter's"
    later = present([dict(t) for t in tests], {"q1": report}, {"scores": "visible", "details": "after_due_date"})
    assert [(t["name"], t["visibility"]) for t in later] == [
        ("Public Tests", "visible"), ("q1", "visible"), ("q1 (details)", "after_due_date"), ("q10", "visible")]
    assert later[1]["output"].startswith("q1: 1 of 2 hidden cases passed")
    assert "after the due date" in later[1]["output"]
    assert "FAILED" not in later[1]["output"] and later[2]["output"] == report and "score" not in later[2]


def test_the_leak_scan_flags_a_helper_that_only_solution_code_uses(tmp_path):
    """A helper outside the regions that does an exercise's work (used only by solution regions) would ship
    in the stub: hw02's vectorised merge once did. The scan refuses it; in a module-level region it is fine."""
    from autograder import stubgen
    from autograder.release import scan_student_release

    solutions = tmp_path / "solutions"
    solutions.mkdir()
    source = ("def _fast_merge(ids):\n    return [i for i in ids if i]\n\n\n"
              "def merge(ids):\n    # BEGIN SOLUTION hw02 q2\n    return _fast_merge(ids)\n    # END SOLUTION\n")
    (solutions / "tokenizer.py").write_text(source)
    master = tmp_path / "master.ipynb"
    master.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    student = tmp_path / "student"
    (student / "genai_hw").mkdir(parents=True)
    (student / "genai_hw" / "tokenizer.py").write_text(stubgen.stub_source(source, "tokenizer"))
    problems = scan_student_release(student, solutions, [], master)
    assert problems == ["genai_hw/tokenizer.py: _fast_merge() is used only by solution code; put it in a "
                        "module-level solution region so the stub leaves it out"]
    fixed = "# BEGIN SOLUTION hw02 q2\n" + source.replace("\n\n\ndef merge", "\n# END SOLUTION\n\n\ndef merge", 1)
    (solutions / "tokenizer.py").write_text(fixed)
    (student / "genai_hw" / "tokenizer.py").write_text(stubgen.stub_source(fixed, "tokenizer"))
    assert scan_student_release(student, solutions, [], master) == []


def test_questions_are_numbered_in_notebook_order(project):
    from autograder.release import question_order

    for hw in HOMEWORKS:
        names = question_order(ROOT / "assignments" / hw / f"{hw}.ipynb")
        assert names == [f"q{i}" for i in range(1, len(names) + 1)]
    master = project / "assignments" / HW01 / f"{HW01}.ipynb"
    text = master.read_text()
    master.write_text(text.replace('"name: q9\\n"', '"name: @\\n"').replace('"name: q10\\n"', '"name: q9\\n"')
                      .replace('"name: @\\n"', '"name: q10\\n"'))
    with pytest.raises(ReleaseError, match=r"questions must be named q1, q2, \.\.\. in notebook order, found q1, "
                                           r"q2, q3, q4, q5, q6, q7, q8, q10, q9, q11"):
        contents_of(HW01, project)


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_written_questions_quote_what_they_cite(hw):
    """Students have the notebook, not the lecture or the primer: a written question that cites them quotes
    the words it relies on."""
    cells = json.loads((ROOT / "assignments" / hw / f"{hw}.ipynb").read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "raw" and "manual: true" in "".join(cell["source"]):
            prompt = "".join(cells[index + 1]["source"])
            assert "lecture video" not in prompt.lower(), prompt[:200]
            for source in ("lecture", "primer"):
                if source in prompt.lower():
                    assert prompt.count('"') >= 2, f"{hw} cell {index + 1} cites the {source} without quoting it"


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_the_notebook_text_names_its_written_questions_by_their_numbers(hw):
    import re

    cells = json.loads((ROOT / "assignments" / hw / f"{hw}.ipynb").read_text())["cells"]
    manual = {int(re.search(r"name: q(\d+)", "".join(c["source"])).group(1)) for c in cells
              if c["cell_type"] == "raw" and "manual: true" in "".join(c["source"])}
    text = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    named = re.findall(r"(?:written answers to|[Qq]uestions) (\d+) and\s+(\d+)", text)
    assert named and all({int(a), int(b)} == manual for a, b in named), (named, manual)
