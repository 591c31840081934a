"""Homework 6's hidden cases: the reference passes every case, the stubs none (with homework 5's modules given
solved, as the release ships them), and a planted bug costs exactly the questions that use the broken
function: the issue's B not zero at the start, base not frozen, scale swapped, merge in the wrong order and
LoRA on the wrong layers, and one natural mistake in every other exercise."""

from __future__ import annotations

import shutil

import pytest

from autograder.grading.harness import grade_cases, load_cases
from conftest import ROOT, SOLUTIONS, STUBS, assert_costs_exactly, case_scores, plant

HW06 = "hw06_fine_tuning"
CASES = load_cases(ROOT / "assignments" / HW06 / "hidden_cases.py")
pytestmark = pytest.mark.slow  # every runner imports torch

BUGS = {
    # state_dict-style counting: a parameter shared by two layers (tied embeddings) counted twice
    "q1": ("    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)",
           "    return sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)\n"
           "               if p.requires_grad or not trainable_only)"),
    # B drawn at random like A: the adapted model no longer starts equal to the pretrained one
    "B not zero": ("        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=",
                   "        self.B = nn.Parameter(torch.randn(base.out_features, r, device="),
    # the base left trainable: a "LoRA" fine-tune that moves every weight
    "base not frozen": ("        for parameter in base.parameters():\n"
                        "            parameter.requires_grad_(False)\n", ""),
    # the scale upside down: r / alpha instead of alpha / r
    "scale swapped": ("        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale",
                      "        return self.base(x) + (x @ self.A.T @ self.B.T) * (self.r / self.alpha)"),
    # names matched by their ending letters, not by whole parts: "p.0" adapts every mlp.0
    "wrong layers": ('        return name == target or name.endswith("." + target)',
                     "        return name.endswith(target)"),
    # the rest of the model left trainable
    "rest not frozen": ("    for parameter in model.parameters():\n        parameter.requires_grad_(False)\n", ""),
    # the product in the wrong order: A^T B^T is the transpose of B A (and does not fit a layer that is not square)
    "merge order": ("        weight = base.weight + layer.scale * (layer.B @ layer.A)",
                    "        weight = base.weight + layer.scale * (layer.A.T @ layer.B.T)"),
    # off by one: the window that ends the text is never drawn
    "q6": ("    starts = torch.randint(0, len(ids) - length + 1, (batch_size,), generator=generator)",
           "    starts = torch.randint(0, len(ids) - length, (batch_size,), generator=generator)"),
    # no zero_grad: the gradients of whatever ran before are added to this step's
    "q7": ("    optimizer.zero_grad()\n    loss = next_token_loss(model(ids), ids)",
           "    loss = next_token_loss(model(ids), ids)"),
    # optimiser state for every parameter, frozen ones too
    "q8": ("    optimizer = n_trainable * optimizer_values * bytes_per_value",
           "    optimizer = n_parameters * optimizer_values * bytes_per_value"),
}
# apply_lora (q4) builds its adapters with the student's LoRALinear: an adapter whose B is not zero costs q4
# too. A LoRALinear that leaves its base trainable does not: apply_lora has frozen the whole model first.
BROKEN_BY = {"q1": {"q1"}, "B not zero": {"q2", "q4"}, "base not frozen": {"q2"}, "scale swapped": {"q3"},
             "wrong layers": {"q4"}, "rest not frozen": {"q4"}, "merge order": {"q5"}, "q6": {"q6"},
             "q7": {"q7"}, "q8": {"q8"}}


def given_stubs(tmp_path):
    """The student package as the hw06 release ships it: this homework's stubs, homework 5's modules solved."""
    package = tmp_path / "genai_hw"
    shutil.copytree(STUBS, package, ignore=shutil.ignore_patterns("__pycache__"))
    for module in ("attention", "sampling"):
        shutil.copyfile(SOLUTIONS / f"{module}.py", package / f"{module}.py")
    return package


@pytest.mark.parametrize("seed", [0, 12345])
def test_reference_passes_every_case(seed):
    results = grade_cases(CASES, SOLUTIONS, SOLUTIONS, seed)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert set(case_scores(results)) == {f"q{i}" for i in range(1, 9)}
    assert sum(c.points for c in CASES) == 19


def test_stubs_fail_every_case(tmp_path):
    results = grade_cases(CASES, given_stubs(tmp_path), SOLUTIONS, 3)
    assert not any(r.passed for r in results), [r.message for r in results if r.passed]
    assert all("is not written yet" in r.message for r in results), [r.message for r in results]
    # forward and merge get layers built without the unwritten constructor: never an "internal grader error"
    assert not any("internal grader error" in r.message for r in results), [r.message for r in results]


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_a_planted_bug_costs_exactly_its_questions(tmp_path, bug):
    old, new = BUGS[bug]
    results = grade_cases(CASES, plant(tmp_path, {"finetune": [(old, new)]}), SOLUTIONS, 5)
    assert_costs_exactly(results, BROKEN_BY[bug], bug)


def test_a_lora_layer_returned_as_the_wrong_kind_says_so(tmp_path):
    """merge_lora that hands back the LoRA layer itself (its forward is right) is told it returned the wrong
    kind of module, and the message names the classes."""
    old = "    return merged.requires_grad_(False)"
    results = grade_cases([c for c in CASES if c.question == "q5"],
                          plant(tmp_path, {"finetune": [(old, "    return layer")]}), SOLUTIONS, 6)
    random = [r.message for r in results if r.case.name == "merge_lora_random"]
    assert random and "expected a Linear" in random[0] and "got a LoRALinear" in random[0], random
