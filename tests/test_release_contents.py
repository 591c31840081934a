"""Per-homework releases (issue 10, part 1): each homework carries only its own modules, the shared helpers
and its data, and uses nothing else of genai_hw."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from autograder.build import stubgen
from autograder.build.release import (
    ReleaseError,
    build_autograder,
    build_student,
    copy_package,
    find_homeworks,
    given_notice,
    release_contents,
    scan_student_release,
)
from conftest import HOMEWORKS, HW01, HW02, HW05, ROOT, SOLUTIONS, STUBS

HW06 = "hw06_fine_tuning"


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
    from autograder.grading.gradescope import present

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
    from autograder.build import stubgen
    from autograder.build.release import scan_student_release

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
    from autograder.build.release import question_order

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


# Given modules: homework 6 hands out homework 5's attention.py and sampling.py solved -------------------------


@pytest.fixture
def hw06(project):
    """Homework 6 in the project copy, its real homework.toml with a stand-in for its notebook and hidden cases
    (so that these tests check the given modules alone): one cell that imports its module and a given one."""
    folder = project / "assignments" / HW06
    source = "from genai_hw.attention import TinyGPT\nfrom genai_hw.finetune import apply_lora\n"
    (folder / f"{HW06}.ipynb").write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (folder / "hidden_cases.py").write_text("CASES = []\n")
    return find_homeworks(project, [HW06])[0]


def fake_assign(homework, tmp: Path) -> Path:
    """What ``otter assign`` leaves that build_student and build_autograder read: the student notebook and
    Otter's autograder zip (here with empty files)."""
    out = tmp / "assign"
    (out / "student").mkdir(parents=True)
    (out / "autograder").mkdir()
    shutil.copy(homework.master, out / "student" / homework.master.name)
    with zipfile.ZipFile(out / "autograder" / f"{homework.name}-autograder_2025.zip", "w") as zf:
        for name in ("otter_config.json", "run_otter.py", "setup.sh"):
            zf.writestr(name, "{}" if name.endswith(".json") else "")
    return out


def without_markers(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines()
            if not (stubgen.BEGIN.match(line) or stubgen.END.match(line))]


def test_homework_6_gives_homework_5s_modules(project, hw06):
    contents = release_contents(project, hw06)
    assert contents.modules == ["finetune"] and list(contents.given) == ["attention", "sampling"]
    assert contents.ships("attention") and contents.ships("sampling") and not contents.ships("ngrams")
    assert given_notice(project, hw06, contents) == (
        "hw06_fine_tuning hands out homework 5's solutions (genai_hw/attention.py, genai_hw/sampling.py): "
        "release it after hw05 is due.")
    hw05 = contents_of(HW05)
    assert hw05.modules == ["attention", "sampling"] and hw05.given == {}
    assert given_notice(ROOT, find_homeworks(ROOT, [HW05])[0], hw05) is None


def test_given_modules_count_as_shipped(project, hw06):
    """finetune.py and the notebook import attention, which homework 6 ships only because it gives it."""
    spec = hw06.spec_file
    spec.write_text(spec.read_text().replace('given = ["attention", "sampling"]\n', ""))
    with pytest.raises(ReleaseError, match=r"solutions/genai_hw/finetune.py uses genai_hw.attention, which this "
                                           r"homework's release does not ship"):
        release_contents(project, hw06)


@pytest.mark.parametrize("given, message", [
    ('"attention"', "`given` is 'attention', not a list of names"),
    ('["attention", 5]', "`given` is ['attention', 5], not a list of names"),
    ('["attenshun"]', "given module 'attenshun' is not in solutions/genai_hw/"),
    ('["utils"]', "given module 'utils' has no exercises"),
    ('["attention", "finetune"]', "module 'finetune' is in both `modules` and `given`"),
])
def test_a_wrong_given_gets_a_clear_error(project, hw06, given, message):
    spec = hw06.spec_file
    spec.write_text(spec.read_text().replace('given = ["attention", "sampling"]', f"given = {given}"))
    with pytest.raises(ReleaseError, match=message.replace("(", r"\(").replace("[", r"\[")):
        release_contents(project, hw06)


def test_only_an_earlier_homeworks_module_can_be_given(project):
    spec = project / "assignments" / HW05 / "homework.toml"
    spec.write_text(spec.read_text() + 'given = ["finetune"]\n')
    with pytest.raises(ReleaseError, match=r"given module 'finetune' holds exercises of hw06 \(its BEGIN SOLUTION "
                                           r"markers\), not only of homeworks before hw05_transformers"):
        contents_of(HW05, project)


def test_release_says_it_hands_out_homework_5s_solutions_before_anything_else(project, hw06, monkeypatch):
    import autograder.build.release as release_module

    (project / "genai_hw").symlink_to(STUBS)

    def stop(*args):
        raise ReleaseError("stopped before otter assign")

    monkeypatch.setattr(release_module, "run_assign", stop)
    messages: list[str] = []
    with pytest.raises(ReleaseError, match="stopped before otter assign"):
        release_module.release(project, [HW06], project / "dist", log=messages.append)
    assert messages == ["hw06_fine_tuning hands out homework 5's solutions (genai_hw/attention.py, "
                        "genai_hw/sampling.py): release it after hw05 is due."]


@pytest.fixture
def hw06_student(project, hw06, tmp_path):
    contents = release_contents(project, hw06)
    return build_student(ROOT, hw06, fake_assign(hw06, tmp_path), tmp_path / "dist", contents), contents


def test_the_student_folder_has_the_given_modules_solved_and_its_own_stubbed(hw06_student):
    student, contents = hw06_student
    for module in ("attention", "sampling"):
        text = (student / "genai_hw" / f"{module}.py").read_text()
        assert text.startswith(f"# Given in this homework: homework 5's solution of {module}.py (its questions "
                               "are not graded here).\n")
        assert "SOLUTION" not in text and "NotImplementedError(\n" not in text
        assert text.splitlines()[2:] == without_markers(SOLUTIONS / f"{module}.py")
        assert text == contents.given[module]
        compile(text, f"{module}.py", "exec")
    assert (student / "genai_hw" / "finetune.py").read_text() == (STUBS / "finetune.py").read_text()
    assert "raise NotImplementedError(" in (student / "genai_hw" / "finetune.py").read_text()
    with zipfile.ZipFile(student.parent / f"{HW06}.zip") as zf:
        assert zf.read(f"{HW06}/genai_hw/attention.py").decode() == contents.given["attention"]


def test_homework_5s_student_folder_still_stubs_its_modules(tmp_path):
    dest = copy_package(STUBS, tmp_path / "genai_hw", contents_of(HW05))
    for module in ("attention", "sampling"):
        assert (dest / f"{module}.py").read_text() == (STUBS / f"{module}.py").read_text()
    assert not (dest / "finetune.py").exists()


def test_the_leak_scan_allows_the_given_solutions_and_nothing_of_homework_6(hw06, hw06_student):
    student, contents = hw06_student
    assert scan_student_release(student, SOLUTIONS, [], hw06.master, contents.given) == []
    unaware = "\n".join(scan_student_release(student, SOLUTIONS, [], hw06.master))
    assert "genai_hw/attention.py: solution code" in unaware  # what `given` allows
    finetune = (SOLUTIONS / "finetune.py").read_text()
    leak = next(line.strip() for number, line in enumerate(finetune.splitlines(), start=1)
                if number in stubgen.region_lines(finetune) and len(line.strip()) >= 25
                and not stubgen.BEGIN.match(line) and not stubgen.END.match(line))
    for module in ("attention", "finetune"):
        path = student / "genai_hw" / f"{module}.py"
        clean = path.read_text()
        path.write_text(clean + f"\n\ndef planted(x):\n    {leak}\n")
        problems = scan_student_release(student, SOLUTIONS, [], hw06.master, contents.given)
        assert problems == [f"genai_hw/{module}.py: solution code ({leak[:60]!r})"]
        path.write_text(clean)


def test_the_autograder_carries_the_given_modules_and_homework_5s_nothing_of_homework_6(project, hw06, tmp_path):
    contents = release_contents(project, hw06)
    zip_path = build_autograder(project, hw06, fake_assign(hw06, tmp_path / "6"), {}, [], tmp_path / "6", contents)
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("genai_hw_grading/manifest.json"))
        assert {n for n in names if n.startswith("genai_hw_grading/reference/")} == {
            f"genai_hw_grading/reference/genai_hw/{m}.py"
            for m in ("__init__", "data", "utils", "finetune", "attention", "sampling")}
        assert manifest["given"] == ["attention", "sampling"]
        for module in ("attention", "sampling"):
            assert zf.read(f"genai_hw_grading/given/{module}.py").decode() == contents.given[module]
    hw05 = find_homeworks(ROOT, [HW05])[0]
    zip_path = build_autograder(ROOT, hw05, fake_assign(hw05, tmp_path / "5"), {}, [], tmp_path / "5",
                                contents_of(HW05))
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        assert "given" not in json.loads(zf.read("genai_hw_grading/manifest.json"))
    assert not any("finetune" in n or n.startswith("genai_hw_grading/given/") for n in names)
    assert "genai_hw_grading/reference/genai_hw/attention.py" in names


def test_the_grader_puts_the_given_copy_over_whatever_was_uploaded(tmp_path):
    from autograder.grading.plugin import put_given

    given, package = tmp_path / "given", tmp_path / "genai_hw"
    given.mkdir()
    package.mkdir()
    for module in ("attention", "sampling", "tokenizer"):
        (given / f"{module}.py").write_text(f"# the {module} handed out\n")
    (package / "attention.py").write_text("def softmax(x):\n    return x  # edited\n")
    (package / "sampling.py").mkdir()
    (package / "sampling.py" / "x.py").write_text("")
    (package / "tokenizer.py").write_text("# the tokenizer handed out\n")
    notes = put_given(package, given, ["attention", "sampling", "tokenizer"])
    assert [note.split(" is given")[0] for note in notes] == ["genai_hw/attention.py", "genai_hw/sampling.py"]
    assert all(note.endswith("not the one you uploaded.") for note in notes)
    for module in ("attention", "sampling", "tokenizer"):
        assert (package / f"{module}.py").read_text() == f"# the {module} handed out\n"
    (package / "attention.py").unlink()
    assert put_given(package, given, ["attention"]) == [
        "genai_hw/attention.py is given in this homework (an earlier homework's solution): your package and "
        "notebook were graded with the autograder's copy of it (your upload has none)."]


def test_a_submission_is_graded_with_the_given_modules_whatever_it_uploaded(project, hw06, hw06_student, tmp_path,
                                                                           monkeypatch):
    """A student who exported from an old homework 5 folder (attention.py a stub) and lost sampling.py: the
    plugin grades the package and runs the notebook with the autograder's copies, and says so."""
    import otter.execute.preprocessor

    from autograder.grading.plugin import GenaiHwGrader
    from autograder.grading.sandbox import Sandbox

    student, contents = hw06_student
    zip_path = build_autograder(project, hw06, fake_assign(hw06, tmp_path / "ag"), {"q1": 2, "q8": 2}, [],
                                tmp_path / "ag", contents)
    source = tmp_path / "run" / "source"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(source, [n for n in zf.namelist() if n.startswith("genai_hw_grading/")])
    # Homework 5's cases of one function of each given module stand in for homework 6's.
    cases = ROOT / "assignments" / HW05 / "hidden_cases.py"
    (source / "genai_hw_grading" / "hidden_cases.py").write_text(
        "from pathlib import Path\n\nfrom autograder.grading.harness import load_cases\n\n"
        f"CASES = [c for c in load_cases(Path({str(cases)!r})) if c.question in ('q1', 'q8')]\n")
    submission = tmp_path / "run" / "submission"
    shutil.copytree(student, submission)
    shutil.copy(STUBS / "attention.py", submission / "genai_hw" / "attention.py")
    (submission / "genai_hw" / "sampling.py").unlink()

    monkeypatch.setenv("GENAI_HW_SEED", "7")
    monkeypatch.setenv("GENAI_HW_DATA_DIR", "")  # set by the grading session: restored afterwards
    monkeypatch.setattr(otter.execute.preprocessor, "EXPORT_CELL_SOURCE",
                        otter.execute.preprocessor.EXPORT_CELL_SOURCE)  # set by _prepare_kernel_dir
    grader = GenaiHwGrader(str(submission / f"{HW06}.ipynb"), {}, {})
    grader.sandbox = Sandbox()
    try:
        grader._grade_package()
        grader._prepare_kernel_dir()
        in_kernel = {m: path.read_text() if (path := grader.kernel_dir / "genai_hw" / f"{m}.py").is_file() else None
                     for m in ("attention", "sampling")}
    finally:
        grader.sandbox.close()
    assert grader.error is None
    assert {r.case.question for r in grader.case_results} == {"q1", "q8"}
    assert [(r.case.name, r.message) for r in grader.case_results if not r.passed] == []
    assert in_kernel == {m: contents.given[m] for m in ("attention", "sampling")}
    assert sum("is given in this homework" in note for note in grader.notes) == 2
