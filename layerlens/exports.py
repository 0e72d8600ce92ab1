"""Files to take away: the model as a checkpoint (.pt) and as ONNX, figures as PNG, numbers as CSV, a page as one zip.

Every function returns bytes; the page decides where they go. Nothing here changes the (shared) model it is given.
"""
from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import torch

from .checkpoints import save_checkpoint
from .data import shown_name
from .nets import Net
from .plots import PAGE_WIDTH
from .training import TrainResult

log = logging.getLogger(__name__)

PNG_SCALE = 2  # pixels per layout pixel: sharp on a projector and in slides
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# One export at a time for the whole server: the ONNX exporter traces with process-wide state, and each PNG batch starts
# a Chromium (about 150 MB and a core while it draws).
_ONNX_LOCK, _BROWSER_LOCK = threading.Lock(), threading.Lock()


def file_stem(result: TrainResult) -> str:
    """A file name for the model, without suffix: its dataset and config hash ('layerlens-mnist-sample-1a2b3c4d')."""
    dataset = shown_name(result.config.dataset)
    return f"layerlens-{re.sub(r'[^A-Za-z0-9_-]+', '-', dataset).strip('-')}-{result.config.key()[:8]}"


def checkpoint_bytes(result: TrainResult) -> bytes:
    """The model as the checkpoint save_checkpoint writes: config, weights, history and metrics. The Train page's
    saved models, load_checkpoint and torch.load(weights_only=True) read it."""
    with tempfile.TemporaryDirectory() as folder:
        return save_checkpoint(result, Path(folder) / "model.pt").read_bytes()


def onnx_bytes(model: Net, classes: tuple[str, ...]) -> bytes:
    """The model as ONNX, for Netron or onnxruntime: input "image" (N, C, H, W) pixels in [0, 1], output "logits"
    (N, classes); the class names are in its metadata.

    PyTorch's TorchScript exporter (dynamo=False), not the torch.export one that is its default: for these small
    convolution stacks both give the same graph (batch-norm folded into its conv) and answers, and it takes 0.07 s
    where torch.export's took 2.7 s, 5.4 s the first time in a process with its onnxscript imports (a student's first
    ONNX download on a new server: 1.6 s against 5.8 s, benchmarks/class_exports.py). It is deprecated; the pinned
    torch (requirements.txt) has it, and tests/test_exports.py checks its file against torch's answers in onnxruntime."""
    import onnx  # only where a model is exported (1.2 s)

    net = model.config
    example = torch.zeros(2, net.in_channels, net.image_size, net.image_size)  # (N, C, H, W)
    # the layers in their order (conv → batch-norm → ReLU → pool, as the pages show them; Net.forward pools first),
    # named as on the pages; tracing never touches the shared model
    own = copy.deepcopy(model.layers).eval()
    out = io.BytesIO()
    with _ONNX_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's own notice, above
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # nets.BatchNorm2d's layout test: NCHW here, a constant
        torch.onnx.export(own, (example,), out, dynamo=False, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load_from_string(out.getvalue())
    proto.doc_string = (f"LayerLens CNN: image (N, {net.in_channels}, {net.image_size}, {net.image_size}), pixels in "
                        f"[0, 1] -> logits (N, {net.num_classes}); softmax gives the class probabilities.")
    about = {"classes": json.dumps(list(map(str, classes))), "architecture": json.dumps(net.to_dict())}
    for key, value in about.items():  # Netron shows them under the model's properties
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def csv_bytes(rows: list[dict] | pd.DataFrame) -> bytes:
    """Rows (one dict each, or a DataFrame) as UTF-8 CSV with a header line."""
    return pd.DataFrame(rows).to_csv(index=False).encode()


def confusion_rows(counts: torch.Tensor, classes: tuple[str, ...]) -> list[dict]:
    """A confusion matrix as rows: the true class, then one column per predicted class."""
    return [{"true class": str(name), **{f"predicted {c}": int(n) for c, n in zip(classes, row)}}
            for name, row in zip(classes, counts.tolist())]


def curve_rows(curves: dict[str, list[tuple[int, float]]]) -> list[dict]:
    """Learning curves as rows: model, training images, test accuracy."""
    return [{"model": name, "training images": size, "test accuracy": accuracy}
            for name, points in curves.items() for size, accuracy in points]


def probe_rows(curves: dict[str, dict[str, float]]) -> list[dict]:
    """Linear-probe curves as rows: one per layer, one column per network (trained, random weights, epoch 1, …)."""
    layers = list(dict.fromkeys(layer for curve in curves.values() for layer in curve))
    return [{"layer": layer, **{name: curve.get(layer) for name, curve in curves.items()}} for layer in layers]


def browser_path() -> str | None:
    """The Chrome or Chromium that draws PNGs ($BROWSER_PATH first, as kaleido does), or None."""
    return os.environ.get("BROWSER_PATH") or next(filter(None, map(shutil.which, BROWSERS)), None)


async def _draw(figures: list[go.Figure], width: int, scale: float) -> list[bytes]:
    import kaleido  # only where PNGs are drawn: it is not needed to run the app

    # mathjax=False: no LaTeX in these figures, and kaleido would otherwise fetch MathJax from the internet
    async with kaleido.Kaleido(n=1, mathjax=False, path=browser_path()) as browser:
        return [await browser.calc_fig(fig, opts=dict(format="png", width=width, height=fig.layout.height or 450,
                                                      scale=scale)) for fig in figures]


def figure_pngs(figures: list[go.Figure], width: int = PAGE_WIDTH, scale: float = PNG_SCALE) -> list[bytes]:
    """Each figure as PNG, drawn by one headless Chromium through kaleido (offline: plotly.js comes with plotly).
    ValueError, in words, where no browser is installed."""
    if not figures:
        return []
    if browser_path() is None:
        raise ValueError("Drawing figures as PNG needs Chrome or Chromium on the server (Debian: apt-get install "
                         "chromium; or set BROWSER_PATH to the browser).")
    start = time.perf_counter()
    with _BROWSER_LOCK, ThreadPoolExecutor(1) as pool:  # a thread of its own: asyncio.run needs one without a loop
        pngs = pool.submit(asyncio.run, _draw(figures, width, scale)).result()
    log.info("drew %d figures as PNG in %.1f s", len(figures), time.perf_counter() - start)
    return pngs


def page_zip(figures: dict[str, tuple[go.Figure, str]], tables: dict[str, list[dict] | pd.DataFrame],
             draw: Callable[[list[go.Figure]], list[bytes]] = figure_pngs) -> bytes:
    """One zip of a page: each figure as a numbered PNG, each table as CSV, and summaries.txt with every figure's
    one-line summary. figures: name → (figure, summary); tables: name → rows; draw: the figures → their PNGs
    (figure_pngs, or the server's, which keeps what it drew for the next visitor)."""
    names = [f"{i:02d}-{name}" for i, name in enumerate(figures, start=1)]
    pngs = draw([fig for fig, _ in figures.values()])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, png in zip(names, pngs):
            archive.writestr(f"{name}.png", png)
        for name, rows in tables.items():
            archive.writestr(f"{name}.csv", csv_bytes(rows))
        archive.writestr("summaries.txt", "".join(f"{name}.png: {summary}\n"
                                                  for name, (_, summary) in zip(names, figures.values())))
    return buffer.getvalue()
