"""Diffusion: noising schedules, "level t" images, the denoising loss, and sampling.

The lecture's thought experiment: take real images (level 0), add a little
Gaussian noise (level 1), again (level 2), ... until level T is pure noise;
then learn to go back one level at a time, with one network that also takes
the level as an input. This module is that chain, in the form of DDPM (Ho et
al. 2020) and the ``DDPMScheduler`` of the diffusers library.

Indexing: timesteps are 0-indexed, ``t = 0 .. T-1``, as in DDPM code and in
diffusers. Index ``t`` is the lecture's level ``t + 1``: ``noise_step`` with
``betas[0]`` turns a level 0 image into a level 1 image, and ``x_t`` below
always means "the image after step ``t``" (level ``t + 1``).

- A *schedule* is a 1-D float tensor ``betas`` of shape (T,): step ``t``
  keeps ``sqrt(1 - betas[t])`` of the signal and adds noise of variance
  ``betas[t]``, so that a signal of variance 1 stays at variance 1.
- ``alpha_bars[t] = prod(1 - betas[s] for s <= t)``: how much of the
  original's variance survives after step ``t``.
- A *denoiser* is called as ``model(x_t, t)`` with ``x_t`` a batch (B, ...)
  and ``t`` a 1-D long tensor of shape (B,) (one timestep per example); it
  returns its prediction of the noise that was added, shaped like ``x_t``.

Tensors stay on the device they come on; new random numbers come from the
caller (``noise`` arguments), except in :func:`sample`.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def _check_steps(T: Any) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int (the number of noising steps), got {T!r}")
    return T


def _check_schedule(name: str, values: Any) -> torch.Tensor:
    if not isinstance(values, torch.Tensor) or not values.is_floating_point() or values.ndim != 1:
        raise TypeError(f"{name} must be a 1-D floating-point torch.Tensor of shape (T,), got "
                        f"{type(values).__name__}{tuple(values.shape) if isinstance(values, torch.Tensor) else ''}")
    if values.numel() == 0:
        raise ValueError(f"{name} is empty: a schedule has at least one step")
    return values


def _check_timesteps(t: Any, batch: int, steps: int) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != (batch,):
        raise TypeError(f"t must be a long tensor of shape ({batch},), one timestep per example, got "
                        f"{type(t).__name__}{tuple(t.shape) if isinstance(t, torch.Tensor) else ''}"
                        f"{' of dtype ' + str(t.dtype) if isinstance(t, torch.Tensor) else ''}")
    if batch and (int(t.min()) < 0 or int(t.max()) >= steps):
        raise ValueError(f"timesteps must lie in 0 .. {steps - 1}, got {t.tolist()}")
    return t


# BEGIN SOLUTION hw04 q5
def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B,) tensor reshaped to (B, 1, ..., 1), so that it scales each example of ``like``."""
    return values.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


# END SOLUTION


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM's linear schedule (Ho et al. 2020): ``T`` betas evenly spaced from ``beta_start`` to ``beta_end``.

    Args:
        T: the number of noising steps (levels), at least 1.
        beta_start, beta_end: the first and last beta, with ``0 < beta_start <= beta_end < 1``.

    Returns:
        A float32 tensor of shape (T,): ``betas[t] = beta_start + t * (beta_end - beta_start) / (T - 1)``
        (just ``[beta_start]`` when ``T = 1``). Increasing, every value in (0, 1).

    Worked example: ``linear_betas(5)`` is ``[0.0001, 0.0050750, 0.010050, 0.0150250, 0.02]``; the paper's
    ``linear_betas(1000)`` starts at ``1e-4`` (not ``1e-8``: the betas themselves are linear, not their
    square roots) and ends at ``0.02``.

    Raises:
        ValueError: for a ``T`` that is not a positive int, or betas outside ``0 < start <= end < 1``.
    """
    _check_steps(T)
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start!r} and {beta_end!r}")
    # BEGIN SOLUTION hw04 q1
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
    # END SOLUTION


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule (Nichol and Dhariwal 2021), defined through the signal that survives.

    With ``f(u) = cos((u + s) / (1 + s) * pi / 2) ** 2`` for ``u`` in [0, 1], step ``t`` gets
    ``betas[t] = min(1 - f((t + 1) / T) / f(t / T), max_beta)``, so that (before the cap) the product of
    the ``1 - betas`` up to step ``t`` is ``f((t + 1) / T) / f(0)``: the signal fades like a cosine,
    slowly at first, instead of the linear schedule's quick early destruction. Compute in float64 and
    return float32.

    Args:
        T: the number of steps, at least 1.
        s: a small offset that keeps the first betas from being tiny (0.008 in the paper), ``s >= 0``.
        max_beta: the cap on each beta (the last ones would approach 1), ``0 < max_beta <= 1``.

    Returns:
        A float32 tensor of shape (T,), increasing, every value in (0, max_beta].

    Worked example: ``cosine_betas(4)`` is ``[0.15299, 0.41696, 0.70786, 0.999]`` (the last beta, 1.0
    before the cap, is capped at 0.999). For T = 1000 the first beta is about 4.1e-5 and the last 0.999.

    Raises:
        ValueError: for a ``T`` that is not a positive int, ``s < 0``, or ``max_beta`` outside (0, 1].
    """
    _check_steps(T)
    if s < 0 or not 0 < max_beta <= 1:
        raise ValueError(f"need s >= 0 and 0 < max_beta <= 1, got s={s!r}, max_beta={max_beta!r}")
    # BEGIN SOLUTION hw04 q2
    def f(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((t + 1) / T) / f(t / T), max_beta) for t in range(T)]
    return torch.tensor(betas, dtype=torch.float64).to(torch.float32)
    # END SOLUTION


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """The signal that survives each step: ``alpha_bars[t] = (1 - betas[0]) * ... * (1 - betas[t])``.

    Args:
        betas: a schedule, a 1-D floating-point tensor of shape (T,).

    Returns:
        A tensor of shape (T,), same dtype and device as ``betas``, decreasing from ``1 - betas[0]``.

    Worked example: ``alpha_bars(torch.tensor([0.1, 0.2, 0.5]))`` is ``[0.9, 0.72, 0.36]``.

    Raises:
        TypeError: if ``betas`` is not a 1-D floating-point tensor.
        ValueError: if it is empty.
    """
    _check_schedule("betas", betas)
    # BEGIN SOLUTION hw04 q3
    return torch.cumprod(1 - betas, dim=0)
    # END SOLUTION


def noise_step(x_prev: torch.Tensor, beta_t: float | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One step of noise, the lecture's level ``t`` -> level ``t + 1``: ``sqrt(1 - beta_t) x + sqrt(beta_t) noise``.

    Args:
        x_prev: a batch of images (any shape).
        beta_t: this step's beta, a float or a 0-dim tensor in [0, 1].
        noise: standard normal noise shaped like ``x_prev``.

    Returns:
        A tensor shaped like ``x_prev``. Scaling the image down by ``sqrt(1 - beta_t)`` keeps the variance
        of a unit-variance signal at 1, so that many steps end at pure N(0, 1) noise, not at ever louder noise.

    Worked example: ``noise_step(torch.tensor([1.0, -2.0]), 0.36, torch.tensor([0.5, 1.0]))`` is
    ``[0.8 + 0.3, -1.6 + 0.6] = [1.1, -1.0]``.

    Raises:
        ValueError: if ``noise`` is not shaped like ``x_prev`` or ``beta_t`` is outside [0, 1].
    """
    if not isinstance(x_prev, torch.Tensor) or not isinstance(noise, torch.Tensor) or noise.shape != x_prev.shape:
        raise ValueError("x_prev and noise must be tensors of the same shape")
    beta = float(beta_t)
    if not 0 <= beta <= 1:
        raise ValueError(f"beta_t must lie in [0, 1], got {beta!r}")
    # BEGIN SOLUTION hw04 q4
    return math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * noise
    # END SOLUTION


def q_sample(x0: torch.Tensor, t: torch.Tensor, abar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Straight from level 0 to the image after step ``t``, in one jump, for every example of a batch.

    Steps of :func:`noise_step` compose into one Gaussian: after step ``t`` the image is
    ``sqrt(abar[t]) * x0 + sqrt(1 - abar[t]) * noise`` (in distribution: the same as applying
    ``noise_step`` with ``betas[0], ..., betas[t]`` in turn). Training uses this jump, so that it never
    has to run the chain.

    Args:
        x0: a batch of clean images, shape (B, ...).
        t: a long tensor of shape (B,), each example's timestep in ``0 .. T-1`` (they may differ).
        abar: shape (T,), the table that :func:`alpha_bars` returns (``abar``, so that the parameter does
            not hide that function).
        noise: standard normal noise shaped like ``x0``.

    Returns:
        A tensor shaped like ``x0``; example ``i`` uses ``abar[t[i]]``.

    Worked example: ``x0 = [[1.0], [1.0]]``, ``t = [0, 1]``, ``abar = [0.64, 0.36]``,
    ``noise = [[1.0], [1.0]]`` gives ``[[0.8 + 0.6], [0.6 + 0.8]] = [[1.4], [1.4]]``.

    Raises:
        TypeError: if ``t`` is not a long tensor of shape (B,) or ``abar`` not a 1-D float tensor.
        ValueError: if a timestep is outside ``0 .. T-1`` or ``noise`` is not shaped like ``x0``.
    """
    _check_schedule("abar", abar)
    if not isinstance(x0, torch.Tensor) or x0.ndim < 1:
        raise TypeError("x0 must be a batch of images, a tensor of shape (B, ...)")
    _check_timesteps(t, x0.shape[0], abar.shape[0])
    if not isinstance(noise, torch.Tensor) or noise.shape != x0.shape:
        raise ValueError("noise must be a tensor shaped like x0")
    # BEGIN SOLUTION hw04 q5
    kept = _per_example(abar[t], x0)
    return kept.sqrt() * x0 + (1 - kept).sqrt() * noise
    # END SOLUTION


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """The sinusoidal embedding that lets one network take the level as an input.

    For ``half = dim // 2`` frequencies ``f_i = 10000 ** (-i / half)``, ``i = 0 .. half - 1``, the
    embedding of timestep ``t`` is ``[sin(t f_0), ..., sin(t f_{half-1}), cos(t f_0), ..., cos(t f_{half-1})]``:
    sines first, then cosines. Low ``i`` change quickly with ``t``, high ``i`` slowly, so nearby
    timesteps get similar vectors and far ones different vectors.

    Args:
        t: a 1-D tensor of shape (B,) of timesteps (long or float).
        dim: the embedding size, a positive even int.

    Returns:
        A float32 tensor of shape (B, dim), on ``t``'s device.

    Worked example: ``timestep_embedding(torch.tensor([0, 1]), 4)``: frequencies ``[1, 0.01]``, so row 0
    is ``[0, 0, 1, 1]`` and row 1 is ``[sin 1, sin 0.01, cos 1, cos 0.01] = [0.84147, 0.0099998,
    0.54030, 0.99995]``.

    Raises:
        TypeError: if ``t`` is not a 1-D tensor.
        ValueError: if ``dim`` is not a positive even int.
    """
    if not isinstance(t, torch.Tensor) or t.ndim != 1:
        raise TypeError(f"t must be a 1-D tensor of shape (B,), got {type(t).__name__}"
                        f"{tuple(t.shape) if isinstance(t, torch.Tensor) else ''}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"dim must be a positive even int, got {dim!r}")
    # BEGIN SOLUTION hw04 q6
    half = dim // 2
    # float64, rounded once at the end: the exact embedding, whatever order a float32 answer used
    frequencies = 10000.0 ** (-torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = t.to(torch.float64)[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(torch.float32)
    # END SOLUTION


def denoising_loss(model: Any, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                   abar: torch.Tensor) -> torch.Tensor:
    """DDPM's training loss: how well ``model`` predicts the noise that :func:`q_sample` added.

    Args:
        model: a denoiser, called as ``model(x_t, t)``.
        x0: clean images, (B, ...); ``t``: long timesteps, (B,); ``noise``: shaped like ``x0``;
        abar: (T,).

    Returns:
        A 0-dim tensor: the mean, over every number of the batch, of
        ``(model(q_sample(x0, t, abar, noise), t) - noise) ** 2``. Call the model exactly once, on
        the whole batch; the result carries gradients to the model's parameters.

    Worked example: a model that always predicts zeros has loss ``mean(noise ** 2)`` whatever ``x0`` and
    ``t`` are (about 1 for standard normal noise).

    Raises:
        TypeError, ValueError: as :func:`q_sample`.
    """
    # BEGIN SOLUTION hw04 q7
    x_t = q_sample(x0, t, abar, noise)
    return torch.mean((model(x_t, t) - noise) ** 2)
    # END SOLUTION


@torch.no_grad()
def p_sample_step(model: Any, x_t: torch.Tensor, t: int, betas: torch.Tensor, abar: torch.Tensor,
                  noise: torch.Tensor) -> torch.Tensor:
    """One reverse step of DDPM sampling (Ho et al. 2020, Algorithm 2): from ``x_t`` to ``x_{t-1}``.

    With ``beta = betas[t]``, ``alpha = 1 - beta``, ``ab = abar[t]``, ``ab_prev = abar[t - 1]``
    (1 when ``t = 0``) and the model's noise prediction ``eps = model(x_t, [t] * B)``:

    - mean: ``(x_t - beta / sqrt(1 - ab) * eps) / sqrt(alpha)``;
    - variance: ``sigma2 = beta * (1 - ab_prev) / (1 - ab)``;
    - result: ``mean + sqrt(sigma2) * noise`` when ``t > 0``; just ``mean`` at ``t = 0`` (``noise`` is
      then ignored and may be None). No clipping.

    This is what diffusers' ``DDPMScheduler.step`` computes with ``prediction_type="epsilon"``,
    ``variance_type="fixed_small"`` and ``clip_sample=False``. It runs without gradients.

    Args:
        model: a denoiser, called once as ``model(x_t, t_batch)`` with ``t_batch`` a long tensor of shape
            (B,) filled with ``t``, on ``x_t``'s device.
        x_t: the batch after step ``t``, shape (B, ...).
        t: this step's timestep, an int in ``0 .. T-1``.
        betas, abar: shape (T,).
        noise: standard normal noise shaped like ``x_t`` (None allowed at ``t = 0``).

    Returns:
        ``x_{t-1}``, shaped like ``x_t``.

    Worked example: a model that predicts zeros, ``betas = [0.36, 0.36]``, ``abar = [0.64, 0.4096]``,
    ``x_t = [[1.0]]``, ``t = 1``, ``noise = [[1.0]]``: the mean is ``1 / 0.8 = 1.25`` and ``sigma2 =
    0.36 * 0.36 / 0.5904 = 0.21951``, so the result is ``1.25 + 0.46852 = 1.71852``; at ``t = 0`` the same input
    gives ``1.25``.

    Raises:
        ValueError: if ``t`` is not an int in ``0 .. T-1`` or ``noise`` (for ``t > 0``) is not shaped like ``x_t``.
    """
    _check_schedule("betas", betas)
    _check_schedule("abar", abar)
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < betas.shape[0]:
        raise ValueError(f"t must be an int in 0 .. {betas.shape[0] - 1}, got {t!r}")
    if t > 0 and (not isinstance(noise, torch.Tensor) or noise.shape != x_t.shape):
        raise ValueError("noise must be a tensor shaped like x_t (it may be None only at t = 0)")
    # BEGIN SOLUTION hw04 q8
    t_batch = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
    eps = model(x_t, t_batch)
    beta, ab = betas[t], abar[t]
    mean = (x_t - beta / torch.sqrt(1 - ab) * eps) / torch.sqrt(1 - beta)
    if t == 0:
        return mean
    sigma2 = beta * (1 - abar[t - 1]) / (1 - ab)
    return mean + torch.sqrt(sigma2) * noise
    # END SOLUTION


@torch.no_grad()
def sample(model: Any, shape: tuple[int, ...], betas: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The whole reverse chain: from pure noise to a batch of new samples, with ``T`` calls of ``model``.

    Every random number comes from ``generator`` (a CPU ``torch.Generator``), drawn on the CPU as float32
    with ``torch.randn(shape, generator=generator)`` and then moved to ``betas``'s device, in this order:
    first ``x_{T-1}`` (pure noise), then, for ``t = T-1, T-2, ..., 1``, the noise of the step from ``t``
    (none for the last step, ``t = 0``). Each step is :func:`p_sample_step` with the schedule's
    :func:`alpha_bars`. The same generator state therefore gives the same samples on any machine.

    Args:
        model: a denoiser.
        shape: the batch's shape, e.g. ``(64, 2)`` for 64 points in 2-D.
        betas: the schedule, shape (T,).
        generator: a ``torch.Generator`` on the CPU.

    Returns:
        A float tensor of ``shape`` on ``betas``'s device: the samples (level 0).

    Worked example: with ``T = 1`` the chain is one step at ``t = 0``: ``x = randn(shape)`` then
    ``p_sample_step(model, x, 0, betas, alpha_bars(betas), None)``; a zero model returns
    ``x / sqrt(1 - betas[0])``.

    Raises:
        TypeError: if ``generator`` is not a ``torch.Generator``.
    """
    _check_schedule("betas", betas)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    # BEGIN SOLUTION hw04 q9
    bars = alpha_bars(betas)
    x = torch.randn(tuple(shape), generator=generator).to(betas.device)
    for t in range(betas.shape[0] - 1, -1, -1):
        noise = torch.randn(tuple(shape), generator=generator).to(betas.device) if t > 0 else None
        x = p_sample_step(model, x, t, betas, bars, noise)
    return x
    # END SOLUTION
