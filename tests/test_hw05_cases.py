"""Homework 5's hidden cases: the reference passes every case, the stubs none, a planted bug costs exactly the
questions that use the broken function, and an exercise that calls torch's own softmax or attention loses
its question."""

from __future__ import annotations

import pytest

from autograder.grading.harness import grade_cases, load_cases
from conftest import ROOT, SOLUTIONS, STUBS, assert_costs_exactly, case_scores, plant

HW05 = "hw05_transformers"
CASES = load_cases(ROOT / "assignments" / HW05 / "hidden_cases.py")
pytestmark = pytest.mark.slow  # every runner imports torch

BUGS = {
    # the naive formula: exp(1e4) overflows to inf and inf / inf is nan
    "q1": ("attention", "    shifted = x - x.amax(dim=dim, keepdim=True)", "    shifted = x"),
    # the upper triangle: every token sees the future and not the past
    "q2": ("attention", "    return torch.ones(n, n, dtype=torch.bool, device=device).tril()",
           "    return torch.ones(n, n, dtype=torch.bool, device=device).triu()"),
    # scaled by d instead of sqrt(d)
    "q3": ("attention", "    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])",
           "    scores = q @ k.transpose(-2, -1) / q.shape[-1]"),
    # heads cut out of the flat (N * D) numbers instead of out of each token's D columns
    "q4": ("attention", "        return t.reshape(B, N, n_heads, d).transpose(1, 2)",
           "        return t.reshape(B, n_heads, N, d)"),
    # the two layer norms swapped
    "q5": ("attention", "    x = x + self.attention(self.ln_1(x))", "    x = x + self.attention(self.ln_2(x))"),
    # no position embedding: the model cannot tell "DOG" from "GOD"
    "q6": ("attention", "    x = self.token_embedding(ids) + self.position_embedding(positions)",
           "    x = self.token_embedding(ids)"),
    # no shift: every position asked to predict the token it already reads
    "q7": ("attention",
           "    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))",
           "    return nn.functional.cross_entropy(logits.reshape(-1, V), ids.reshape(-1))"),
    # temperature multiplied instead of divided
    "q8": ("sampling", "    return torch.softmax(logits / temperature, dim=-1)",
           "    return torch.softmax(logits * temperature, dim=-1)"),
    # the draw from torch's global generator instead of the one passed in
    "q9": ("sampling", "    return int(torch.multinomial(probabilities.cpu(), 1, generator=generator))",
           "    return int(torch.multinomial(probabilities.cpu(), 1))"),
    # the context cropped to the first tokens instead of the last
    "q10": ("sampling",
            "            context = torch.tensor([ids[-model.context_length:]], dtype=torch.long, device=device)",
            "            context = torch.tensor([ids[:model.context_length]], dtype=torch.long, device=device)"),
}
# The attention functions call the student's softmax, causal_mask and attention; the block and the model
# call multi_head_attention; sampling calls apply_temperature, generate sample_next_token (sampling.py does not
# use attention.py: a broken attention module costs no sampling question).
BROKEN_BY = {"q1": {"q1", "q3"}, "q2": {"q2", "q4", "q5", "q6"}, "q3": {"q3", "q4", "q5", "q6"},
             "q4": {"q4", "q5", "q6"}, "q5": {"q5", "q6"}, "q6": {"q6"}, "q7": {"q7"}, "q8": {"q8", "q9", "q10"},
             "q9": {"q9", "q10"}, "q10": {"q10"}}


@pytest.mark.parametrize("seed", [0, 12345])
def test_reference_passes_every_case(seed):
    results = grade_cases(CASES, SOLUTIONS, SOLUTIONS, seed)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert set(case_scores(results)) == set(BUGS)
    assert sum(c.points for c in CASES) == 24


def test_stubs_fail_every_case():
    results = grade_cases(CASES, STUBS, SOLUTIONS, 3)
    assert not any(r.passed for r in results), [r.message for r in results if r.passed]
    assert all("is not written yet" in r.message for r in results), [r.message for r in results]


@pytest.mark.parametrize("question", sorted(BUGS, key=lambda q: int(q[1:])))
def test_a_planted_bug_costs_exactly_its_questions(tmp_path, question):
    module, old, new = BUGS[question]
    results = grade_cases(CASES, plant(tmp_path, {module: [(old, new)]}), SOLUTIONS, 5)
    assert_costs_exactly(results, BROKEN_BY[question], question)


BUILTINS = {
    # softmax written with torch's: its question is lost, and so is every attention function that uses it
    "torch.softmax": ("attention", ["    shifted = x - x.amax(dim=dim, keepdim=True)\n"
                                    "    exps = torch.exp(shifted)\n"
                                    "    return exps / exps.sum(dim=dim, keepdim=True)\n"],
                      ["    return torch.softmax(x, dim=dim)\n"], {"q1", "q3", "q4", "q5", "q6"}),
    # the same through the exp of torch's log_softmax
    "log_softmax": ("attention", ["    shifted = x - x.amax(dim=dim, keepdim=True)\n"
                                  "    exps = torch.exp(shifted)\n"
                                  "    return exps / exps.sum(dim=dim, keepdim=True)\n"],
                    ["    return x.log_softmax(dim).exp()\n"], {"q1", "q3", "q4", "q5", "q6"}),
    # attention's output from torch's built-in, imported by name at the top of the module
    "scaled_dot_product_attention": (
        "attention", ["import torch\n", "    return weights @ v, weights\n"],
        ["import torch\nfrom torch.nn.functional import scaled_dot_product_attention as torch_attention\n",
         "    return torch_attention(q, k, v, attn_mask=mask), weights\n"], {"q3", "q4", "q5", "q6"}),
    # multi-head attention from torch.nn.MultiheadAttention with the weights copied in
    "MultiheadAttention": (
        "attention",
        ["    out, weights = scaled_dot_product_attention(heads(x @ w_q), heads(x @ w_k), heads(x @ w_v), mask)\n"],
        ["    layer = nn.MultiheadAttention(D, n_heads, bias=False, batch_first=True).to(x.device, x.dtype)\n"
         "    with torch.no_grad():\n"
         "        layer.in_proj_weight.copy_(torch.cat([w_q.T, w_k.T, w_v.T]))\n"
         "        layer.out_proj.weight.copy_(w_o.T)\n"
         "    out, _ = layer(x, x, x, attn_mask=None if mask is None else ~mask, need_weights=False)\n"
         "    return out\n"
         "    out, weights = scaled_dot_product_attention(heads(x @ w_q), heads(x @ w_k), heads(x @ w_v), mask)\n"],
        {"q4", "q5", "q6"}),
}


@pytest.mark.parametrize("builtin", sorted(BUILTINS))
def test_an_exercise_that_calls_torchs_own_softmax_or_attention_loses_its_question(tmp_path, builtin):
    module, olds, news, broken = BUILTINS[builtin]
    results = grade_cases(CASES, plant(tmp_path, {module: list(zip(olds, news))}), SOLUTIONS, 6)
    assert_costs_exactly(results, broken, builtin)
    lost = [r.message for r in results if not r.passed and r.case.question == min(broken, key=lambda q: int(q[1:]))]
    assert lost and all("is off limits in this exercise" in m for m in lost), lost


def test_the_guard_leaves_torch_alone_outside_the_guarded_exercises(tmp_path):
    """apply_temperature may use torch's softmax (as the reference does, by another name here): only the
    attention exercises are checked."""
    old = "    return torch.softmax(logits / temperature, dim=-1)"
    new = "    return torch.nn.functional.softmax(logits / temperature, dim=-1)"
    results = grade_cases(CASES, plant(tmp_path, {"sampling": [(old, new)]}), SOLUTIONS, 7)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]


@pytest.mark.gpu
def test_on_a_gpu_grader_the_reference_scores_full_marks_with_cuda_tensors(tmp_path):
    """The runner hands the submitted functions CUDA tensors and builds the models there; generate's model
    checks that its input comes on its device, and sampling draws on the CPU: the marks stay the same."""
    from autograder.grading.harness import gpu_visible

    assert gpu_visible()
    results = grade_cases(CASES, SOLUTIONS, SOLUTIONS, 21)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    # and the tensors really were on the GPU: a softmax that refuses CPU tensors still passes
    old = "    shifted = x - x.amax(dim=dim, keepdim=True)"
    cuda_only = plant(tmp_path, {"attention": [(old, "    assert x.is_cuda, 'not on the GPU'\n" + old)]})
    results = grade_cases([c for c in CASES if c.question == "q1"], cuda_only, SOLUTIONS, 22)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]


def test_a_broken_attention_module_costs_no_sampling_question(tmp_path):
    """A syntax error in attention.py (a half-written exercise) costs its own questions, not sampling's."""
    marker = "    # BEGIN SOLUTION hw05 q1\n"
    broken = plant(tmp_path, {"attention": [(marker, marker + "    return (\n")]})
    results = grade_cases(CASES, broken, SOLUTIONS, 8)
    assert_costs_exactly(results, {f"q{i}" for i in range(1, 8)}, "a syntax error in attention.py")
