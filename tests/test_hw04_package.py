"""Homework 4's package: the reference schedules, noising, embedding and sampling step against diffusers'
DDPMScheduler and get_timestep_embedding (a development dependency only, never in the grading image), and
one q_sample jump against iterated noise_step, in distribution."""

from __future__ import annotations

import math
import sys

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
from diffusers import DDPMScheduler  # noqa: E402
from diffusers.models.embeddings import get_timestep_embedding  # noqa: E402


@pytest.fixture(scope="module")
def d(reference):
    return sys.modules[f"{reference.__name__}.diffusion"]


def scheduler(schedule: str, T: int = 1000) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=T, beta_schedule=schedule, clip_sample=False,
                         variance_type="fixed_small", prediction_type="epsilon")


@pytest.mark.parametrize("T", [1000, 50, 7])
def test_schedules_and_alpha_bars_agree_with_diffusers(d, T):
    for ours, name in ((d.linear_betas(T), "linear"), (d.cosine_betas(T), "squaredcos_cap_v2")):
        theirs = scheduler(name, T)
        assert ours.dtype == theirs.betas.dtype == torch.float32
        assert torch.allclose(ours, theirs.betas, rtol=1e-6, atol=1e-9), name
        assert torch.allclose(d.alpha_bars(ours), theirs.alphas_cumprod, rtol=1e-5, atol=1e-9), name


def test_the_papers_schedules_look_as_published(d):
    linear, cosine = d.linear_betas(1000), d.cosine_betas(1000)
    assert math.isclose(float(linear[0]), 1e-4, rel_tol=1e-6) and math.isclose(float(linear[-1]), 0.02, rel_tol=1e-6)
    for betas in (linear, cosine):
        assert bool((betas[1:] >= betas[:-1]).all()) and float(betas.min()) > 0 and float(betas.max()) < 1
    assert float(cosine[-1]) == pytest.approx(0.999) and float(d.alpha_bars(linear)[-1]) < 1e-4


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
def test_q_sample_is_diffusers_add_noise(d, schedule):
    theirs = scheduler(schedule)
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(16, 3, 8, 8, generator=g), torch.randn(16, 3, 8, 8, generator=g)
    t = torch.randint(0, 1000, (16,), generator=g)
    ours = d.q_sample(x0, t, d.alpha_bars(theirs.betas), noise)
    assert torch.allclose(ours, theirs.add_noise(x0, noise, t), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("t", [999, 500, 1, 0])
def test_p_sample_step_is_diffusers_step(d, schedule, t):
    theirs = scheduler(schedule)
    g = torch.Generator().manual_seed(t)
    x_t, eps = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g)
    model = lambda x, steps: eps  # noqa: E731 - a model that predicts this noise
    expected = theirs.step(eps, t, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
    noise = torch.randn(8, 2, generator=torch.Generator().manual_seed(7))  # what diffusers drew
    ours = d.p_sample_step(model, x_t, t, theirs.betas, theirs.alphas_cumprod, noise)
    # diffusers goes through the predicted clean image, Algorithm 2 does not: in float32 the two differ by
    # rounding, most near t = 0, where 1 - alpha_bar is about 1e-4 (measured: 1.3e-4 at t = 1).
    assert torch.allclose(ours, expected, rtol=1e-5, atol=1e-5 if t >= 100 else 5e-4)


@pytest.mark.parametrize("dim", [2, 32, 128])
def test_timestep_embedding_is_diffusers_with_no_frequency_shift(d, dim):
    t = torch.tensor([0, 1, 17, 500, 999])
    theirs = get_timestep_embedding(t, dim, flip_sin_to_cos=False, downscale_freq_shift=0)
    # ours is exact to float32 (computed in float64); diffusers' float32 angles near t = 999 are off by up to
    # 2 float32 ulps (2 * 2**-14), and so are their sines and cosines
    assert torch.allclose(d.timestep_embedding(t, dim), theirs, atol=2 * 2**-14)


@pytest.mark.parametrize("t", [0, 9, 99])
def test_one_jump_and_t_small_steps_agree_in_distribution(d, t):
    """200,000 copies of the value 1.5: after steps 0..t, by noise_step one at a time or by one q_sample, the
    mean is sqrt(alpha_bar) * 1.5 and the variance 1 - alpha_bar (within 5 standard errors)."""
    betas = d.linear_betas(100, 1e-3, 0.2)
    bars = d.alpha_bars(betas).double()
    g = torch.Generator().manual_seed(t)
    n = 200_000
    stepped = torch.full((n,), 1.5, dtype=torch.float64)
    for s in range(t + 1):
        stepped = d.noise_step(stepped, float(betas[s]), torch.randn(n, generator=g, dtype=torch.float64))
    jumped = d.q_sample(torch.full((n, 1), 1.5, dtype=torch.float64), torch.full((n,), t), bars,
                        torch.randn(n, 1, generator=g, dtype=torch.float64))[:, 0]
    mean, var = math.sqrt(float(bars[t])) * 1.5, 1 - float(bars[t])
    for x in (stepped, jumped):
        assert abs(float(x.mean()) - mean) < 5 * math.sqrt(var / n)
        assert abs(float(x.var()) - var) < 5 * var * math.sqrt(2 / n)


def test_denoising_loss_of_a_model_that_predicts_zeros_is_the_noises_power(d):
    g = torch.Generator().manual_seed(3)
    x0, noise = torch.randn(10, 4, generator=g), torch.randn(10, 4, generator=g)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    loss = d.denoising_loss(zero, x0, torch.arange(10), noise, d.alpha_bars(d.linear_betas(10)))
    assert loss.ndim == 0 and torch.isclose(loss, (noise**2).mean())


def test_sample_is_the_documented_chain(d):
    """sample == x_{T-1} from the generator, then p_sample_step for t = T-1..0 with each step's noise drawn
    next (none at t = 0); the same seed gives the same samples."""
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    model = lambda x, t: net(torch.cat([x, t[:, None].float() / 10], dim=1))  # noqa: E731
    betas = d.cosine_betas(10)
    got = d.sample(model, (5, 2), betas, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 2, generator=g)
    for t in range(9, -1, -1):
        x = d.p_sample_step(model, x, t, betas, d.alpha_bars(betas), torch.randn(5, 2, generator=g) if t else None)
    assert torch.equal(got, x) and torch.equal(got, d.sample(model, (5, 2), betas, torch.Generator().manual_seed(4)))
    assert not got.requires_grad  # sampling never builds a graph
