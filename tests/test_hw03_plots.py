"""Homework 3's plotting helper: ``image_grid`` tiles real digits upright, row by row (issue 19: the
latent walk was drawn upside down by flipping the whole picture)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from conftest import SOLUTIONS, STUBS


@pytest.fixture(params=["solutions", "stubs"])
def vae(request, reference):
    """The reference module, and the students' copy (the helper is no exercise: both must ship it)."""
    if request.param == "solutions":
        return importlib.import_module(f"{reference.__name__}.vae")
    module = importlib.import_module("genai_hw.vae")
    assert module.__file__.startswith(str(STUBS))
    return module


def digits(count: int) -> np.ndarray:
    from genai_hw.data import load_digits

    images, _ = load_digits()
    return images[:count]


def test_docstring_example(vae):
    images = np.array([[[1, 2]], [[3, 4]], [[5, 6]], [[7, 8]]])
    got = vae.image_grid(images, 2, 2)
    assert got.shape == (2, 4) and np.array_equal(got, [[1, 2, 3, 4], [5, 6, 7, 8]]), got
    got = vae.image_grid(images, 2, 2, pad=1)
    assert np.array_equal(got, [[1, 2, 0, 3, 4], [0, 0, 0, 0, 0], [5, 6, 0, 7, 8]]), got


@pytest.mark.parametrize("rows, cols, pad", [(2, 5, 0), (5, 2, 0), (1, 10, 0), (3, 3, 0), (2, 5, 1), (3, 3, 2)])
def test_each_tile_is_its_digit_upright_in_row_major_order(vae, rows, cols, pad):
    images = digits(rows * cols)
    grid = vae.image_grid(images, rows, cols, pad=pad)
    step = 8 + pad
    assert grid.shape == (rows * step - pad, cols * step - pad)
    blank = np.ones(grid.shape, dtype=bool)
    for index, image in enumerate(images):
        r, c = divmod(index, cols)
        tile = grid[r * step:r * step + 8, c * step:c * step + 8]
        assert np.array_equal(tile, image), f"tile ({r}, {c}) is not digit {index} as drawn on its own"
        assert not np.array_equal(tile, image[::-1]) and not np.array_equal(tile, image.T), index
        blank[r * step:r * step + 8, c * step:c * step + 8] = False
    assert np.all(grid[blank] == 0), "the padding between tiles must be blank"


def test_takes_torch_tensors_and_leaves_them_alone():
    module = importlib.import_module("genai_hw.vae")
    images = torch.tensor(digits(4), requires_grad=True)
    before = images.detach().clone()
    grid = module.image_grid(images, 2, 2)
    assert isinstance(grid, np.ndarray) and grid.shape == (16, 16)
    assert np.array_equal(grid[8:, :8], before[2].numpy()) and torch.equal(images.detach(), before)


def test_a_top_row_of_large_codes_is_made_by_reordering_not_flipping(vae):
    """The notebook's walk: larger z2 at the top comes from the order of the codes; each tile stays upright."""
    images = digits(6)
    by_z2_descending = images.reshape(2, 3, 8, 8)[::-1].reshape(6, 8, 8)
    grid = vae.image_grid(by_z2_descending, 2, 3)
    assert np.array_equal(grid[:8, :8], images[3]) and np.array_equal(grid[8:, 16:], images[2])


@pytest.mark.parametrize("shape, rows, cols", [((5, 8, 8), 2, 3), ((6, 64), 2, 3), ((6, 8, 8), 0, 6)])
def test_refuses_a_grid_that_does_not_fit(vae, shape, rows, cols):
    with pytest.raises(ValueError, match="rows \\* cols"):
        vae.image_grid(np.zeros(shape), rows, cols)
    with pytest.raises(ValueError, match="pad"):
        vae.image_grid(np.zeros((6, 8, 8)), 2, 3, pad=-1)


def test_helper_lies_outside_every_solution_region():
    source = (SOLUTIONS / "vae.py").read_text()
    start = source.index("def image_grid(")
    assert source.rfind("# BEGIN SOLUTION", 0, start) < source.rfind("# END SOLUTION", 0, start)
    assert "# BEGIN SOLUTION" not in source[start:]
