"""Generative adversarial networks: the two losses, the alternating step, and a measure of mode collapse.

The lecture's GAN is two networks in a game. The discriminator ``D`` takes a
sample and outputs the probability that it is real; the generator ``G``
turns random noise ``z`` into a sample. Here both networks output *logits*
(any real number) rather than probabilities: ``D(x) = sigmoid(logit)``. A
logit of 0 means "50 % real", +5 means about 99.3 % real, -5 about 0.7 %.

Working from logits matters: for a discriminator that is very sure, say a
logit of -100, ``sigmoid(-100)`` is about ``3.7e-44``, but torch's float32
``sigmoid`` returns exactly 0 for any logit below about -89, and ``log(0)``
is ``-inf`` (with a ``nan`` gradient). The losses below are written with
``softplus(t) = log(1 + exp(t))``, which torch computes without overflow,
so that they stay finite for logits of +-100.

Shapes: a batch of logits is a 1-D float tensor of shape (B,) (or (B, 1));
the losses average over the batch and return 0-dim tensors, so that
``loss.backward()`` works.
"""

from __future__ import annotations

from typing import Any

import torch


def _check_logits(name: str, logits: Any) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of logits, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.numel() == 0:
        raise ValueError(f"{name} is empty: a batch needs at least one logit")
    return logits.reshape(-1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss: binary cross-entropy of real samples against 1 and fake ones against 0.

    Args:
        real_logits: the discriminator's logits for a batch of real samples, shape (B,) or (B, 1).
        fake_logits: its logits for a batch of generated samples, shape (B',) or (B', 1).

    Returns:
        A 0-dim tensor: ``mean(-log D(x_real)) + mean(-log(1 - D(x_fake)))`` with ``D = sigmoid(logit)``.
        Each batch is averaged on its own, then the two means are added.

    With ``softplus(t) = log(1 + exp(t))``: ``-log sigmoid(t) = softplus(-t)`` and
    ``-log(1 - sigmoid(t)) = softplus(t)``. Compute it that way (``torch.nn.functional.softplus``, or
    ``binary_cross_entropy_with_logits``), never as ``log(sigmoid(...))``: for a logit of -100 the
    result must be about 100, not ``inf``.

    Worked example: ``real_logits = [0.0]``, ``fake_logits = [0.0]`` (a discriminator that says 50 %
    to everything) gives ``log 2 + log 2 = 1.3863``. ``real_logits = [100.0]``, ``fake_logits =
    [-100.0]`` (certain and right) gives about 0; ``real_logits = [-100.0]``, ``fake_logits = [0.0]``
    gives about ``100 + 0.6931``.

    Raises:
        TypeError: if an argument is not a floating-point tensor.
        ValueError: if a batch is empty.
    """
    real = _check_logits("real_logits", real_logits)
    fake = _check_logits("fake_logits", fake_logits)
    raise NotImplementedError(
        'discriminator_loss() is not written yet: implement it in genai_hw/gan.py '
        '(homework 3, question q1)'
    )


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """The generator's loss on the discriminator's logits for generated samples.

    Args:
        fake_logits: the discriminator's logits ``t`` for a batch of generated samples, shape (B,) or (B, 1).
        saturating: which form to return (see below).

    Returns:
        A 0-dim tensor.

        - ``saturating=False`` (the default, the lecture's "negative log of D(x)"): ``mean(-log D)``, that is
          ``mean(softplus(-t))``. The generator minimises it by making ``D`` say "real".
        - ``saturating=True`` (the original minimax form, which the generator minimises too):
          ``mean(log(1 - D))``, that is ``mean(-softplus(t))``. It is always negative.

    Both must be finite for logits of +-100 (use ``softplus``, as in :func:`discriminator_loss`).

    Why two forms: when the discriminator is certain that a sample is fake (``t`` very negative, ``D``
    near 0), the saturating loss is flat (its gradient with respect to ``t`` is ``-sigmoid(t)``, about 0),
    while the non-saturating one still has a gradient of about -1: the lecture's vanishing gradient.

    Worked example: ``fake_logits = [0.0]`` gives ``log 2 = 0.6931`` (non-saturating) and ``-0.6931``
    (saturating); ``fake_logits = [-100.0]`` gives about ``100`` and about ``-3.7e-44``.

    Raises:
        TypeError: if ``fake_logits`` is not a floating-point tensor.
        ValueError: if it is empty.
    """
    fake = _check_logits("fake_logits", fake_logits)
    raise NotImplementedError(
        'generator_loss() is not written yet: implement it in genai_hw/gan.py '
        '(homework 3, question q2)'
    )


def gan_train_step(
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
) -> tuple[float, float]:
    """One round of the lecture's game: one discriminator step, then one generator step.

    Args:
        generator: maps noise ``z`` of shape (B, Z) to samples of the shape of ``real``.
        discriminator: maps samples to logits of shape (B,) or (B, 1).
        opt_g: the optimiser of the generator's parameters (only those).
        opt_d: the optimiser of the discriminator's parameters (only those).
        real: a batch of real samples, shape (B, ...).
        z: a batch of noise, shape (B, Z); the same ``z`` is used in both steps.

    Returns:
        ``(d_loss, g_loss)`` as Python floats: the discriminator's loss computed in its step (before its
        update) and the generator's non-saturating loss computed in its step.

    In this order:

    1. Discriminator step: ``opt_d.zero_grad()``; ``fake = generator(z).detach()`` (detached, so the
       generator gets no gradient from this step); ``d_loss = discriminator_loss(discriminator(real),
       discriminator(fake))``; ``d_loss.backward()``; ``opt_d.step()``.
    2. Generator step, against the discriminator *as just updated*: ``opt_g.zero_grad()``;
       ``g_loss = generator_loss(discriminator(generator(z)))`` (non-saturating, not detached);
       ``g_loss.backward()``; ``opt_g.step()``.

    The generator step must leave the discriminator's weights unchanged (only ``opt_g`` steps; the
    gradients it leaves on the discriminator's parameters are zeroed by the next ``opt_d.zero_grad()``),
    and the discriminator step the generator's.
    """
    raise NotImplementedError(
        'gan_train_step() is not written yet: implement it in genai_hw/gan.py '
        '(homework 3, question q3)'
    )


def mode_coverage(samples: Any, centers: Any, radius: float, min_count: int = 1) -> int:
    """How many modes a generator covers: the centres with at least ``min_count`` samples near them.

    Args:
        samples: generated points, shape (N, d) (a torch tensor or a NumPy array).
        centers: the modes of the real data, shape (K, d) (for the 8-Gaussian ring, K = 8, d = 2).
        radius: a sample counts for a centre when its Euclidean distance to it is at most ``radius``.
        min_count: how many samples a centre needs to count as covered.

    Returns:
        An int from 0 to K. A sample near two centres counts for both.

    Mode collapse shows as a low count: a generator that puts every sample on one mode covers 1 of 8.

    Worked example: ``centers = [[0, 0], [10, 0]]``, ``samples = [[0.5, 0], [0, -0.5], [4, 0]]``,
    ``radius = 1`` gives 1 (two samples near the first centre, none near the second); with
    ``min_count = 3`` it gives 0.

    Raises:
        ValueError: if the shapes do not match as described, ``radius`` is negative or ``min_count`` is
            below 1.
    """
    points = torch.as_tensor(samples, dtype=torch.float64).detach().cpu()
    modes = torch.as_tensor(centers, dtype=torch.float64).detach().cpu()
    if points.ndim != 2 or modes.ndim != 2 or points.shape[1] != modes.shape[1]:
        raise ValueError(f"samples (N, d) and centers (K, d) must share d, got shapes {tuple(points.shape)} "
                         f"and {tuple(modes.shape)}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    raise NotImplementedError(
        'mode_coverage() is not written yet: implement it in genai_hw/gan.py '
        '(homework 3, question q4)'
    )
