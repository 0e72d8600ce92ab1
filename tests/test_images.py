"""Tensor → picture helpers return RGB arrays and tiles that show exactly what they were given."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps

from layerlens import images
from layerlens.colours import SIGNED_COLOURS


def rgb(hex_colour: str) -> list[float]:
    return [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]


def test_signed_rgb_matches_matplotlibs_reversed_rdbu():
    values = np.linspace(0, 1, 101)
    reference = colormaps["RdBu_r"](values)[:, :3]  # the same ColorBrewer scale, quantised to 256 levels
    assert np.abs(images.signed_rgb(values) - reference).max() < 0.02


def test_kernel_tiles_put_zero_at_mid_grey_and_keep_colour():
    kernels = torch.tensor([[[[-2.0, 0.0, 2.0]] * 3] * 3])  # (1, 3, 3, 3)
    tile = images.kernel_tiles(kernels)[0]
    assert tile.shape == (3, 3, 3) and tile[0, 0].tolist() == [0.0, 0.5, 1.0]
    grey = images.kernel_tiles(kernels[:, :1])[0]  # diverging: blue below zero, white at zero, red above
    assert grey.shape == (3, 3, 3)
    negative, zero, positive = grey[:, 0, 0], grey[:, 0, 1], grey[:, 0, 2]
    assert negative[2] > negative[0] and positive[0] > positive[2] and zero.min() > 0.9


def test_stretch_uses_the_full_range():
    out = images.stretch(torch.tensor([0.4, 0.5, 0.6]))
    assert out.min() == 0 and out.max() == 1


def test_shared_kernel_tiles_keep_big_and_small_apart():
    kernels = torch.tensor([[[[1.0, 0.0]]], [[[0.1, 0.0]]]])  # (2, 1, 1, 2): one kernel ten times the other
    own, shared = images.kernel_tiles(kernels), images.kernel_tiles(kernels, shared=True)
    assert torch.allclose(own[0], own[1])  # each on its own scale they look the same
    assert not torch.allclose(shared[0], shared[1]) and shared[1][:, 0, 0].min() > shared[0][:, 0, 0].min()

def test_kernel_tiles_of_grey_kernels_use_the_shared_signed_scale():
    tile = images.kernel_tiles(torch.tensor([[[[-1.0, 0.0, 1.0]]]]))[0]  # (1, 1, 1, 3) → (3, 1, 3)
    assert np.allclose(tile[:, 0].T.numpy(), [rgb(SIGNED_COLOURS[0]), rgb(SIGNED_COLOURS[5]), rgb(SIGNED_COLOURS[-1])],
                       atol=1e-6)


def test_enlarged_rgb_repeats_pixels_and_turns_grey_into_rgb():
    out = images.enlarged_rgb(torch.tensor([[[0.0, 1.0]]]), 4)  # (1, 1, 2): one dark pixel, one light
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert (out[:, :2] == 0).all() and (out[:, 2:] == 255).all()


def test_overlay_image_colours_only_where_the_heat_is():
    image, heat = torch.full((3, 2, 2), 0.5), torch.tensor([[1.0, 0.0], [-3.0, 0.0]])  # below zero counts as zero
    out = images.overlay_image(image, heat, size=2).astype(int)
    assert out.shape == (2, 2, 3)
    hot, cold, negative = out[0, 0], out[0, 1], out[1, 0]
    assert hot[0] > hot[2]  # red on top
    assert cold[0] == cold[1] == cold[2] and (negative == cold).all()  # plain grey
