"""Homework 3's hidden cases: the reference passes every
case, the stubs none, and a planted bug costs exactly the questions that use the broken function."""

from __future__ import annotations

import pytest

from autograder.grading.harness import grade_cases, load_cases
from conftest import ROOT, SOLUTIONS, STUBS, assert_costs_exactly, case_scores, plant

HW03 = "hw03_gans_vaes"
CASES = load_cases(ROOT / "assignments" / HW03 / "hidden_cases.py")
pytestmark = pytest.mark.slow  # every runner imports torch

BUGS = {
    # log(sigmoid(...)): infinite for a sure discriminator
    "q1": ("gan", "    return torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean()",
           "    return -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()"),
    # the saturating form's sign flipped
    "q2": ("gan", "        return -torch.nn.functional.softplus(fake).mean()",
           "        return torch.nn.functional.softplus(fake).mean()"),
    # the generator's step with the saturating loss (not detaching the fakes would not show: the generator's
    # step zeroes its gradients first)
    "q3": ("gan", "    g_loss = generator_loss(discriminator(generator(z)))",
           "    g_loss = generator_loss(discriminator(generator(z)), saturating=True)"),
    # counts samples instead of centres
    "q4": ("gan", "    return int((near.sum(dim=0) >= min_count).sum())", "    return int(near.any(dim=1).sum())"),
    # the standard deviation taken as exp(logvar)
    "q5": ("vae", "    return mu + torch.exp(logvar / 2) * eps", "    return mu + torch.exp(logvar) * eps"),
    # averaged over the latent dimensions instead of summed
    "q6": ("vae", "    return 0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).sum(dim=1)",
           "    return 0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).mean(dim=1)"),
    # mean squared error per feature instead of the sum
    "q7": ("vae", "    squared = ((x - x_hat) ** 2).reshape(x.shape[0], -1).sum(dim=1)",
           "    squared = ((x - x_hat) ** 2).reshape(x.shape[0], -1).mean(dim=1)"),
}
# vae_loss calls the student's own KL. (gan_train_step calls the student's losses too, but its logits are
# small, where log(sigmoid(...)) is still right: q1's bug costs q1 only.)
BROKEN_BY = {"q1": {"q1"}, "q2": {"q2"}, "q3": {"q3"}, "q4": {"q4"}, "q5": {"q5"}, "q6": {"q6", "q7"},
             "q7": {"q7"}}


@pytest.mark.parametrize("seed", [0, 12345])
def test_reference_passes_every_case(reference, seed):
    results = grade_cases(CASES, SOLUTIONS, SOLUTIONS, seed)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert {q for q, _ in case_scores(results).items()} == set(BUGS)


def test_stubs_fail_every_case(reference):
    results = grade_cases(CASES, STUBS, SOLUTIONS, 3)
    assert not any(r.passed for r in results), [r.message for r in results if r.passed]
    assert all("is not written yet" in r.message for r in results), [r.message for r in results]


@pytest.mark.parametrize("question", sorted(BUGS))
def test_a_planted_bug_costs_exactly_its_questions(reference, tmp_path, question):
    module, old, new = BUGS[question]
    results = grade_cases(CASES, plant(tmp_path, {module: [(old, new)]}), SOLUTIONS, 5)
    assert_costs_exactly(results, BROKEN_BY[question], question)
