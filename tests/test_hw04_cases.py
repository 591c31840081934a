"""Homework 4's hidden cases: the reference passes every case, the stubs none, and a planted bug costs exactly
the questions that use the broken function (a schedule off by orders of magnitude included)."""

from __future__ import annotations

import pytest

from autograder.grading.harness import grade_cases, load_cases
from conftest import ROOT, SOLUTIONS, STUBS, assert_costs_exactly, case_scores, plant

HW04 = "hw04_diffusion"
CASES = load_cases(ROOT / "assignments" / HW04 / "hidden_cases.py")
pytestmark = pytest.mark.slow  # every runner imports torch

BUGS = {
    # a widely read tutorial's mistake: the betas squared (1e-8 .. 4e-4 instead of 1e-4 .. 0.02)
    "q1": ("diffusion", "    return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)",
           "    return torch.linspace(beta_start, beta_end, T, dtype=torch.float32) ** 2"),
    # the cap forgotten: the last beta is 1, which wipes the signal out completely
    "q2": ("diffusion", "    betas = [min(1 - f((t + 1) / T) / f(t / T), max_beta) for t in range(T)]",
           "    betas = [1 - f((t + 1) / T) / f(t / T) for t in range(T)]"),
    # the product of the betas instead of the 1 - betas
    "q3": ("diffusion", "    return torch.cumprod(1 - betas, dim=0)", "    return torch.cumprod(betas, dim=0)"),
    # variances mixed up with standard deviations
    "q4": ("diffusion", "    return math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * noise",
           "    return (1 - beta) * x_prev + beta * noise"),
    # every example noised to the first example's level
    "q5": ("diffusion", "    kept = _per_example(abar[t], x0)", "    kept = abar[t[0]]"),
    # cosines first
    "q6": ("diffusion", "    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)",
           "    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)"),
    # the model asked to predict the clean image instead of the noise
    "q7": ("diffusion", "    return torch.mean((model(x_t, t) - noise) ** 2)",
           "    return torch.mean((model(x_t, t) - x0) ** 2)"),
    # DDPM's other variance (beta_t, "fixed_large") instead of the posterior's
    "q8": ("diffusion", "    sigma2 = beta * (1 - abar[t - 1]) / (1 - ab)", "    sigma2 = beta"),
    # the chain stops one step early (never takes the step at t = 0)
    "q9": ("diffusion", "    for t in range(betas.shape[0] - 1, -1, -1):",
           "    for t in range(betas.shape[0] - 1, 0, -1):"),
}
# denoising_loss calls the student's own q_sample; sample their alpha_bars and p_sample_step.
BROKEN_BY = {"q1": {"q1"}, "q2": {"q2"}, "q3": {"q3", "q9"}, "q4": {"q4"}, "q5": {"q5", "q7"}, "q6": {"q6"},
             "q7": {"q7"}, "q8": {"q8", "q9"}, "q9": {"q9"}}


@pytest.mark.parametrize("seed", [0, 12345])
def test_reference_passes_every_case(seed):
    results = grade_cases(CASES, SOLUTIONS, SOLUTIONS, seed)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert {q for q, _ in case_scores(results).items()} == set(BUGS)


def test_stubs_fail_every_case():
    results = grade_cases(CASES, STUBS, SOLUTIONS, 3)
    assert not any(r.passed for r in results), [r.message for r in results if r.passed]
    assert all("is not written yet" in r.message for r in results), [r.message for r in results]


@pytest.mark.parametrize("question", sorted(BUGS))
def test_a_planted_bug_costs_exactly_its_questions(tmp_path, question):
    module, old, new = BUGS[question]
    results = grade_cases(CASES, plant(tmp_path, {module: [(old, new)]}), SOLUTIONS, 5)
    assert_costs_exactly(results, BROKEN_BY[question], question)


def test_a_sample_that_draws_its_noise_in_another_order_loses_its_question(tmp_path):
    """The documented order (x_{T-1} first, then each step's noise) is what makes sampling reproducible."""
    old = ("    x = torch.randn(tuple(shape), generator=generator).to(betas.device)\n"
           "    for t in range(betas.shape[0] - 1, -1, -1):\n"
           "        noise = torch.randn(tuple(shape), generator=generator).to(betas.device) if t > 0 else None\n")
    new = ("    noise = torch.randn(tuple(shape), generator=generator).to(betas.device)\n"
           "    x = torch.randn(tuple(shape), generator=generator).to(betas.device)\n"
           "    for t in range(betas.shape[0] - 1, -1, -1):\n"
           "        noise = noise if t == betas.shape[0] - 1 else (\n"
           "            torch.randn(tuple(shape), generator=generator).to(betas.device) if t > 0 else None)\n")
    results = grade_cases([c for c in CASES if c.question == "q9"], plant(tmp_path, {"diffusion": [(old, new)]}),
                          SOLUTIONS, 9)
    assert not [r for r in results if r.case.name == "sample_random"][0].passed
