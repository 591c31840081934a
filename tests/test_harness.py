"""The hidden-case harness: reference 100 %, stubs 0, bugs cost exactly their questions,
and hostile code costs only its own cases."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from autograder.grading.harness import PACKAGE_MISSING, grade_cases, load_cases
from conftest import (
    BROKEN_BY,
    BUGS,
    HW01,
    ROOT,
    SOLUTIONS,
    STUBS,
    assert_costs_exactly,
    case_scores,
    plant,
    planted_bugs,
    shipped,
)

CASES = load_cases(ROOT / "assignments" / HW01 / "hidden_cases.py")


@pytest.mark.parametrize("seed", [0, 1, 987654321])
def test_reference_passes_every_case(reference, seed):
    results = grade_cases(CASES, shipped(HW01), shipped(HW01), seed)
    failed = [(r.case.name, r.message) for r in results if not r.passed]
    assert failed == []


def test_stubs_fail_every_case_with_their_message(reference):
    results = grade_cases(CASES, shipped(HW01, STUBS), shipped(HW01), 5)
    assert all(not r.passed for r in results)
    assert all("NotImplementedError" in r.message and "is not written yet" in r.message for r in results)


def test_missing_package_says_so(reference):
    results = grade_cases(CASES, None, shipped(HW01), 5)
    assert all(r.message == PACKAGE_MISSING for r in results)


@pytest.mark.parametrize("question", sorted(BUGS))
def test_planted_bug_costs_exactly_its_question(reference, tmp_path, question):
    package = planted_bugs(tmp_path, [question])
    assert_costs_exactly(grade_cases(CASES, package, shipped(HW01), 11), BROKEN_BY[question], question)


def test_same_seed_same_inputs_new_seed_new_inputs(reference):
    from autograder.grading.harness import case_seed

    case = CASES[3]
    first = case.inputs(case_seed(1, case))
    assert [c.args for c in case.inputs(case_seed(1, case))] == [c.args for c in first]
    assert [c.args for c in case.inputs(case_seed(2, case))] != [c.args for c in first]


HOSTILE = {
    # an infinite loop in one exercise
    "loop": ("ngrams", "    return re.sub(r\"[^A-Z]+\", \" \", text.upper())",
             "    while True:\n        pass"),
    # an infinite loop that swallows the timeout
    "stubborn": ("ngrams", "    return re.sub(r\"[^A-Z]+\", \" \", text.upper())",
                 "    while True:\n        try:\n            while True:\n                pass\n"
                 "        except BaseException:\n            pass"),
    # kills its own process
    "exit": ("ngrams", "    context_totals: Counter[str] = Counter()", "    import os\n    os._exit(3)"),
    # returns an object that claims to equal anything
    "liar": ("ngrams", "    words = list(words)",
             "    class Liar(dict):\n        def __eq__(self, other):\n            return True\n    return Liar()"),
    # tries to reach the reference and the grader's memory
    "snoop": ("training", "    w, b = 0.0, 0.0",
              "    import genai_hw_reference  # noqa: F401\n    w, b = 0.0, 0.0"),
    # forges a result for a later case (q8) on every descriptor, without the runner's key
    "forger": ("ngrams", "    return re.sub(r\"[^A-Z]+\", \" \", text.upper())",
               "    import os\n    for fd in range(1, 16):\n        try:\n"
               "            os.write(fd, b'{\"event\":\"done\",\"case\":18,\"calls\":[]}\\t00\\n')\n"
               "        except OSError:\n            pass\n    return re.sub(r\"[^A-Z]+\", \" \", text.upper())"),
    # a number too large for a float: judging it must not raise (it used to cost every question)
    "overflow": ("ngrams", "    return math.exp(-log_sum / positions)", "    return 10**400"),
    # an int too long even to write as text, and a container nested past the wire's depth
    "unwritable": ("ngrams", "    return math.exp(-log_sum / positions)",
                   "    if positions % 2:\n        return 10**5000\n    nested = []\n    for _ in range(100):\n"
                   "        nested = [nested]\n    return nested"),
    # one huge allocation (3 GB): stopped at once by the process's data limit
    "hog": ("ngrams", "    return math.exp(-log_sum / positions)",
            "    import numpy\n    return float(numpy.ones(3 * 2**30 // 8).sum())"),
    # children that each stay under the per-process limit but together go over the role's memory
    "swarm_hog": ("ngrams", "    return math.exp(-log_sum / positions)",
                  "    import subprocess, sys, time\n"
                  "    code = 'b = bytearray(250 * 2**20); import time; time.sleep(30)'\n"
                  "    children = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(3)]\n"
                  "    time.sleep(10)\n    return 1.0"),
    # floods stdout
    "noisy": ("ngrams", "    total = sum(followers.values())",
              "    print('x' * 100000)\n    total = sum(followers.values())"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_code_costs_only_its_own_cases(reference, tmp_path, kind):
    module, old, new = HOSTILE[kind]
    package = plant(tmp_path, {module: [(old, new)]}, source=shipped(HW01))
    # Short per-call timeouts keep the test fast; the mechanism is the same.
    from dataclasses import replace

    cases = [replace(c, timeout=0.5) for c in CASES]
    start = time.monotonic()
    results = grade_cases(cases, package, shipped(HW01), 3)
    elapsed = time.monotonic() - start
    broken = {"loop": "q2", "stubborn": "q2", "exit": "q8", "liar": "q4", "snoop": "q1",
              "noisy": None, "forger": None, "overflow": "q8", "unwritable": "q8", "hog": "q8",
              "swarm_hog": "q8"}[kind]
    per_question = case_scores(results)
    for q, (got, possible) in per_question.items():
        if q == broken:
            assert got == 0, f"{kind}: {q} should score 0"
        else:
            lost = [r.message for r in results if r.case.question == q and not r.passed]
            assert got == possible, f"{kind}: {q} lost points: {lost}"
    messages = " ".join(r.message for r in results if not r.passed)
    if kind in ("loop", "stubborn"):
        assert "did not finish" in messages and elapsed < 20
    if kind == "exit":
        assert "ended during this case" in messages
    if kind == "snoop":
        assert "ModuleNotFoundError" in messages
    if kind in ("hog", "swarm_hog"):
        assert "MiB of memory" in messages, messages
    if kind in ("overflow", "unwritable"):
        assert "internal grader error" not in messages and "could not be judged" not in messages


def test_edge_case_messages_do_not_show_expected_values(reference, tmp_path):
    """A table of answers learned from failure messages gains nothing: for a fixed input (the same at
    every run) the message shows the input and what came back; random inputs also show the expected value."""
    package = plant(tmp_path, {"ngrams": [('    return re.sub(r"[^A-Z]+", " ", text.upper())',
                                           '    return "WRONG"')]}, source=shipped(HW01))
    results = {r.case.name: r for r in grade_cases(CASES, package, shipped(HW01), 21)}
    fixed, random = results["normalize_edge_cases"], results["normalize_random_text"]
    assert not fixed.passed and "WRONG" in fixed.message and "CALL ME ISHMAEL" not in fixed.message
    assert "expected" not in fixed.message.split(":", 2)[-1].split("(")[0]
    assert not random.passed and "expected" in random.message


@pytest.mark.slow  # 40 runners: the full package imports torch (gan, vae) in each
@pytest.mark.parametrize("package", ["reference", "bugs"])
def test_twenty_regrades_give_the_same_scores(reference, tmp_path, package):
    """Every grading draws new random inputs; a correct and a consistently buggy submission still get the
    same score every time."""
    folder = shipped(HW01) if package == "reference" else planted_bugs(tmp_path, ["q6", "q8"])
    totals = {tuple(sorted(case_scores(grade_cases(CASES, folder, shipped(HW01), seed)).items())) for seed in range(20)}
    assert len(totals) == 1, totals


def test_reference_is_loaded_under_its_own_name(reference):
    import sys

    assert reference.__name__ == "genai_hw_reference"
    assert "genai_hw_reference.ngrams" in sys.modules
    assert Path(sys.modules["genai_hw_reference.ngrams"].__file__).parent == SOLUTIONS


CUDA_OOM = {
    # q1: fills 60 % of the GPU, then asks for twice the GPU: torch.OutOfMemoryError costs this case
    "training": [("    w, b = 0.0, 0.0",
                  "    import torch\n    total = torch.cuda.get_device_properties(0).total_memory\n"
                  "    held = torch.empty(int(total * 0.6), dtype=torch.uint8, device='cuda')\n"
                  "    torch.empty(2 * total, dtype=torch.uint8, device='cuda')\n    w, b = 0.0, 0.0")],
    # q8 (a later case, same runner): finds the GPU's cache empty and can take 60 % of it again
    "ngrams": [("    return math.exp(-log_sum / positions)",
                "    import torch\n    total = torch.cuda.get_device_properties(0).total_memory\n"
                "    assert torch.cuda.memory_reserved() < total * 0.1, torch.cuda.memory_reserved()\n"
                "    held = torch.empty(int(total * 0.6), dtype=torch.uint8, device='cuda')\n"
                "    del held\n    return math.exp(-log_sum / positions)")],
}


@pytest.mark.gpu
def test_cuda_out_of_memory_costs_its_case_and_the_cache_is_freed(reference, tmp_path):
    results = grade_cases(CASES, plant(tmp_path, CUDA_OOM), SOLUTIONS, 5)
    per_question = case_scores(results)
    assert per_question["q1"][0] == 0
    assert "ran out of GPU memory" in " ".join(r.message for r in results if r.case.question == "q1")
    for q, (got, possible) in per_question.items():
        if q != "q1":
            lost = [r.message for r in results if r.case.question == q and not r.passed]
            assert got == possible, f"{q} lost points: {lost}"


@pytest.mark.gpu
def test_the_runner_switches_tf32_off_and_kernels_to_deterministic(reference, tmp_path):
    """q2's function reports the runner's CUDA settings through its answer: it passes only if they hold."""
    check = ("    import torch\n    ok = (not torch.backends.cuda.matmul.allow_tf32\n"
             "          and not torch.backends.cudnn.allow_tf32\n"
             "          and torch.are_deterministic_algorithms_enabled() and torch.cuda.is_available())\n"
             "    if not ok:\n        return 'settings differ'\n")
    package = plant(tmp_path, {"ngrams": [('    return re.sub(r"[^A-Z]+", " ", text.upper())',
                                           check + '    return re.sub(r"[^A-Z]+", " ", text.upper())')]})
    from autograder.grading.harness import gpu_visible

    assert gpu_visible()  # the grader sees the GPU without importing torch: the runner gets "auto"
    results = grade_cases(CASES, package, SOLUTIONS, 7)
    assert case_scores(results)["q2"][0] == case_scores(results)["q2"][1], [r.message for r in results if not r.passed]
