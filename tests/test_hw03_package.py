"""Homework 3's package: the reference GAN and VAE functions against torch's own
losses, a Monte Carlo estimate of the KL, and a hand-written training step."""

from __future__ import annotations

import copy
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SOLUTIONS


@pytest.fixture(scope="module")
def ref(reference):
    return type("Ref", (), {name: sys.modules[f"{reference.__name__}.{name}"] for name in ("gan", "vae")})


def logits(seed: int, n: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("seed", range(5))
def test_gan_losses_agree_with_torch_bce(ref, seed):
    real, fake = logits(seed, 7), logits(seed + 100, 5)
    bce = F.binary_cross_entropy_with_logits
    expected = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
    assert torch.allclose(ref.gan.discriminator_loss(real, fake), expected, rtol=1e-6)
    assert torch.allclose(ref.gan.discriminator_loss(real[:, None], fake[:, None]), expected, rtol=1e-6)
    assert torch.allclose(ref.gan.generator_loss(fake), bce(fake, torch.ones_like(fake)), rtol=1e-6)
    assert torch.allclose(ref.gan.generator_loss(fake, saturating=True), -bce(fake, torch.zeros_like(fake)),
                          rtol=1e-6)


def test_gan_losses_stay_finite_for_certain_discriminators(ref):
    sure = torch.tensor([100.0, -100.0])
    for value in (ref.gan.discriminator_loss(sure, sure), ref.gan.generator_loss(sure),
                  ref.gan.generator_loss(sure, saturating=True)):
        assert torch.isfinite(value) and value.ndim == 0
    assert math.isclose(float(ref.gan.discriminator_loss(torch.tensor([-100.0]), torch.tensor([0.0]))),
                        100 + math.log(2), rel_tol=1e-6)


def test_the_saturating_loss_has_a_vanishing_gradient(ref):
    """The lecture's failure mode: where D is sure the sample is fake, only the non-saturating loss pushes."""
    for saturating, size in ((True, 1e-3), (False, 0.99)):
        t = torch.tensor([-10.0], requires_grad=True)
        ref.gan.generator_loss(t, saturating=saturating).backward()
        assert abs(float(t.grad)) < size if saturating else abs(float(t.grad)) > size


def _nets(seed: int):
    torch.manual_seed(seed)
    generator = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    discriminator = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    return generator, discriminator


@pytest.mark.parametrize("seed", range(3))
def test_gan_train_step_is_the_lectures_alternation(ref, seed):
    generator, discriminator = _nets(seed)
    g2, d2 = copy.deepcopy(generator), copy.deepcopy(discriminator)
    real, z = torch.randn(6, 2) + 3, torch.randn(6, 3)
    opt_g, opt_d = torch.optim.SGD(generator.parameters(), lr=0.1), torch.optim.SGD(discriminator.parameters(), lr=0.1)
    d_loss, g_loss = ref.gan.gan_train_step(generator, discriminator, opt_g, opt_d, real, z)
    # By hand: the discriminator step on detached fakes, then the generator against the updated discriminator.
    bce = F.binary_cross_entropy_with_logits
    fake = g2(z).detach()
    out_real, out_fake = d2(real).reshape(-1), d2(fake).reshape(-1)
    d_expected = bce(out_real, torch.ones(6)) + bce(out_fake, torch.zeros(6))
    grads = torch.autograd.grad(d_expected, list(d2.parameters()))
    with torch.no_grad():
        for p, g in zip(d2.parameters(), grads):
            p -= 0.1 * g
    g_expected = bce(d2(g2(z)).reshape(-1), torch.ones(6))
    grads = torch.autograd.grad(g_expected, list(g2.parameters()))
    with torch.no_grad():
        for p, g in zip(g2.parameters(), grads):
            p -= 0.1 * g
    assert isinstance(d_loss, float) and isinstance(g_loss, float)
    assert math.isclose(d_loss, float(d_expected.detach()), rel_tol=1e-5)
    assert math.isclose(g_loss, float(g_expected.detach()), rel_tol=1e-5)
    for mine, theirs in ((generator, g2), (discriminator, d2)):
        for a, b in zip(mine.parameters(), theirs.parameters()):
            assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_mode_coverage_counts_like_a_loop(ref, seed):
    rng = np.random.default_rng(seed)
    angles = np.arange(8) * np.pi / 4
    centers = np.stack([2 * np.cos(angles), 2 * np.sin(angles)], axis=1)
    samples = centers[rng.integers(0, 3, 50)] + rng.normal(0, 0.3, (50, 2))
    for radius, min_count in ((0.5, 1), (0.5, 10), (5.0, 1)):
        covered = sum(sum(np.linalg.norm(s - c) <= radius for s in samples) >= min_count for c in centers)
        assert ref.gan.mode_coverage(torch.tensor(samples), centers, radius, min_count) == covered
    assert ref.gan.mode_coverage(np.zeros((0, 2)), centers, 1.0) == 0
    with pytest.raises(ValueError):
        ref.gan.mode_coverage(samples, centers[:, :1], 1.0)


def test_reparameterize_moves_noise_and_keeps_gradients(ref):
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(9.0)]], requires_grad=True)
    eps = torch.randn(20000, 2, generator=torch.Generator().manual_seed(0))
    z = ref.vae.reparameterize(mu.expand(20000, 2), logvar.expand(20000, 2), eps)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.06)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 3.0]), atol=0.06)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None


@pytest.mark.parametrize("seed", range(3))
def test_kl_agrees_with_torch_distributions_and_a_monte_carlo_estimate(ref, seed):
    gen = torch.Generator().manual_seed(seed)
    mu, logvar = torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, 3, generator=gen,
                                                                                       dtype=torch.float64)
    kl = ref.vae.kl_to_standard_normal(mu, logvar)
    q = torch.distributions.Normal(mu, torch.exp(logvar / 2))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert kl.shape == (4,) and torch.allclose(kl, torch.distributions.kl_divergence(q, p).sum(-1))
    z = q.sample((200_000,))
    terms = (q.log_prob(z) - p.log_prob(z)).sum(-1)
    estimate, error = terms.mean(0), terms.std(0) / math.sqrt(z.shape[0])
    assert torch.all((estimate - kl).abs() < 5 * error + 1e-3), (estimate, kl)


def test_vae_loss_is_summed_squared_error_plus_beta_kl(ref):
    gen = torch.Generator().manual_seed(1)
    x, x_hat = torch.rand(5, 1, 8, 8, generator=gen), torch.rand(5, 1, 8, 8, generator=gen)
    mu, logvar = torch.randn(5, 2, generator=gen), torch.randn(5, 2, generator=gen)
    kl = ref.vae.kl_to_standard_normal(mu, logvar)
    for beta in (0.0, 1.0, 4.0):
        expected = (F.mse_loss(x_hat, x, reduction="none").sum(dim=(1, 2, 3)) + beta * kl).mean()
        assert torch.allclose(ref.vae.vae_loss(x, x_hat, mu, logvar, beta=beta), expected)
    with pytest.raises(ValueError):
        ref.vae.vae_loss(x, x_hat[:4], mu, logvar)


# A training step graded as the hidden cases will grade it: the same tiny GAN built from a seed in the
# grader and in the student's process, losses compared, then every parameter of both networks.
def _gan_steps(rng):
    from autograder.grading.cases import call
    from autograder.grading.wire import TrainStepSpec

    return [call(TrainStepSpec("gan", int(rng.integers(2**31)), {"lr": lr, "optimizer": opt, "batch": batch}))
            for lr, opt, batch in ((0.05, "sgd", 16), (0.01, "adam", 8), (0.2, "sgd", 5))]


def _step_cases():
    from autograder.grading.cases import Case, approx

    return [Case("q3", "gan_train_step_random", 1, "gan.gan_train_step", _gan_steps,
                 "gan_train_step on tiny random GANs", approx(rtol=1e-5, atol=1e-7), timeout=20)]


WRONG_STEPS = {
    # the generator's step also moves the discriminator
    "touches_d": ("    opt_g.step()\n    return", "    opt_g.step()\n    opt_d.step()\n    return"),
    # the fakes are not detached: the discriminator's step leaves gradients on the generator, which opt_g adds
    "no_zero_grad_g": ("    opt_g.zero_grad()\n    g_loss", "    g_loss"),
    # the generator trains against the discriminator as it was before its step
    "stale_d": ("    opt_d.step()\n\n    opt_g.zero_grad()", "    opt_g.zero_grad()"),
}


@pytest.mark.slow
def test_a_training_step_is_judged_by_both_networks_parameters(reference, tmp_path):
    from autograder.grading.harness import grade_cases
    from conftest import plant

    results = grade_cases(_step_cases(), SOLUTIONS, SOLUTIONS, 11)
    assert all(r.passed for r in results), [r.message for r in results]
    for name, (old, new) in WRONG_STEPS.items():
        package = plant(tmp_path / name, {"gan": [(old, new)]})
        if name == "stale_d":  # the discriminator must still step, after the generator
            text = (package / "gan.py").read_text()
            (package / "gan.py").write_text(text.replace("    opt_g.step()\n    return",
                                                         "    opt_g.step()\n    opt_d.step()\n    return", 1))
        results = grade_cases(_step_cases(), package, SOLUTIONS, 11)
        message = results[0].message
        assert not results[0].passed, name
        assert "parameters are not where they should be" in message or "expected" in message, (name, message)
