"""Hidden test cases for homework 6 (shipped only inside the autograder zip).

Models are built afresh in each process from a seed (``wire.ModelSpec``): homework 5's TinyGPT (given
solved in this homework, tied or partly frozen for ``count_parameters``), plain linear layers, and LoRA
layers made with the package's own ``LoRALinear`` whose every parameter is then drawn from the seed, so
that ``B`` is not 0 and the forward pass and the merge are checked whatever the constructor does. A module
that a function returns (``LoRALinear(...)``, ``merge_lora``) comes back as plain data
(``wire.ModuleState``): its class's name, its parameters by name and which of them train.
``apply_lora`` and ``finetune_step`` are graded as homework 3's training step is (``wire.TrainStepSpec``):
the same seeded model on both sides, then every parameter (and for ``apply_lora`` which ones train and
which modules became adapters) compared with the reference's. This file, like the grader's process,
never imports torch.
"""

from __future__ import annotations

import numpy as np

from autograder.grading.cases import Case, approx, call, exact, tensor
from autograder.grading.wire import ModelSpec, TorchRngSpec, TrainStepSpec

# Each tolerance covers the float32 rounding of the docstring's formula in any order (tests/test_tolerances.py
# grades a float64 and a reordered float32 answer).
DRAW = approx(rtol=1e-6, atol=1e-7)
"""LoRALinear's A: a normal draw divided by r, one rounding (6e-8 relative) in float32 whichever way it is
written (``/ r``, ``* (1 / r)``, in float64 then cast)."""
LAYER = approx(rtol=1e-5, atol=1e-5)
"""forward and merge: a linear layer of up to 24 inputs plus a rank-r product, parameters of about 0.3 and
inputs of about 1: sums of up to 24 terms of float32 error 6e-8 each, cancelling to values near 0 (hence atol).
A weight after a step of SGD, and a loss: the model's own float32 rounding (the same code on both sides but
for the student's order in ``finetune_step``)."""

GPT = {"vocab_size": 11, "context_length": 8, "d_model": 16, "n_heads": 2, "n_layers": 2}


def _gpt(rng, **options):
    return ModelSpec("gpt", int(rng.integers(2**31)), {**GPT, **options})


def _linear(rng, n_in, n_out, bias=True):
    return ModelSpec("linear", int(rng.integers(2**31)), {"in": n_in, "out": n_out, "bias": bias})


def _lora(rng, n_in, n_out, r, alpha, bias=True):
    return ModelSpec("lora", int(rng.integers(2**31)), {"in": n_in, "out": n_out, "bias": bias, "r": r, "alpha": alpha})


def _generator(rng):
    return TorchRngSpec(int(rng.integers(2**31)))


def count_fixed(rng):
    linear = ModelSpec("linear", 1, {"in": 3, "out": 2})
    frozen_bias = ModelSpec("linear", 1, {"in": 3, "out": 2, "frozen": ["bias"]})
    tied = ModelSpec("gpt", 2, {**GPT, "tied": True})
    return [call(linear), call(linear, trainable_only=True), call(frozen_bias, trainable_only=True),
            call(frozen_bias), call(tied), call(tied, True), call(tensor([1.0, 2.0])), call(3)]


def count_random(rng):
    calls = []
    for frozen in (["token_embedding", "blocks.0"], ["blocks.1.mlp", "ln_f", "position_embedding"]):
        model = _gpt(rng, frozen=frozen, n_layers=int(rng.integers(1, 4)))
        calls += [call(model), call(model, trainable_only=True)]
    lora = _lora(rng, int(rng.integers(3, 20)), int(rng.integers(3, 20)), int(rng.integers(1, 5)), 8.0)
    calls += [call(lora), call(lora, trainable_only=True), call(_gpt(rng, tied=True), trainable_only=True)]
    return calls


def lora_init_fixed(rng):
    base = ModelSpec("linear", 3, {"in": 3, "out": 2})
    return [call(base, 1, 2.0, TorchRngSpec(0)), call(ModelSpec("linear", 4, {"in": 2, "out": 5, "bias": False}),
                                                      3, 1.0, TorchRngSpec(1)),
            call(base, 0, 2.0, TorchRngSpec(0)), call(base, 2, 0.0, TorchRngSpec(0)),
            call(base, 2.0, 2.0, TorchRngSpec(0)), call(ModelSpec("lora", 5, {"in": 3, "out": 2}), 2, 2.0,
                                                        TorchRngSpec(0))]


def lora_init_random(rng):
    calls = []
    for n_in, n_out, r, bias in ((8, 5, 2, True), (16, 16, 4, False), (5, 12, 1, True), (24, 6, 8, True)):
        calls.append(call(_linear(rng, n_in, n_out, bias), r, float(rng.choice([1.0, 4.0, 16.0])), _generator(rng)))
    return calls


def forward_fixed(rng):
    layer = ModelSpec("lora", 6, {"in": 3, "out": 2, "r": 1, "alpha": 2.0})
    return [call(layer, tensor([[1.0, 2.0, 3.0]])), call(layer, tensor([0.0, 0.0, 1.0])),
            call(ModelSpec("lora", 7, {"in": 2, "out": 4, "r": 2, "alpha": 8.0, "bias": False}),
                 tensor(np.zeros((2, 3, 2))))]


def forward_random(rng):
    calls = []
    for n_in, n_out, r, alpha, bias, shape in ((8, 5, 2, 4.0, True, (4,)), (16, 16, 4, 16.0, False, (2, 3)),
                                                (5, 12, 1, 1.0, True, (3, 2, 2)), (24, 6, 8, 8.0, True, ())):
        calls.append(call(_lora(rng, n_in, n_out, r, alpha, bias), tensor(rng.normal(0, 1, (*shape, n_in)))))
    return calls


def _setup(rng, **options):
    return TrainStepSpec("lora", int(rng.integers(2**31)), options)


def apply_fixed(rng):
    return [call(TrainStepSpec("lora", 1, {"targets": ["unembedding"], "r": 1, "alpha": 2.0})),
            call(TrainStepSpec("lora", 2, {"targets": ["blocks.0.mlp.2", "mlp.2"], "r": 2, "alpha": 2.0})),
            call(TrainStepSpec("lora", 3, {"targets": ["p.0"]})), call(TrainStepSpec("lora", 3, {"targets": ["ln_f"]})),
            call(TrainStepSpec("lora", 3, {"targets": ["mlp.0", "ln_f"]})),
            call(TrainStepSpec("lora", 3, {"targets": "mlp.0"})), call(TrainStepSpec("lora", 3, {"r": 0}))]


def apply_random(rng):
    return [call(_setup(rng, targets=["mlp.0", "mlp.2"], r=int(rng.integers(1, 5)), alpha=8.0)),
            call(_setup(rng, targets=["mlp.2", "unembedding"], r=2, alpha=float(rng.choice([1.0, 16.0])),
                        model={"n_layers": 3, "d_model": 12, "n_heads": 3})),
            call(_setup(rng, targets=["blocks.1.mlp.0"], r=3, alpha=6.0))]


def merge_fixed(rng):
    return [call(ModelSpec("lora", 6, {"in": 3, "out": 2, "r": 1, "alpha": 2.0})),
            call(ModelSpec("lora", 7, {"in": 2, "out": 4, "r": 2, "alpha": 8.0, "bias": False})),
            call(ModelSpec("linear", 1, {"in": 3, "out": 2}))]


def merge_random(rng):
    return [call(_lora(rng, n_in, n_out, r, alpha, bias))
            for n_in, n_out, r, alpha, bias in ((8, 5, 2, 4.0, True), (16, 16, 4, 16.0, False), (5, 12, 1, 1.0, True),
                                                (24, 6, 8, 8.0, True))]


def windows_fixed(rng):
    ten = tensor(np.arange(10), "int64")
    return [call(ten, 3, 4, TorchRngSpec(0)), call(ten, 2, 10, TorchRngSpec(1)), call(ten, 1, 1, TorchRngSpec(2)),
            call(ten, 2, 11, TorchRngSpec(0)), call(ten, 0, 2, TorchRngSpec(0)), call(ten, 2, 0, TorchRngSpec(0)),
            call(tensor(np.arange(10.0)), 2, 2, TorchRngSpec(0)), call(tensor(np.ones((2, 5)), "int64"), 1, 2,
                                                                       TorchRngSpec(0))]


def windows_random(rng):
    calls = []
    for n, batch, length in ((200, 8, 16), (50, 3, 49), (1000, 16, 64), (30, 5, 1)):
        calls.append(call(tensor(rng.integers(0, 27, n), "int64"), batch, length, _generator(rng)))
    return calls


def step_random(rng):
    calls = []
    for frozen, model in (([], {}), (["token_embedding", "position_embedding", "blocks.0"], {}),
                          (["blocks", "ln_f"], {"n_layers": 1, "vocab_size": 27}), ([], {"tied": True})):
        calls.append(call(TrainStepSpec("finetune", int(rng.integers(2**31)),
                                        {"frozen": frozen, "model": model, "batch": int(rng.integers(1, 4))})))
    return calls


def memory_fixed(rng):
    return [call(10, 4, 2, 2), call(7_000_000_000, 7_000_000_000), call(814_592, 0), call(100, 100, 4, 0),
            call(10, 11), call(-1, 0), call(10, 4, 0), call(10.0, 4), call(10, 4, 4, -1), call(True, 0)]


def memory_random(rng):
    calls = []
    for _ in range(6):
        total = int(rng.integers(1, 10**11))
        calls.append(call(total, int(rng.integers(0, total + 1)), int(rng.choice([1, 2, 4, 8])),
                          int(rng.integers(0, 4))))
    return calls


CASES = [
    Case("q1", "count_parameters_examples", 1, "finetune.count_parameters", count_fixed,
         "count_parameters on the docstring's Linear(3, 2), a frozen bias, tied embeddings, not a module", exact),
    Case("q1", "count_parameters_random", 1, "finetune.count_parameters", count_random,
         "count_parameters of partly frozen TinyGPTs and LoRA layers, all and trainable only", exact),
    Case("q2", "lora_init_examples", 1, "finetune.LoRALinear", lora_init_fixed,
         "LoRALinear(base, r, alpha, generator) on the docstring's example, a layer without bias, bad r, alpha "
         "and base", DRAW),
    Case("q2", "lora_init_random", 1, "finetune.LoRALinear", lora_init_random,
         "LoRALinear on random linear layers and ranks: the base frozen and unchanged, A drawn from the "
         "generator, B zero, only A and B trainable", DRAW),
    Case("q3", "lora_forward_examples", 1, "finetune.LoRALinear.forward", forward_fixed,
         "LoRALinear.forward of a small layer with B not zero, one input, a 1-D input, zeros", LAYER),
    Case("q3", "lora_forward_random", 2, "finetune.LoRALinear.forward", forward_random,
         "LoRALinear.forward of random layers (B not zero) on inputs with 0 to 3 leading dimensions", LAYER),
    Case("q4", "apply_lora_examples", 1, "finetune.apply_lora", apply_fixed,
         "apply_lora on the unembedding, a target named twice, targets that match nothing or a LayerNorm, "
         "a str instead of a list, r = 0", DRAW, timeout=10),
    Case("q4", "apply_lora_random", 2, "finetune.apply_lora", apply_random,
         "apply_lora on random TinyGPTs: the count returned, which modules became adapters, their A and B, "
         "every other parameter frozen and unchanged", DRAW, timeout=10),
    Case("q5", "merge_lora_examples", 1, "finetune.merge_lora", merge_fixed,
         "merge_lora of small layers with and without bias, and of a layer that is not a LoRALinear", LAYER),
    Case("q5", "merge_lora_random", 1, "finetune.merge_lora", merge_random,
         "merge_lora of random LoRA layers (B not zero): weight W + scale * B @ A, the bias, frozen", LAYER),
    Case("q6", "random_windows_examples", 1, "finetune.random_windows", windows_fixed,
         "random_windows on the docstring's example, windows as long as the text, bad sizes and ids", exact),
    Case("q6", "random_windows_random", 1, "finetune.random_windows", windows_random,
         "random_windows on random texts from seeded generators", exact),
    Case("q7", "finetune_step_random", 3, "finetune.finetune_step", step_random,
         "finetune_step on small TinyGPTs, fully trainable, partly frozen and tied, with gradients left from "
         "an earlier step: the loss returned, then every parameter", LAYER, timeout=20),
    Case("q8", "training_memory_examples", 1, "finetune.training_memory", memory_fixed,
         "training_memory on the docstring's examples, SGD, bad counts and sizes", exact),
    Case("q8", "training_memory_random", 1, "finetune.training_memory", memory_random,
         "training_memory of random models, precisions and optimisers", exact),
]
