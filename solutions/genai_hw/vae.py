"""Variational autoencoders: sampling a latent code, the KL term, and the loss.

The encoder of a VAE does not output one point of the latent space for an
input ``x`` but a Gaussian: a mean ``mu`` and a variance, given as
``logvar = log(sigma ** 2)`` (any real number, so no positivity constraint
is needed). The decoder turns a latent code ``z`` back into ``x_hat``.
Training samples ``z`` from the encoder's Gaussian, reconstructs, and pays
for two things: reconstruction error, and how far the encoder's Gaussian is
from the standard normal N(0, I) that new samples will be drawn from.

Shapes: ``mu`` and ``logvar`` are (B, L) for a batch of B inputs and L
latent dimensions; ``x`` and ``x_hat`` are (B, ...) with the same shape.

:func:`image_grid` is not an exercise: it tiles small images into one picture
for the notebook's plots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _check_pair(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    for name, value in (("mu", mu), ("logvar", logvar)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}")
    if mu.shape != logvar.shape or mu.ndim != 2:
        raise ValueError(f"mu and logvar must both have shape (B, L), got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Sample ``z ~ N(mu, exp(logvar))`` as a differentiable function of ``mu`` and ``logvar``.

    Args:
        mu, logvar: the encoder's outputs, shape (B, L).
        eps: standard normal noise of the same shape (the caller draws it, e.g. ``torch.randn_like(mu)``).

    Returns:
        ``mu + exp(logvar / 2) * eps``, shape (B, L). The randomness sits in ``eps`` only, so gradients
        flow to ``mu`` and ``logvar``: this is the reparameterisation trick.

    Worked example: ``mu = [[1.0, -1.0]]``, ``logvar = [[0.0, log 4]]``, ``eps = [[0.5, 0.5]]`` gives
    ``[[1.5, 0.0]]`` (standard deviations 1 and 2).

    Raises:
        TypeError: if an argument is not a floating-point tensor.
        ValueError: if the shapes differ or are not (B, L).
    """
    _check_pair(mu, logvar)
    if not isinstance(eps, torch.Tensor) or eps.shape != mu.shape:
        raise ValueError(f"eps must be a tensor of shape {tuple(mu.shape)}, got "
                         f"{tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__}")
    # BEGIN SOLUTION hw03 q5
    return mu + torch.exp(logvar / 2) * eps
    # END SOLUTION


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) for each example of a batch, in closed form.

    Args:
        mu, logvar: shape (B, L).

    Returns:
        A tensor of shape (B,): ``0.5 * sum_over_L(exp(logvar) + mu ** 2 - 1 - logvar)``. It is 0 exactly
        when ``mu = 0`` and ``logvar = 0``, and positive otherwise.

    Worked example: ``mu = [[0.0, 0.0], [1.0, 0.0]]``, ``logvar = [[0.0, 0.0], [0.0, log 2]]`` gives
    ``[0.0, 0.5 * (1 + (2 - 1 - log 2))] = [0.0, 0.6534]``.

    Raises:
        TypeError, ValueError: as :func:`reparameterize` for ``mu`` and ``logvar``.
    """
    _check_pair(mu, logvar)
    # BEGIN SOLUTION hw03 q6
    return 0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).sum(dim=1)
    # END SOLUTION


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0) -> torch.Tensor:
    """The VAE's training loss for a batch: reconstruction error plus ``beta`` times the KL term.

    Args:
        x: the inputs, shape (B, ...).
        x_hat: the decoder's reconstructions, the same shape as ``x``.
        mu, logvar: the encoder's outputs for ``x``, shape (B, L).
        beta: the weight of the KL term (1 for the plain VAE; larger values push the latent codes
            towards N(0, I) at the cost of blurrier reconstructions).

    Returns:
        A 0-dim tensor: the batch mean over examples of ``(sum over that example's features of
        (x - x_hat) ** 2) + beta * KL`` with the KL of :func:`kl_to_standard_normal`.

    Worked example: one example, ``x = [[1.0, 2.0]]``, ``x_hat = [[1.0, 0.0]]``, ``mu = [[1.0]]``,
    ``logvar = [[0.0]]``: squared error 4, KL 0.5, so 4.5 with ``beta = 1`` and 5.0 with ``beta = 2``.

    Raises:
        ValueError: if ``x`` and ``x_hat`` differ in shape, their batch size is not ``mu``'s, or ``beta``
            is negative.
    """
    _check_pair(mu, logvar)
    if x.shape != x_hat.shape or x.shape[0] != mu.shape[0]:
        raise ValueError(f"x and x_hat must have the same shape (B, ...) with B = {mu.shape[0]}, got "
                         f"{tuple(x.shape)} and {tuple(x_hat.shape)}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    # BEGIN SOLUTION hw03 q7
    squared = ((x - x_hat) ** 2).reshape(x.shape[0], -1).sum(dim=1)
    return (squared + beta * kl_to_standard_normal(mu, logvar)).mean()
    # END SOLUTION


def image_grid(images: Any, rows: int, cols: int, pad: int = 0) -> np.ndarray:
    """Tile ``rows * cols`` small images into one 2-D array, to draw with a single ``imshow``.

    Args:
        images: shape (rows * cols, H, W), a torch tensor (on any device) or a NumPy array.
        rows, cols: the grid's size.
        pad: how many pixels of value 0 (blank, for digits' ink) to put between neighbouring tiles.

    Returns:
        A float NumPy array of shape (rows * (H + pad) - pad, cols * (W + pad) - pad). The images fill the
        grid row by row: image 0 at the top left, image ``cols - 1`` at the top right, image ``cols`` starts
        the second row. Each tile is its image exactly as ``imshow(images[i])`` draws it (nothing is flipped
        or transposed): with ``pad = 0``, ``grid[r * H:(r + 1) * H, c * W:(c + 1) * W]`` is
        ``images[r * cols + c]``. To run a grid's vertical axis the other way, reorder the images; never
        flip the result, which would turn every tile upside down too.

    Worked example: four 1 x 2 images ``[[[1, 2]], [[3, 4]], [[5, 6]], [[7, 8]]]`` with ``rows = 2``,
    ``cols = 2`` give ``[[1, 2, 3, 4], [5, 6, 7, 8]]``; with ``pad = 1``, ``[[1, 2, 0, 3, 4], [0, 0, 0, 0, 0],
    [5, 6, 0, 7, 8]]``.

    Raises:
        ValueError: if ``images`` is not 3-D, does not hold exactly ``rows * cols`` images, or ``pad`` is
            negative.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    tiles = np.asarray(images, dtype=float)
    if tiles.ndim != 3 or rows < 1 or cols < 1 or tiles.shape[0] != rows * cols:
        raise ValueError(f"images must have shape (rows * cols, H, W) = ({rows * cols}, H, W), got "
                         f"{tiles.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    _, height, width = tiles.shape
    padded = np.zeros((rows, cols, height + pad, width + pad))
    padded[:, :, :height, :width] = tiles.reshape(rows, cols, height, width)
    grid = padded.transpose(0, 2, 1, 3).reshape(rows * (height + pad), cols * (width + pad))
    return grid[:grid.shape[0] - pad, :grid.shape[1] - pad]
