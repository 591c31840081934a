"""Hidden test cases for homework 5 (shipped only inside the autograder zip).

Attention is compared with the reference value by value on random shapes (batches, heads, queries and
keys of different lengths, scores large enough to overflow a naive softmax), with and without masks.
While ``softmax``, ``scaled_dot_product_attention``, ``multi_head_attention`` and the two ``forward``
methods run, torch's own softmax and attention raise (``forbid_torch_attention``): an exercise that
calls them loses its question. The modules are graded as homework 3's models are: the same
``TransformerBlock`` / ``TinyGPT`` (the package's given ``__init__``) with weights drawn from a seed in both
processes (``wire.ModelSpec``), outputs compared. ``generate`` gets a small language model of the wire
(``ModelSpec("lm")``) whose every position depends on the whole context, so cropping the context to the
window and reading the last position are both checked; sampling gets ``torch.Generator``s from seeds
(``wire.TorchRngSpec``) and must draw exactly as documented. This file, like the grader's process,
never imports torch.
"""

from __future__ import annotations

import math

import numpy as np

from autograder.grading.cases import Case, approx, call, exact, tensor
from autograder.grading.wire import ModelSpec, TorchRngSpec

# Each tolerance covers the float32 rounding of the docstring's formula in any order (tests/test_tolerances.py
# grades a float64 and a reordered float32 answer); "measured" is the worst of those over eleven seeds. A float16
# tensor gets float16's rounding on top (cases.FLOAT16_RTOL).
CLOSE = approx(rtol=1e-5, atol=1e-6)
"""softmax, next_token_loss, apply_temperature: a few float32 roundings (6e-8 each) of exp, a sum and a divide or
log: a few 1e-7 relative; a loss near 0 is a difference of log-sum-exps near 10 (ulp 9.5e-7), hence atol.
Measured: 13 % of this (next_token_loss on the docstring's peaked logits), under 10 % elsewhere."""
SCORES = approx(rtol=1e-5, atol=4e-6)
"""scaled_dot_product_attention on random heads: scores of |q . k| / sqrt(d) up to about 20 carry float32 error
of about 20 * 6e-8 per rounding (2e-6 over a few); the softmax turns that into a relative error of the weights,
and outputs near 0 are sums of weights times values of either sign. Measured: 9.5e-7 absolute (24 %)."""
NETWORK = approx(rtol=1e-4, atol=1e-5)
"""multi-head attention, blocks and TinyGPT: the above through projections, layer norms (a division by a
standard deviation), a GELU MLP and up to 3 layers. Measured: 16 % of this (TinyGPT), under 8 % elsewhere."""


def _normal(rng, shape, scale=1.0, dtype="float32"):
    return tensor(rng.normal(0, scale, shape), dtype)


def softmax_fixed(rng):
    t = tensor
    return [call(t([1.0, 2.0, 3.0])), call(t([1e4, 0.0, -1e4])), call(t([0.0, -math.inf])),
            call(t([[1.0, 2.0], [3.0, 5.0]]), dim=0), call(t([[1e4, -1e4], [-1e4, 1e4]], "float64"), dim=1),
            call(t([5.0, 5.0, 5.0, 5.0])), call(t([10.0, 12.0], "float16")), call(t(1.0)), call(t([1, 2], "int64"))]


def softmax_random(rng):
    calls = []
    for shape, scale in (((5,), 1.0), ((3, 7), 100.0), ((2, 3, 4), 3000.0), ((4, 1), 1.0)):
        calls.append(call(_normal(rng, shape, scale), dim=int(rng.integers(-len(shape), len(shape)))))
    return calls


def mask_fixed(rng):
    return [call(3), call(1), call(5), call(0), call(True), call(2.5)]


def mask_random(rng):
    return [call(int(n)) for n in rng.integers(2, 65, 3)]


def attention_fixed(rng):
    t = tensor
    q, k, v = t([[1.0, 0.0]]), t([[1.0, 0.0], [0.0, 1.0]]), t([[1.0, 2.0], [3.0, 4.0]])
    causal3 = t(np.tril(np.ones((3, 3))), "bool")
    x = t([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    return [call(q, k, v), call(q, k, v, t([[True, False]], "bool")), call(q, k, v, t([[False, False]], "bool")),
            call(x, x, x, causal3), call(t([[1e4, 0.0]]), k, v), call(x, x, x, t([True, False, True], "bool")),
            call(q, t([[1.0, 0.0, 0.0]]), v), call(q, k, v, t([[1.0, 0.0]])), call(q, k, t([[1, 2], [3, 4]], "int64")),
            call(q, k, v, t([[True, False, True]], "bool"))]


def attention_random(rng):
    calls = []
    for lead, n, m, d, dv, masked in (((), 5, 5, 4, 4, "causal"), ((3,), 6, 9, 8, 5, None),
                                      ((2, 4), 7, 7, 16, 16, "causal"), ((2,), 4, 6, 3, 2, "random")):
        q, k, v = (_normal(rng, (*lead, n, d), 2.0), _normal(rng, (*lead, m, d), 2.0), _normal(rng, (*lead, m, dv)))
        if masked == "causal":
            mask = tensor(np.tril(np.ones((n, m))), "bool")
        elif masked == "random":
            mask = tensor(rng.random((*lead, n, m)) < 0.6, "bool")
        else:
            mask = None
        calls.append(call(q, k, v, mask))
    return calls


def mha_fixed(rng):
    t = tensor
    x, eye = t([[[1.0, 0.0], [0.0, 1.0]]]), t(np.eye(2))
    return [call(x, eye, eye, eye, eye, 1), call(x, eye, eye, eye, eye, 2),
            call(x, eye, eye, eye, eye, 2, causal=False), call(x, eye, eye, eye, eye, 2, return_weights=True),
            call(x, eye, eye, eye, eye, 3), call(t([[1.0, 0.0]]), eye, eye, eye, eye, 1),
            call(x, eye, eye, eye, t(np.eye(3)), 1)]


def mha_random(rng):
    calls = []
    for B, N, D, H, causal in ((2, 5, 8, 2, True), (1, 9, 12, 3, False), (3, 4, 16, 4, True), (2, 6, 6, 1, True)):
        weights = [_normal(rng, (D, D), 1 / math.sqrt(D)) for _ in range(4)]
        calls.append(call(_normal(rng, (B, N, D)), *weights, H, causal=causal,
                          return_weights=bool(rng.integers(0, 2))))
    return calls


def _block(rng, d_model, n_heads, **options):
    return ModelSpec("block", int(rng.integers(2**31)), {"d_model": d_model, "n_heads": n_heads, **options})


def block_fixed(rng):
    zero = ModelSpec("block", 0, {"d_model": 4, "n_heads": 2, "scale": 0.0})
    x = tensor([[[1.0, 2.0, 3.0, 4.0], [0.5, -0.5, 0.0, 1.0]]])
    return [call(zero, x), call(ModelSpec("block", 1, {"d_model": 4, "n_heads": 2}), x)]


def block_random(rng):
    return [call(_block(rng, d, h), _normal(rng, (b, n, d))) for b, n, d, h in ((2, 5, 8, 2), (1, 7, 12, 3),
                                                                              (3, 4, 16, 4))]


def _gpt(rng, vocab, context, d_model, n_heads, n_layers):
    return ModelSpec("gpt", int(rng.integers(2**31)), {"vocab_size": vocab, "context_length": context,
                                                        "d_model": d_model, "n_heads": n_heads, "n_layers": n_layers})


def gpt_fixed(rng):
    t = tensor
    gpt = ModelSpec("gpt", 2, {"vocab_size": 5, "context_length": 4, "d_model": 8, "n_heads": 2, "n_layers": 1})
    return [call(gpt, t([[0, 1, 2, 3]], "int64")), call(gpt, t([[4]], "int64")),
            call(gpt, t([[0.0, 1.0]])), call(gpt, t([[0, 1, 2, 3, 4]], "int64")), call(gpt, t([[0, 5]], "int64")),
            call(gpt, t([0, 1], "int64"))]


def gpt_random(rng):
    calls = []
    for vocab, context, d, h, layers, b, n in ((27, 16, 16, 2, 2, 2, 16), (11, 8, 12, 3, 1, 3, 5),
                                               (7, 10, 8, 4, 3, 1, 10)):
        calls.append(call(_gpt(rng, vocab, context, d, h, layers), tensor(rng.integers(0, vocab, (b, n)), "int64")))
    return calls


def loss_fixed(rng):
    t = tensor
    peaked = np.zeros((1, 2, 4))
    peaked[0, 0] = [0.0, 10.0, 0.0, 0.0]
    return [call(t(np.zeros((1, 3, 4))), t([[0, 1, 2]], "int64")), call(t(peaked), t([[0, 1]], "int64")),
            call(t(peaked), t([[0, 2]], "int64")), call(t(np.zeros((1, 1, 4))), t([[0]], "int64")),
            call(t(np.zeros((1, 3, 4))), t([[0, 1]], "int64")), call(t(np.zeros((1, 2, 4))), t([[0.0, 1.0]])),
            call(t(np.zeros((1, 2, 4))), t([[0, 4]], "int64"))]


def loss_random(rng):
    return [call(_normal(rng, (b, n, v), 3.0), tensor(rng.integers(0, v, (b, n)), "int64"))
            for b, n, v in ((2, 8, 27), (4, 3, 5), (1, 20, 11))]


def temperature_fixed(rng):
    t = tensor
    logits = t([1.0, 2.0, 3.0])
    return [call(logits, 1.0), call(logits, 0.5), call(logits, 2), call(logits, 0), call(t([3.0, 3.0, 1.0]), 0.0),
            call(t([[1.0, 5.0], [7.0, 7.0]]), 0.0), call(t([1e4, 0.0]), 1.0), call(logits, -1.0),
            call(logits, math.inf), call(t([1, 2], "int64"), 1.0)]


def temperature_random(rng):
    calls = []
    for shape in ((27,), (3, 27), (2, 2, 11)):
        for temperature in (float(rng.uniform(0.1, 0.9)), float(rng.uniform(1.1, 3.0)), 0.0):
            calls.append(call(_normal(rng, shape, 2.0), temperature))
    return calls


def sample_fixed(rng):
    t = tensor
    return [call(t([1.0, 3.0, 2.0]), 0, TorchRngSpec(0)), call(t([0.0, 0.0]), 1.0, TorchRngSpec(0)),
            call(t([1.0, 3.0, 2.0]), 1.5, TorchRngSpec(3), top_k=1), call(t([2.0, 2.0, 1.0]), 1.0, TorchRngSpec(4),
                                                                            top_k=1),
            call(t([1.0, 3.0]), 1.0, 7), call(t([1.0, 3.0]), -0.5, TorchRngSpec(0)),
            call(t([1.0, 3.0]), 1.0, TorchRngSpec(0), top_k=0)]


def sample_random(rng):
    calls = []
    for _ in range(12):
        top_k = [None, None, 1, 3, 10, 40][int(rng.integers(0, 6))]
        temperature = [0.0, 0.5, 1.0, 1.0, 1.7][int(rng.integers(0, 5))]
        calls.append(call(_normal(rng, (27,), 2.0), temperature, TorchRngSpec(int(rng.integers(2**31))), top_k=top_k))
    return calls


def _lm(rng, vocab, context):
    return ModelSpec("lm", int(rng.integers(2**31)), {"vocab_size": vocab, "context_length": context})


def generate_fixed(rng):
    lm = ModelSpec("lm", 5, {"vocab_size": 7, "context_length": 4})
    return [call(lm, [0, 1, 2], 6, 0.0, TorchRngSpec(1)), call(lm, [3, 1, 4, 1, 5, 2], 3, 0.0, TorchRngSpec(1)),
            call(lm, [2], 0, 1.0, TorchRngSpec(1)), call(lm, (6, 5), 4, 1.0, TorchRngSpec(2), top_k=2),
            call(lm, [], 3, 1.0, TorchRngSpec(1)), call(lm, [1.0, 2.0], 3, 1.0, TorchRngSpec(1)),
            call(lm, [1], -1, 1.0, TorchRngSpec(1))]


def generate_random(rng):
    calls = []
    for vocab, context, prompt, new, temperature, top_k in ((27, 8, 5, 20, 1.0, None), (11, 5, 9, 12, 0.7, 4),
                                                            (7, 3, 2, 15, 1.3, None), (27, 16, 3, 10, 0.0, None)):
        calls.append(call(_lm(rng, vocab, context), [int(i) for i in rng.integers(0, vocab, prompt)], new,
                          temperature, TorchRngSpec(int(rng.integers(2**31))), top_k=top_k))
    return calls


OFF_LIMITS = {"forbid_torch_attention": True}

CASES = [
    Case("q1", "softmax_examples", 1, "attention.softmax", softmax_fixed,
         "softmax on the docstring's examples, logits of +-1e4, -inf, dim=0, float64 and float16, bad inputs",
         CLOSE, **OFF_LIMITS),
    Case("q1", "softmax_random", 1, "attention.softmax", softmax_random,
         "softmax of random scores up to thousands, along a random dimension", CLOSE, **OFF_LIMITS),
    Case("q2", "causal_mask_examples", 0.5, "attention.causal_mask", mask_fixed,
         "causal_mask for n = 3, 1 and 5, and bad n", exact),
    Case("q2", "causal_mask_random", 0.5, "attention.causal_mask", mask_random, "causal_mask for random n", exact),
    Case("q3", "attention_examples", 1, "attention.scaled_dot_product_attention", attention_fixed,
         "scaled_dot_product_attention on the docstring's example, masked, a row with no allowed key, a "
         "broadcast mask, huge scores, bad shapes, dtypes and masks", CLOSE, **OFF_LIMITS),
    Case("q3", "attention_random", 2, "attention.scaled_dot_product_attention", attention_random,
         "scaled_dot_product_attention on random heads, with causal, random and no masks, keys longer than "
         "queries", SCORES, **OFF_LIMITS),
    Case("q4", "multi_head_attention_examples", 1, "attention.multi_head_attention", mha_fixed,
         "multi_head_attention on the docstring's example (1 and 2 heads), not causal, with weights, bad "
         "arguments", CLOSE, **OFF_LIMITS),
    Case("q4", "multi_head_attention_random", 2, "attention.multi_head_attention", mha_random,
         "multi_head_attention on random texts and weights, 1 to 4 heads", NETWORK, **OFF_LIMITS),
    Case("q5", "block_examples", 1, "attention.TransformerBlock.forward", block_fixed,
         "TransformerBlock.forward with zero weights (returns x) and a random block", NETWORK, **OFF_LIMITS),
    Case("q5", "block_random", 1, "attention.TransformerBlock.forward", block_random,
         "TransformerBlock.forward of random blocks on random texts", NETWORK, **OFF_LIMITS),
    Case("q6", "tiny_gpt_examples", 1, "attention.TinyGPT.forward", gpt_fixed,
         "TinyGPT.forward on a full window, one token, bad ids", NETWORK, **OFF_LIMITS),
    Case("q6", "tiny_gpt_random", 2, "attention.TinyGPT.forward", gpt_random,
         "TinyGPT.forward of random models with 1 to 3 blocks on random ids", NETWORK, **OFF_LIMITS),
    Case("q7", "next_token_loss_examples", 1, "attention.next_token_loss", loss_fixed,
         "next_token_loss on the docstring's examples, N = 1, mismatched shapes, bad ids", CLOSE),
    Case("q7", "next_token_loss_random", 1, "attention.next_token_loss", loss_random,
         "next_token_loss of random logits and ids", CLOSE),
    Case("q8", "apply_temperature_examples", 1, "sampling.apply_temperature", temperature_fixed,
         "apply_temperature on the docstring's examples, ties at temperature 0, a batch, bad temperatures",
         CLOSE),
    Case("q8", "apply_temperature_random", 1, "sampling.apply_temperature", temperature_random,
         "apply_temperature of random logits at random temperatures and at 0", CLOSE),
    Case("q9", "sample_next_token_examples", 1, "sampling.sample_next_token", sample_fixed,
         "sample_next_token at temperature 0, top_k = 1, a generator that is not a torch.Generator, bad "
         "arguments", exact),
    Case("q9", "sample_next_token_random", 2, "sampling.sample_next_token", sample_random,
         "sample_next_token: random logits, temperatures and top_k, drawn from seeded generators", exact),
    Case("q10", "generate_examples", 1, "sampling.generate", generate_fixed,
         "generate at temperature 0, a prompt longer than the context window, no new tokens, bad prompts",
         exact),
    Case("q10", "generate_random", 2, "sampling.generate", generate_random,
         "generate: whole continuations of small random language models from seeded generators", exact,
         timeout=10),
]
