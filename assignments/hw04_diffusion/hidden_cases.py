"""Hidden test cases for homework 4 (shipped only inside the autograder zip).

Schedules are compared with the reference value by value, for the papers'
settings (T = 1000) and random ones, so a schedule off by orders of magnitude
(the squared-betas bug of a widely read tutorial), off by one step, or without
its cap loses its question. Functions that take a denoiser get the same tiny
network built from a seed in both processes (``wire.ModelSpec``); ``sample``
gets a ``torch.Generator`` from a seed (``wire.TorchRngSpec``) and must draw
its random numbers in the documented order. ``q_sample`` and ``noise_step``
are compared exactly (up to rounding) with the reference, which is stronger
than agreeing in distribution (tests/test_hw04_package.py checks that the
reference's one jump and its iterated steps agree in distribution). Tensors
are written with ``cases.tensor``: this file, like the grader's process,
never imports torch.
"""

from __future__ import annotations

import math

import numpy as np

from autograder.grading.cases import Case, approx, call, tensor
from autograder.grading.wire import ModelSpec, TorchRngSpec

# Each tolerance covers the float32 rounding of the docstring's formula in any order (tests/test_tolerances.py
# grades a float64 and a reordered float32 answer); "measured" is the worst of those over several seeds.
CLOSE = approx(rtol=1e-5, atol=1e-6)
"""A float32 formula of a few operations: each rounding is 6e-8 relative, cancellation (sqrt(1 - b) x + sqrt(b) n)
makes it up to 2e-5 relative but under 1e-6 absolute. Measured: at most 9 % of this (p_sample_step)."""
PRODUCT = approx(rtol=1e-4, atol=1e-6)
"""alpha_bars: a product of up to T = 1000 float32 factors gathers up to T roundings of 6e-8 (6e-5 relative)
in the reference and as much in the answer. Measured: 9e-7 relative (exp(cumsum(log1p(-betas))))."""
CHAIN = approx(rtol=1e-4, atol=1e-5)
"""sample: up to 40 reverse steps, each dividing by sqrt(1 - beta) and adding noise, carry each step's float32
rounding (about 5e-6 relative) to the end. Measured: 2.4e-4 absolute on values up to 4, 9 % of this."""
ANGLES = approx(rtol=0, atol=2 * 2**-14)
"""timestep_embedding at t up to 999: 2 ulps (2 * 6.1e-5) of a float32 angle t * f_i in [512, 1024). The angle's
own rounding is half an ulp, and f_i's (exp(-log(10000) i / half), 10000 ** (-i / half), 1 / 10000 ** (i / half))
an ulp or two of f_i, times t; sin and cos pass the angle's error on. The reference is exact (float64, rounded
once). Measured over every t < 1000 and even dim up to 512: 1.03e-4 (1 / 10000 ** (i / half)), 8.5e-5 (exp)."""


def _linear(T: int, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    return np.linspace(start, end, T)


def _cosine(T: int, s: float = 0.008, cap: float = 0.999) -> np.ndarray:
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    return np.array([min(1 - f((t + 1) / T) / f(t / T), cap) for t in range(T)])


def linear_fixed(rng):
    return [call(5), call(1), call(1000), call(10, 1e-3, 0.05), call(4, beta_start=0.01, beta_end=0.01),
            call(0), call(5, 0.5, 0.1), call(5, 0.0, 0.1), call(2.5), call(True)]


def linear_random(rng):
    calls = []
    for _ in range(4):
        start = float(10 ** rng.uniform(-5, -3))
        calls.append(call(int(rng.integers(2, 2000)), start, float(start + rng.uniform(0.001, 0.05))))
    return calls


def cosine_fixed(rng):
    return [call(4), call(1), call(1000), call(10, s=0.0), call(50, max_beta=0.5), call(0), call(5, s=-0.1),
            call(5, max_beta=0.0)]


def cosine_random(rng):
    return [call(int(rng.integers(2, 2000)), s=float(rng.uniform(0, 0.02)), max_beta=float(rng.uniform(0.9, 1.0)))
            for _ in range(4)]


def alpha_fixed(rng):
    return [call(tensor([0.1, 0.2, 0.5])), call(tensor([0.5], "float64")), call(tensor([0.0, 1.0])),
            call(tensor([[0.1, 0.2]])), call(tensor([1, 2], "int64")), call(tensor(np.zeros(0)))]


def alpha_random(rng):
    return [call(tensor(_linear(int(rng.integers(2, 1000))))), call(tensor(_cosine(int(rng.integers(2, 1000))))),
            call(tensor(rng.uniform(0, 0.1, int(rng.integers(1, 50))), "float64"))]


def noise_fixed(rng):
    t = tensor
    return [call(t([1.0, -2.0]), 0.36, t([0.5, 1.0])), call(t([1.0]), 0.0, t([3.0])), call(t([1.0]), 1.0, t([3.0])),
            call(t([[1.0, 2.0]]), t(0.5), t([[0.0, 0.0]])), call(t([1.0, 2.0]), 0.1, t([1.0])),
            call(t([1.0]), 1.5, t([1.0]))]


def noise_random(rng):
    calls = []
    for shape in ((16, 2), (3, 1, 8, 8), (5,)):
        calls.append(call(tensor(rng.normal(0, 1, shape)), float(rng.uniform(0, 0.5)), tensor(rng.normal(0, 1, shape))))
    return calls


def _steps(rng, B: int, T: int):
    return tensor(rng.integers(0, T, B), "int64")


def q_fixed(rng):
    t = tensor
    x0, noise = t([[1.0], [1.0]]), t([[1.0], [1.0]])
    return [call(x0, t([0, 1], "int64"), t([0.64, 0.36]), noise), call(x0, t([1, 1], "int64"), t([0.64, 0.36]), noise),
            call(x0, t([0, 2], "int64"), t([0.64, 0.36]), noise), call(x0, t([0.0, 1.0]), t([0.64, 0.36]), noise),
            call(x0, t([0], "int64"), t([0.64, 0.36]), noise), call(x0, t([0, 1], "int64"), t([0.64, 0.36]), t([1.0]))]


def q_random(rng):
    calls = []
    for shape, T in (((32, 2), 1000), ((4, 1, 8, 8), 200), ((6, 3), 10)):
        bars = np.cumprod(1 - _linear(T) if T > 10 else 1 - _cosine(T))
        calls.append(call(tensor(rng.normal(0, 1, shape)), _steps(rng, shape[0], T), tensor(bars),
                          tensor(rng.normal(0, 1, shape))))
    return calls


def embedding_fixed(rng):
    t = tensor
    return [call(t([0, 1], "int64"), 4), call(t([5], "int64"), 2), call(t([0.5, 2.0]), 6), call(t([3], "int64"), 5),
            call(t([[1, 2]], "int64"), 4), call(t([1], "int64"), 0)]


def embedding_random(rng):
    return [call(tensor(rng.integers(0, 1000, int(rng.integers(1, 20))), "int64"), int(dim)) for dim in (2, 8, 32, 128)]


def _model(rng, dim: int, steps: int, **options) -> ModelSpec:
    return ModelSpec("denoiser", int(rng.integers(2**31)), {"dim": dim, "steps": steps, "hidden": 16, **options})


def loss_fixed(rng):
    t = tensor
    zero = ModelSpec("denoiser", 0, {"dim": 1, "steps": 2, "zero": True})
    x0, noise, bars = t([[1.0], [2.0]]), t([[0.5], [-1.5]]), t([0.64, 0.36])
    return [call(zero, x0, t([0, 1], "int64"), noise, bars), call(zero, x0, t([0.0, 1.0]), noise, bars)]


def loss_random(rng):
    calls = []
    for shape, T in (((32, 2), 50), ((4, 1, 4, 4), 20), ((8, 3), 5)):
        dim = int(np.prod(shape[1:]))
        bars = np.cumprod(1 - _linear(T, 1e-3, 0.2))
        calls.append(call(_model(rng, dim, T), tensor(rng.normal(0, 1, shape)), _steps(rng, shape[0], T),
                          tensor(rng.normal(0, 1, shape)), tensor(bars)))
    return calls


def step_fixed(rng):
    t = tensor
    zero = ModelSpec("denoiser", 0, {"dim": 1, "steps": 2, "zero": True})
    betas, bars = t([0.36, 0.36]), t([0.64, 0.4096])
    return [call(zero, t([[1.0]]), 1, betas, bars, t([[1.0]])), call(zero, t([[1.0]]), 0, betas, bars, None),
            call(zero, t([[1.0]]), 2, betas, bars, t([[1.0]])), call(zero, t([[1.0]]), 1, betas, bars, None)]


def step_random(rng):
    calls = []
    for shape, T, schedule in (((64, 2), 50, "linear"), ((3, 1, 4, 4), 20, "cosine"), ((5, 2), 30, "linear")):
        dim = int(np.prod(shape[1:]))
        betas = _linear(T, 1e-3, 0.2) if schedule == "linear" else _cosine(T)
        model = _model(rng, dim, T)
        x = tensor(rng.normal(0, 1, shape))
        for step in (int(rng.integers(1, T)), 0):
            calls.append(call(model, x, step, tensor(betas), tensor(np.cumprod(1 - betas)),
                              tensor(rng.normal(0, 1, shape))))
    return calls


def sample_fixed(rng):
    zero = ModelSpec("denoiser", 0, {"dim": 2, "steps": 1, "zero": True})
    return [call(zero, (3, 2), tensor([0.19]), TorchRngSpec(7)), call(zero, (3, 2), tensor([0.19]), 7)]


def sample_random(rng):
    calls = []
    for shape, T, schedule in (((16, 2), 40, "linear"), ((2, 1, 4, 4), 10, "cosine"), ((4, 2), 3, "linear")):
        dim = int(np.prod(shape[1:]))
        betas = _linear(T, 1e-3, 0.2) if schedule == "linear" else _cosine(T)
        calls.append(call(_model(rng, dim, T), shape, tensor(betas), TorchRngSpec(int(rng.integers(2**31)))))
    return calls


CASES = [
    Case("q1", "linear_betas_examples", 1, "diffusion.linear_betas", linear_fixed,
         "linear_betas on the docstring's example, T = 1, the paper's T = 1000, other ranges, bad arguments", CLOSE),
    Case("q1", "linear_betas_random", 1, "diffusion.linear_betas", linear_random,
         "linear_betas on random T and beta ranges", CLOSE),
    Case("q2", "cosine_betas_examples", 1, "diffusion.cosine_betas", cosine_fixed,
         "cosine_betas on the docstring's example, T = 1, T = 1000, s = 0, a low cap, bad arguments", CLOSE),
    Case("q2", "cosine_betas_random", 1, "diffusion.cosine_betas", cosine_random,
         "cosine_betas on random T, offsets and caps", CLOSE),
    Case("q3", "alpha_bars_examples", 1, "diffusion.alpha_bars", alpha_fixed,
         "alpha_bars on the docstring's example, float64, betas of 0 and 1, bad shapes and dtypes", CLOSE),
    Case("q3", "alpha_bars_random", 1, "diffusion.alpha_bars", alpha_random,
         "alpha_bars of linear, cosine and random schedules", PRODUCT),
    Case("q4", "noise_step_examples", 1, "diffusion.noise_step", noise_fixed,
         "noise_step on the docstring's example, beta 0 and 1, a 0-dim tensor beta, bad arguments", CLOSE),
    Case("q4", "noise_step_random", 1, "diffusion.noise_step", noise_random,
         "noise_step on random batches of points and images", CLOSE),
    Case("q5", "q_sample_examples", 1, "diffusion.q_sample", q_fixed,
         "q_sample on the docstring's example, a timestep out of range, float timesteps, bad shapes", CLOSE),
    Case("q5", "q_sample_random", 2, "diffusion.q_sample", q_random,
         "q_sample on random batches with a different timestep per example", CLOSE),
    Case("q6", "timestep_embedding_examples", 1, "diffusion.timestep_embedding", embedding_fixed,
         "timestep_embedding on the docstring's example, dim 2, float timesteps, bad dims and shapes", CLOSE),
    Case("q6", "timestep_embedding_random", 1, "diffusion.timestep_embedding", embedding_random,
         "timestep_embedding on random timesteps up to 999, dims 2 to 128", ANGLES),
    Case("q7", "denoising_loss_examples", 1, "diffusion.denoising_loss", loss_fixed,
         "denoising_loss with a model that predicts zeros, float timesteps", CLOSE),
    Case("q7", "denoising_loss_random", 2, "diffusion.denoising_loss", loss_random,
         "denoising_loss of tiny random denoisers on points and images", CLOSE),
    Case("q8", "p_sample_step_examples", 1, "diffusion.p_sample_step", step_fixed,
         "p_sample_step on the docstring's example (t = 1 and t = 0), t out of range, no noise at t > 0", CLOSE),
    Case("q8", "p_sample_step_random", 2, "diffusion.p_sample_step", step_random,
         "p_sample_step of tiny random denoisers, at a random t and at t = 0", CLOSE),
    Case("q9", "sample_examples", 1, "diffusion.sample", sample_fixed,
         "sample with T = 1 and a zero model, a generator that is not a torch.Generator", CLOSE),
    Case("q9", "sample_random", 2, "diffusion.sample", sample_random,
         "sample: whole reverse chains of tiny random denoisers from a seeded generator", CHAIN, timeout=20),
]
