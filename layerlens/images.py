"""Tensors → pictures: RGB arrays and tiles for pages and figures to show (no figures here, and no plotly)."""
from __future__ import annotations

import numpy as np
import torch

from .colours import SIGNED_COLOURS


def enlarged_rgb(tile: torch.Tensor, size: int) -> np.ndarray:
    """(C, h, w) in [0, 1] → (size, size, 3) uint8, enlarged with nearest neighbours so pixels stay sharp."""
    tile = tile.detach().float().cpu().clamp(0, 1)
    tile = torch.nn.functional.interpolate(tile[None], size=(size, size), mode="nearest")[0]
    tile = tile.expand(3, -1, -1) if tile.shape[0] == 1 else tile
    return (tile.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def stretch(image: torch.Tensor) -> torch.Tensor:
    """Contrast-stretch an image to the full [0, 1] range, so faint patterns show."""
    lo, hi = image.min(), image.max()
    return (image - lo) / (hi - lo).clamp_min(1e-8)


def signed_rgb(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1], 0.5 standing for zero → RGB in [0, 1] (shape (..., 3)) on the shared signed scale."""
    stops = np.linspace(0, 1, len(SIGNED_COLOURS))
    rgb = np.array([[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)] for c in SIGNED_COLOURS])  # (stops, 3)
    v = np.clip(values, 0, 1)
    return np.stack([np.interp(v, stops, rgb[:, k]) for k in range(3)], axis=-1)


def kernel_tiles(kernels: torch.Tensor, shared: bool = False) -> list[torch.Tensor]:
    """Kernels (C_out, C_in, k, k) as displayable RGB tiles, each on its own scale symmetric around zero
    (or, shared, all on one scale, so that big and small ones show as such: for gradients and updates).

    Colour input: the kernel's own colours, mid-grey = 0. Grey input: the shared signed scale, white = 0,
    red positive, blue negative.
    """
    scale = (kernels.abs().max() if shared else kernels.abs().amax(dim=(1, 2, 3), keepdim=True)).clamp_min(1e-8)
    tiles = (kernels / (2 * scale) + 0.5).detach().cpu()  # its shape is what matters, not its size
    if kernels.shape[1] == 3:
        return list(tiles)
    rgb = signed_rgb(tiles[:, 0].numpy())  # (C_out, k, k, 3)
    return list(torch.from_numpy(rgb).float().permute(0, 3, 1, 2))


def overlay_image(image: torch.Tensor, heat: torch.Tensor, size: int = 224) -> np.ndarray:
    """A heat map (H, W) laid over its image (C, H, W) as one RGB picture (size, size, 3), uint8: the image in
    grey, the heat (scaled to its own maximum) in red-yellow on top, so the hot parts show where they are.

    The heat is a size, not a sign (below zero counts as zero), so it gets a one-sided scale, not the signed one.
    """
    from matplotlib import colormaps  # only this picture needs matplotlib: keep it out of every page's import

    grey = image.detach().float().cpu().mean(0, keepdim=True)  # (1, H, W)
    h = heat.detach().float().cpu().clamp_min(0)
    h = (h / h.max().clamp_min(1e-8)).numpy()
    colour = torch.from_numpy(colormaps["hot"](1 - h)[..., :3]).float().permute(2, 0, 1)  # hot = dark red…white
    alpha = torch.from_numpy(0.75 * h).float()[None]
    mixed = (1 - alpha) * grey.expand(3, -1, -1) * 0.8 + alpha * colour
    return enlarged_rgb(mixed, size)
