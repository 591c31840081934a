"""Hidden test cases for homework 3 (shipped only inside the autograder zip).

Losses are checked on float32 logits from the seed, from a sure discriminator
(logits of +-100, where ``log(sigmoid(...))`` would give ``inf``) to an
unsure one, in shapes (B,) and (B, 1). The training step is checked by
building the same tiny GAN from a seed in both processes
(``wire.TrainStepSpec``, with gradients left from an earlier step): the
returned losses and then every parameter of both networks must match the
reference, so a step that moves the wrong network, forgets ``zero_grad`` or
trains the generator against the old discriminator loses its case. Tensors
are written with ``cases.tensor``: this file, like the grader's process,
never imports torch.
"""

from __future__ import annotations

import math

import numpy as np

from autograder.grading.cases import Case, approx, call, exact, tensor
from autograder.grading.wire import TrainStepSpec

CLOSE = approx(rtol=1e-5, atol=1e-6)
"""Losses, samples and KL terms are a few float32 operations (6e-8 each) on logits and log-variances; means and
sums over at most 64 numbers add a few more; mu + exp(logvar / 2) * eps may cancel to near 0, hence atol.
Measured (tests/test_tolerances.py: float64 answers, and logsigmoid / BCE-with-logits / mse_loss / Kingma's
-0.5 * sum(1 + logvar - mu ** 2 - exp(logvar)) in float32): 9.4e-6 relative on a sample of -0.058, at most 8 %
of this; a training step's parameters 8e-7 relative (1 %)."""


def _logits(rng, n: int, scale: float, column: bool = False):
    values = rng.normal(0.0, scale, n)
    return tensor(values[:, None] if column else values)


def discriminator_fixed(rng):
    t = tensor
    return [call(t([0.0]), t([0.0])), call(t([100.0]), t([-100.0])), call(t([-100.0]), t([0.0])),
            call(t([[2.0], [-1.0]]), t([[0.5]])), call(t([1, 2], "int64"), t([0.0])), call(t([]), t([0.0])),
            call([0.0], t([0.0]))]


def discriminator_random(rng):
    calls = []
    for scale in (0.5, 3.0, 20.0, 80.0):
        b, b2 = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        column = bool(rng.integers(0, 2))
        calls.append(call(_logits(rng, b, scale, column), _logits(rng, b2, scale, column)))
    return calls


def generator_fixed(rng):
    t = tensor
    return [call(t([0.0])), call(t([0.0]), saturating=True), call(t([-100.0])), call(t([-100.0]), saturating=True),
            call(t([100.0, -100.0]), saturating=True), call(t([[1.0], [3.0]])), call(t([])), call(t([1, 2], "int64"))]


def generator_random(rng):
    return [call(_logits(rng, int(rng.integers(1, 40)), scale, bool(rng.integers(0, 2))),
                 saturating=bool(rng.integers(0, 2))) for scale in (0.5, 3.0, 20.0, 80.0, 5.0, 1.0)]


def step_random(rng):
    settings = [(0.05, "sgd", 16, 8), (0.01, "adam", 8, 16), (0.2, "sgd", 5, 4), (0.002, "adam", 32, 8)]
    return [call(TrainStepSpec("gan", int(rng.integers(2**31)), {"lr": lr, "optimizer": opt, "batch": batch,
                                                                  "hidden": hidden}))
            for lr, opt, batch, hidden in settings]


def _ring(k: int = 8, radius: float = 2.0) -> np.ndarray:
    angles = np.arange(k) * 2 * np.pi / k
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def coverage_fixed(rng):
    centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[0.5, 0.0], [0.0, -0.5], [4.0, 0.0]])
    return [call(samples, centers, 1.0), call(samples, centers, 1.0, min_count=3),
            call(np.zeros((0, 2)), centers, 1.0), call(np.array([[1.0, 0.0]]), centers, 1.0),
            call(samples, centers, 0.0), call(samples, centers[:, :1], 1.0), call(samples, centers, -1.0),
            call(samples, centers, 1.0, min_count=0)]


def coverage_random(rng):
    calls = []
    centers = _ring()
    for modes, spread, radius, min_count, as_tensor in ((8, 0.05, 0.2, 1, False), (1, 0.1, 0.3, 1, True),
                                                        (3, 0.4, 0.5, 5, False), (8, 1.0, 0.25, 3, True)):
        picks = rng.choice(8, size=modes, replace=False)
        samples = centers[rng.choice(picks, size=int(rng.integers(20, 200)))]
        samples = samples + rng.normal(0.0, spread, samples.shape)
        calls.append(call(tensor(samples) if as_tensor else samples, centers, radius,
                          min_count=min_count))
    return calls


def reparameterize_fixed(rng):
    t = tensor
    return [call(t([[1.0, -1.0]]), t([[0.0, math.log(4.0)]]), t([[0.5, 0.5]])),
            call(t([[0.0]]), t([[0.0]]), t([[0.0]])), call(t([[0.0, 0.0]]), t([[0.0]]), t([[0.0, 0.0]])),
            call(t([[0.0, 0.0]]), t([[0.0, 0.0]]), t([[0.0]]))]


def _pair(rng, b: int, latent: int):
    return tensor(rng.normal(0, 2, (b, latent))), tensor(rng.normal(0, 1.5, (b, latent)))


def reparameterize_random(rng):
    calls = []
    for _ in range(4):
        b, latent = int(rng.integers(1, 12)), int(rng.integers(1, 6))
        mu, logvar = _pair(rng, b, latent)
        calls.append(call(mu, logvar, tensor(rng.normal(0, 1, (b, latent)))))
    return calls


def kl_fixed(rng):
    t = tensor
    return [call(t([[0.0, 0.0], [1.0, 0.0]]), t([[0.0, 0.0], [0.0, math.log(2.0)]])), call(t([[0.0]]), t([[0.0]])),
            call(t([[0.0, 1.0]]), t([[0.0]])), call(t([0.0]), t([0.0]))]


def kl_random(rng):
    return [call(*_pair(rng, int(rng.integers(1, 12)), int(rng.integers(1, 8)))) for _ in range(5)]


def vae_fixed(rng):
    t = tensor
    x, x_hat, mu, logvar = t([[1.0, 2.0]]), t([[1.0, 0.0]]), t([[1.0]]), t([[0.0]])
    return [call(x, x_hat, mu, logvar), call(x, x_hat, mu, logvar, beta=2.0), call(x, x_hat, mu, logvar, beta=0.0),
            call(x, t([[1.0, 0.0, 0.0]]), mu, logvar), call(x, x_hat, mu, logvar, beta=-1.0)]


def vae_random(rng):
    calls = []
    for shape in ((4, 64), (3, 1, 8, 8), (1, 5), (6, 2, 3)):
        x = tensor(rng.uniform(0, 1, shape))
        x_hat = tensor(rng.uniform(0, 1, shape))
        mu, logvar = _pair(rng, shape[0], int(rng.integers(1, 5)))
        calls.append(call(x, x_hat, mu, logvar, beta=float(rng.choice([0.5, 1.0, 4.0]))))
    return calls


CASES = [
    Case("q1", "discriminator_loss_examples", 1, "gan.discriminator_loss", discriminator_fixed,
         "discriminator_loss on the docstring's examples, logits of +-100, (B, 1) logits, bad inputs", CLOSE),
    Case("q1", "discriminator_loss_random", 1, "gan.discriminator_loss", discriminator_random,
         "discriminator_loss on random logits, from unsure to sure discriminators", CLOSE),
    Case("q2", "generator_loss_examples", 1, "gan.generator_loss", generator_fixed,
         "generator_loss (both forms) on the docstring's examples, logits of +-100, bad inputs", CLOSE),
    Case("q2", "generator_loss_random", 1, "gan.generator_loss", generator_random,
         "generator_loss on random logits, saturating and not", CLOSE),
    Case("q3", "gan_train_step_random", 3, "gan.gan_train_step", step_random,
         "gan_train_step on tiny random GANs (losses, then both networks' parameters)", CLOSE, timeout=20),
    Case("q4", "mode_coverage_examples", 1, "gan.mode_coverage", coverage_fixed,
         "mode_coverage on the docstring's example, no samples, radius 0, bad shapes and arguments", exact),
    Case("q4", "mode_coverage_random", 1, "gan.mode_coverage", coverage_random,
         "mode_coverage on random samples around the 8-Gaussian ring, collapsed and not", exact),
    Case("q5", "reparameterize_examples", 1, "vae.reparameterize", reparameterize_fixed,
         "reparameterize on the docstring's example, zeros, mismatched shapes", CLOSE),
    Case("q5", "reparameterize_random", 1, "vae.reparameterize", reparameterize_random,
         "reparameterize on random means, log-variances and noise", CLOSE),
    Case("q6", "kl_examples", 1, "vae.kl_to_standard_normal", kl_fixed,
         "kl_to_standard_normal on the docstring's example, the standard normal itself, bad shapes", CLOSE),
    Case("q6", "kl_random", 1, "vae.kl_to_standard_normal", kl_random,
         "kl_to_standard_normal on random batches", CLOSE),
    Case("q7", "vae_loss_examples", 1, "vae.vae_loss", vae_fixed,
         "vae_loss on the docstring's example with beta 1, 2 and 0, mismatched shapes, a negative beta", CLOSE),
    Case("q7", "vae_loss_random", 1, "vae.vae_loss", vae_random,
         "vae_loss on random images and vectors, latent sizes and betas", CLOSE),
]
