"""A training loop from scratch: fit a line by gradient descent.

This is the primer's 10-line loop turned into a function. The model is
``pred = w * x + b`` with two parameters; the loss is the mean squared error;
training nudges ``w`` and ``b`` against the gradient of the loss, ``steps``
times. Every large model is trained by the same loop, scaled up.

Simplification on purpose: full-batch gradient descent (every step sees all
the data), no stochastic mini-batches.
"""

from __future__ import annotations

import numpy as np


def fit_line(
    x: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[float, float, list[float]]:
    """Fit ``y ~ w * x + b`` by plain gradient descent on the mean squared error.

    Args:
        x: 1-D float array of shape (M,), the inputs.
        y: 1-D float array of shape (M,), the targets.
        lr: learning rate, the size of each step (for example 0.05).
        steps: number of gradient-descent steps (0 is allowed).

    Returns:
        ``(w, b, losses)``: the final parameters as Python floats, and a list of
        ``steps`` floats where ``losses[i]`` is the mean squared error *before*
        update ``i`` (so ``losses[0]`` is the loss of ``w = b = 0``).

    Start from ``w = b = 0``. At each step compute ``pred = w * x + b``, the
    loss ``mean((pred - y) ** 2)``, the gradients
    ``grad_w = 2 * mean((pred - y) * x)`` and ``grad_b = 2 * mean(pred - y)``,
    then ``w -= lr * grad_w`` and ``b -= lr * grad_b``. Do not change ``x``
    or ``y``.

    Worked example: ``x = [0, 1]``, ``y = [1, 3]``, ``lr = 0.5``, ``steps = 1``.
    pred = [0, 0], loss = (1 + 9) / 2 = 5.0, grad_w = 2 * (0 * -1 + 1 * -3) / 2 = -3,
    grad_b = 2 * (-1 - 3) / 2 = -4, so ``w = 1.5``, ``b = 2.0``, ``losses = [5.0]``.

    On the primer's data (``rng = np.random.default_rng(0)``,
    ``x = rng.uniform(-1, 1, 200)``, ``y = 2 * x + 0.5 + rng.normal(0, 0.1, 200)``)
    with ``lr = 0.05`` and 200 steps you recover ``w ~ 2.0`` and ``b ~ 0.5``.

    Raises:
        ValueError: if ``x`` and ``y`` are not 1-D arrays of the same nonzero
            length, or ``steps`` is negative.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or y.shape != x.shape or x.size == 0:
        raise ValueError(
            f"x and y must be 1-D arrays of the same nonzero length, got shapes {x.shape} and {y.shape}"
        )
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    raise NotImplementedError(
        'fit_line() is not written yet: implement it in genai_hw/training.py '
        '(homework 1, question q1)'
    )
