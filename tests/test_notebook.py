"""The student notebook, executed in a real Jupyter kernel, as released."""

from __future__ import annotations

import ast
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import notebook_hw03
import pytest
from nbclient import NotebookClient

from autograder.build.release import copy_package, find_homeworks, release_contents
from conftest import HOMEWORKS, HW01, HW02, HW04, HW05, HW06, ROOT, SOLUTIONS, STUBS, package_questions

pytestmark = pytest.mark.slow


def execute(released, package: Path, workdir: Path) -> nbformat.NotebookNode:
    """Run the released notebook with the homework's part of ``package`` (what a student's folder holds)."""
    shutil.copytree(released["student"], workdir)
    shutil.rmtree(workdir / "genai_hw")
    copy_package(package, workdir / "genai_hw", release_contents(ROOT, find_homeworks(ROOT, [released["hw"]])[0]))
    nb = nbformat.read(workdir / f"{released['hw']}.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def errors(nb) -> list[tuple[int, str, str]]:
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append((index, output["ename"], output["evalue"]))
    return found


def outputs_text(cell) -> str:
    return "".join(o.get("text", "") or "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_runs_end_to_end_with_the_reference(release_of, hw, tmp_path):
    nb = execute(release_of(hw), SOLUTIONS, tmp_path / "ref")
    assert errors(nb) == []
    warned = [(i, o["text"][:300]) for i, cell in enumerate(nb.cells) for o in cell.get("outputs", [])
              if o.get("output_type") == "stream" and o.get("name") == "stderr" and "Warning" in o.get("text", "")]
    assert warned == [], f"the notebook's own code warns: {warned}"
    checks = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("grader.check("):
            question = cell.source.split('"')[1]
            checks[question] = outputs_text(cell)
    for question in package_questions(hw):
        assert "passed" in checks[question] and "failed" not in checks[question], (question, checks[question])
    export = list((tmp_path / "ref").glob(f"{hw}*.zip"))
    assert len(export) == 1, "the export cell made no zip"
    names = zipfile.ZipFile(export[0]).namelist()
    contents = release_contents(ROOT, find_homeworks(ROOT, [hw])[0])
    modules = [*contents.modules, *contents.given]
    assert f"{hw}.ipynb" in names and all(f"genai_hw/{m}.py" in names for m in modules)
    assert {n.split("/")[1] for n in names if n.startswith("genai_hw/") and n.count("/") == 1} == {
        f"{m}.py" for m in ["__init__", "data", "utils", *modules]}
    printed = "".join(outputs_text(c) for c in nb.cells)
    if hw == HW01:
        assert "w = 1.9" in printed or "w = 2.0" in printed  # the primer's line is recovered
    elif hw == HW02:
        assert "father" in printed and "your" in printed  # the lecture's analogies
    elif hw == HW04:
        assert "the loop's last frame equals sample()'s output: True" in printed, printed[-3000:]
        near = re.search(r"(\d+) % of the samples lie within 0\.3 of a centre; samples near each centre: \[([\d, ]+)\]",
                         printed)
        assert near and int(near.group(1)) >= 80, printed[-3000:]  # the denoiser learned the ring
        assert min(int(n) for n in near.group(2).split(",")) >= 100, near.group(0)  # and every one of its 8 modes
        # the walk down as the text tells it: a disk at level 30, the ring's hole open at level 15
        hole = dict(re.findall(r"level (\d+) (\d+) %", printed.split("points in the ring's hole")[1].splitlines()[0]))
        assert int(hole["100"]) >= 30 and 5 <= int(hole["30"]) <= 20 and int(hole["15"]) <= 2, hole
    elif hw == HW05:
        # the shipped checkpoint measured in the notebook, next to homework 1's n-grams: the soft lookup wins
        compared = re.search(r"held-out perplexity per character: TinyGPT ([\d.]+), best n-gram \(N = (\d)\) ([\d.]+)",
                             printed)
        assert compared, printed[-3000:]
        assert abs(float(compared.group(1)) - 3.71) < 0.01 and compared.group(2) == "5", compared.group(0)
        assert float(compared.group(1)) < float(compared.group(3)), compared.group(0)
        for temperature in ("0", "0.7", "1.2"):
            line = rf"temperature {re.escape(temperature)}: THIS IS THE Q[A-Z ]{{150,}}"
            assert re.search(line, printed), temperature
        assert "D x V = 12,288 x 100,277 = 1,232,203,776 numbers, 4.93 GB in float32" in printed  # real sizes
        # the student's own CPU model, against the same held-out text as the n-gram tables: what the text says
        yours = re.search(r"all 117,421 held-out characters: yours ([\d.]+), the shipped model's 3\.71; homework 1's "
                          r"n-gram tables 6\.53 \(N = 3\), 4\.67 \(N = 4\), 4\.12 \(N = 5\)", printed)
        assert yours and 4.12 < float(yours.group(1)) < 5.0, printed[-3000:]
        # unseen contexts: 27 by construction without backoff; with backoff the table comes close to TinyGPT
        unseen = re.search(r"27\.00 \(1/27 for every symbol, by construction\); TinyGPT's is ([\d.]+)", printed)
        backoff = re.search(r"backs off to the longest context it saw scores ([\d.]+) there", printed)
        assert unseen and backoff and float(unseen.group(1)) < float(backoff.group(1)) < 27, printed[-3000:]
    elif hw == HW06:
        check_fine_tuning_run(nb, printed)
    else:
        notebook_hw03.check_reference_run(nb, printed)


def check_fine_tuning_run(nb, printed: str) -> None:
    """Homework 6's CPU run shows what its texts say: the runs' table, forgetting, the merge, the cost table."""
    before = re.search(r"the pretrained model: ([\d.]+) on the new held-out text, ([\d.]+) on Moby-Dick's", printed)
    assert before and float(before.group(1)) > float(before.group(2)), printed[-3000:]
    rows = {m.group(1).strip(): (int(m.group(2).replace(",", "")), float(m.group(3)), float(m.group(4)))
            for m in re.finditer(r"^ *(full fine-tune|LoRA r = \d+|full, lr = 1e-4) +([\d,]+) +[\d.]+% +[\d.]+ +"
                                 r"([\d.]+) +([\d.]+)$", printed, re.M)}
    assert set(rows) == {"full fine-tune", "LoRA r = 1", "LoRA r = 4", "LoRA r = 16", "full, lr = 1e-4"}, rows
    assert [rows[r][0] for r in ("LoRA r = 1", "LoRA r = 4", "LoRA r = 16")] == [5_120, 20_480, 81_920]
    learned = [rows[r][1] for r in ("full fine-tune", "LoRA r = 16", "LoRA r = 4", "LoRA r = 1")]
    forgot = [rows[r][2] for r in ("full fine-tune", "LoRA r = 16", "LoRA r = 4", "LoRA r = 1")]
    pretrained_new, pretrained_moby = float(before.group(1)), float(before.group(2))
    # the text: at one learning rate, the more that trains, the further a run learns and the more it forgets
    assert learned == sorted(learned) and max(learned) < pretrained_new, rows
    assert forgot == sorted(forgot, reverse=True) and min(forgot) > pretrained_moby, rows
    assert rows["full, lr = 1e-4"][2] < min(forgot), rows  # the fifth run forgets less than any LoRA run
    quoted = "".join(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("The figures"))
    for number in re.findall(r"\b\d\.\d\d\b", quoted):
        assert number in printed, f"the text quotes {number}, which the run did not print"
    assert printed.count("with B = 0 the output equals the base's exactly: True") == 3
    merged = re.findall(r"largest difference of the logits ([\d.e+-]+); held-out perplexity ([\d.]+) adapted, "
                        r"([\d.]+) merged", printed)
    assert len(merged) == 3 and all(float(d) < 1e-4 and a == b for d, a, b in merged), merged
    assert printed.count("x 4 bytes: True") == 2  # the cost table's measured bytes: AdamW's step counters apart
    assert re.search(r"full fine-tune, float32 +28\.00 +28\.00 +56\.00 +112\.00 +no", printed)

@pytest.mark.parametrize("hw", HOMEWORKS)
def test_with_stubs_fails_only_with_not_implemented(release_of, hw, tmp_path):
    nb = execute(release_of(hw), STUBS, tmp_path / "stubs")
    found = errors(nb)
    assert found, "the stubs raised nothing"
    lost: set[str] = set()  # names a NotImplementedError cell never got to assign
    for index, name, value in found:
        if name == "NotImplementedError":
            assert "is not written yet" in value
            code = "\n".join(line for line in nb.cells[index].source.splitlines() if not line.startswith("%"))
            tree = ast.parse(code)
            lost |= {t.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.For))
                     for t in ast.walk(node.targets[0] if isinstance(node, ast.Assign) else node.target)
                     if isinstance(t, ast.Name)}
        else:
            assert name == "NameError", (index, name, value)
            missing = value.split("'")[1]
            assert missing in lost, f"cell {index}: {value} is not a knock-on of a stub"
            lost.add(missing)
            tree = ast.parse(nb.cells[index].source)
            lost |= {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                     for t in ast.walk(node.targets[0]) if isinstance(t, ast.Name)}
