"""Figure builders: each returns a plotly figure; pages decide where to show it."""
from __future__ import annotations

import base64
import io
import math

import numpy as np
import plotly.graph_objects as go
import torch

from .colours import NEGATIVE_COLOUR, POSITIVE_COLOUR, SIGNED_SCALE
from .images import enlarged_rgb
from .training import History

FONT = dict(size=13)
PAGE_WIDTH = 900  # px a full-width figure is assumed to get (wide layout, a laptop screen): sets mosaics' heights


def _margins(title: str | None) -> dict:
    return dict(margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title, font=FONT)


def _figure(traces, height: int, title: str | None = None, **layout) -> go.Figure:
    """A figure built in one go, its traces (one or a list) and layout at once: plotly checks every property on each
    change, so updating a built figure (update_layout, update_xaxes, add_trace) costs it several times as much, and
    the pages build their figures again on every rerun for every visitor."""
    return go.Figure(traces, layout=dict(height=height, **_margins(title), **layout))


def _grid(rows: int, cols: int, titles: tuple[str, ...] | list[str] = (), horizontal_spacing: float | None = None,
          vertical_spacing: float | None = None) -> tuple[dict, list[tuple[str, str]]]:
    """plotly's make_subplots grid (row 1 on top) as a plain layout: each cell's axes (domain and anchor) and the
    titles over the cells; with it, each cell's axes ("x2", "y2"), row by row. A figure built in one go on it takes a
    quarter of make_subplots and its row-by-row updates (40 against 9 ms for the Train page's history); test_plots.py
    holds the two layouts equal."""
    hs = 0.2 / cols if horizontal_spacing is None else horizontal_spacing
    vs = 0.3 / rows if vertical_spacing is None else vertical_spacing
    widths, heights = [(1.0 - hs * (cols - 1)) / cols] * cols, [(1.0 - vs * (rows - 1)) / rows] * rows
    layout, cells, annotations = {}, [], []
    for r in range(rows):
        below = rows - 1 - r  # rows under this one
        bottom = sum(heights[:below]) + below * vs
        y_domain = [min(max(bottom, 0.0), 1.0), min(max(bottom + heights[-1 - r], 0.0), 1.0)]
        for c in range(cols):
            left = sum(widths[:c]) + c * hs
            x_domain, n = [left, left + widths[c]], len(cells) + 1
            x, y = ("x", "y") if n == 1 else (f"x{n}", f"y{n}")
            layout[f"xaxis{n if n > 1 else ''}"] = dict(domain=x_domain, anchor=y)
            layout[f"yaxis{n if n > 1 else ''}"] = dict(domain=y_domain, anchor=x)
            cells.append((x, y))
            if n <= len(titles) and titles[n - 1]:
                annotations.append(dict(y=y_domain[1], xref="paper", x=sum(x_domain) / 2.0, yref="paper",
                                        text=titles[n - 1], showarrow=False, font=dict(size=16), xanchor="center",
                                        yanchor="bottom"))
    return {**layout, "annotations": annotations}, cells


def _axes(layout: dict, cells: list[tuple[str, str]], which: str, **settings) -> None:
    """Set settings on the x (which="x") or y axes of the given cells of a _grid layout."""
    for cell in cells:
        name = cell[0 if which == "x" else 1]
        layout[f"{which}axis{name[1:]}"].update(settings)


def _drawable(values) -> list:
    """Values a line can show: NaN and inf (where a run diverged) become None, gaps in the line."""
    return [v if math.isfinite(v) else None for v in values]


def _signed_colours(values: np.ndarray) -> np.ndarray:
    """One bar colour per value: the signed convention's red at or above zero, its blue below."""
    return np.where(values >= 0, POSITIVE_COLOUR, NEGATIVE_COLOUR)


HIDDEN = dict(visible=False)
PICTURE_Y = dict(visible=False, autorange="reversed", scaleanchor="x")  # row 0 on top, square pixels


def feature_grid(maps: torch.Tensor, title: str | None = None, max_channels: int = 256,
                 columns: int | None = None) -> go.Figure:
    """Feature maps (C, H, W) as one mosaic with a single colour scale for the whole layer.

    Maps with negative values get a diverging scale centred on zero; non-negative ones a sequential scale.
    """
    maps = maps[:max_channels].detach().float().cpu()
    c, h, w = maps.shape
    cols = columns or min(c, 8 if c <= 64 and h >= 8 else 16)
    rows = math.ceil(c / cols)
    gap = max(1, h // 7)
    mosaic = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    channel = np.full(mosaic.shape, -1, dtype=np.int16)  # for the hover; int16 halves what goes to the browser
    for i in range(c):
        r, q = divmod(i, cols)
        mosaic[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = maps[i].numpy()
        channel[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = i
    lo, hi = float(maps.min()), float(maps.max())
    if lo < 0:
        bound = max(abs(lo), abs(hi), 1e-6)
        scale = dict(colorscale=SIGNED_SCALE, zmin=-bound, zmax=bound, zmid=0)
    else:
        scale = dict(colorscale="Viridis", zmin=0, zmax=max(hi, 1e-6))
    heat = go.Heatmap(z=mosaic, customdata=channel, hoverongaps=False, **scale,
                      hovertemplate="channel %{customdata}<br>value %{z:.3f}<extra></extra>",
                      colorbar=dict(thickness=12, len=0.9))
    height = min(700, max(160, int(90 * rows * (h + gap) / max(h, 8) * min(1.0, 8 / cols) + 60)))
    return _figure(heat, height, title, xaxis=HIDDEN, yaxis=PICTURE_Y)


def image_figure(image: torch.Tensor, title: str | None = None, height: int = 260) -> go.Figure:
    """One input image (C, H, W) in [0, 1], grey or colour."""
    arr = image.detach().float().cpu().numpy()
    if arr.shape[0] == 1:
        trace = go.Heatmap(z=arr[0], colorscale="Gray", zmin=0, zmax=1, showscale=False,
                           hovertemplate="x %{x}, y %{y}<br>%{z:.2f}<extra></extra>")
        return _figure(trace, height, title, xaxis=HIDDEN, yaxis=PICTURE_Y)
    trace = go.Image(z=(arr.transpose(1, 2, 0) * 255).astype(np.uint8))  # an image trace puts row 0 on top itself
    return _figure(trace, height, title, xaxis=HIDDEN, yaxis=dict(visible=False, scaleanchor="x"))


def vector_figure(values: torch.Tensor, title: str | None = None) -> go.Figure:
    """A 1-D activation vector (a dense layer) as bars, one per neuron."""
    v = values.detach().float().cpu().flatten().numpy()
    bars = go.Bar(x=np.arange(len(v)), y=v, marker_color=_signed_colours(v),
                  hovertemplate="neuron %{x}<br>%{y:.3f}<extra></extra>")
    return _figure(bars, 220, title, xaxis=dict(title="neuron"), yaxis=dict(title="activation"))


def probability_figure(probs: torch.Tensor, classes: tuple[str, ...], title: str | None = None) -> go.Figure:
    """Class probabilities as bars, the most likely class highlighted."""
    p = probs.detach().float().cpu().flatten().numpy()
    best = int(p.argmax())
    colors = ["#2ca02c" if i == best else "#9aa5b1" for i in range(len(p))]
    bars = go.Bar(x=list(classes), y=p, marker_color=colors, text=[f"{v:.0%}" for v in p], textposition="outside",
                  hovertemplate="%{x}: %{y:.1%}<extra></extra>")
    return _figure(bars, 300, title, xaxis=dict(type="category"),
                   yaxis=dict(range=[0, 1.15], tickformat=".0%", title="probability"))


def history_figure(history: History) -> go.Figure:
    """Loss per step (left) and train/test accuracy per epoch (right)."""
    layout, ((x1, y1), (x2, y2)) = _grid(1, 2, ("loss per step", "accuracy per epoch"))
    loss = _drawable(history.step_loss)
    epochs = list(range(1, history.epochs + 1))
    traces = [go.Scatter(x=list(range(1, len(loss) + 1)), y=loss, name="training loss",
                         line=dict(color="#d62728", width=1), xaxis=x1, yaxis=y1),
              go.Scatter(x=epochs, y=history.epoch_train_accuracy, name="train accuracy", mode="lines+markers",
                         xaxis=x2, yaxis=y2),
              go.Scatter(x=epochs, y=history.epoch_test_accuracy, name="test accuracy", mode="lines+markers",
                         xaxis=x2, yaxis=y2)]
    layout["xaxis"].update(title="step")
    layout["xaxis2"].update(title="epoch", dtick=1 if len(epochs) <= 20 else None)
    layout["yaxis2"].update(tickformat=".0%", range=[0, 1.02])  # one scale, so runs compare at a glance
    # the blank title leaves room for the subplot titles
    return _figure(traces, 340, " ", legend=dict(orientation="h", y=-0.25), **layout)


def live_loss_figure(losses: list[float], points: int = 200) -> go.Figure:
    """The training loss so far, step by step (at most `points` of them, evenly spaced), while a training runs."""
    every = max(1, len(losses) // points)
    shown = _drawable(losses[::every])
    line = go.Scatter(x=list(range(1, len(losses) + 1, every)), y=shown, mode="lines", name="training loss",
                      line=dict(color="#d62728", width=1), hovertemplate="step %{x}: loss %{y:.3f}<extra></extra>")
    return _figure(line, 200, xaxis=dict(title="step"), yaxis=dict(title="training loss", rangemode="tozero"))


def confusion_figure(counts: torch.Tensor, classes: tuple[str, ...]) -> go.Figure:
    """Confusion matrix: rows are the true class, columns the prediction."""
    c = counts.cpu().numpy()
    labels = list(classes)
    heat = go.Heatmap(z=c, x=labels, y=labels, colorscale="Blues", text=c, texttemplate="%{text}",
                      hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>", showscale=False)
    return _figure(heat, 420, xaxis=dict(title="predicted", type="category"),
                   yaxis=dict(title="true", type="category", autorange="reversed"))


def architecture_figure(rows: list[dict]) -> go.Figure:
    """The network as a left-to-right chain of boxes: layer name, output shape, learned weights."""
    shown = [r for r in rows if r["layer"] not in ("normalize", "flatten", "dropout")]
    colors = {"image": "#e0e0e0", "Conv2d": "#c6dbef", "BatchNorm2d": "#e5eef8", "MaxPool2d": "#fdd9b5",
              "Linear": "#c7e9c0"}
    shapes, annotations = [], []
    for i, r in enumerate(shown):
        shapes.append(dict(type="rect", x0=i - 0.45, x1=i + 0.45, y0=0, y1=1, line=dict(color="#888", width=1),
                           fillcolor=colors.get(r["kind"], "#eadcf2")))
        weights = f"{r['parameters']:,} w" if r["parameters"] else ""
        annotations.append(dict(x=i, y=0.5, showarrow=False, font=dict(size=11, color="#222"),
                                text=f"<b>{r['layer']}</b><br>{r['output shape']}<br>{weights}"))
        if i:
            annotations.append(dict(x=i - 0.45, y=0.5, ax=i - 0.55, ay=0.5, xref="x", yref="y", axref="x", ayref="y",
                                    showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1, arrowcolor="#888",
                                    text=""))
    # set at once: one add_shape/add_annotation at a time checks every earlier one again (0.43 s for 18 layers)
    return _figure([], 120, shapes=shapes, annotations=annotations,
                   xaxis=dict(visible=False, range=[-0.55, len(shown) - 0.45]),
                   yaxis=dict(visible=False, range=[-0.05, 1.05]))


def image_grid(tiles: list[torch.Tensor], columns: int, labels: list[str] | None = None, title: str | None = None,
               tile: int = 32, gap: int = 3, width: int = PAGE_WIDTH) -> go.Figure:
    """Images (each (C, h, w) in [0, 1], any sizes) as one mosaic: every tile enlarged to tile×tile pixels."""
    rows = math.ceil(len(tiles) / columns)
    step, row_step = tile + gap, tile + (max(gap, 14) if labels else gap)  # room for a label under each row
    # grey gaps, so that white tiles keep their edges
    mosaic = np.full((rows * row_step - (row_step - tile), columns * step - gap, 3), 200, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        mosaic[r * row_step:r * row_step + tile, c * step:c * step + tile] = enlarged_rgb(t, tile)
    annotations = []
    for i, label in enumerate(labels or []):
        r, c = divmod(i, columns)
        if label:
            annotations.append(dict(x=c * step + tile / 2, y=r * row_step + tile + (row_step - tile) / 2, text=label,
                                    showarrow=False, font=dict(size=10)))
    height = int(min(1400, max(120, width * mosaic.shape[0] / mosaic.shape[1]))) + (40 if title else 10)
    return _figure(png_image(mosaic), height, title, annotations=annotations, xaxis=HIDDEN,
                   yaxis=dict(visible=False, scaleanchor="x"))


def png_image(rgb: np.ndarray) -> go.Image:
    """An (H, W, 3) uint8 picture as an image trace that carries it as a PNG, not as numbers: the Features page's
    patches went from 1.45 MB of figure to 17 kB, and a browser draws a PNG at once where it colours pixel after
    pixel from numbers (`python benchmarks/figure_speed.py`). Axes are in pixels, row 0 on top, as with z=."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", compress_level=1)
    return go.Image(source="data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), hoverinfo="skip")


def settling_figure(history: History) -> go.Figure:
    """How far each layer's weights are from their final form after each epoch (0 = settled)."""
    return layer_epochs_figure(history.distance_to_final, "distance from final weights")


def layer_epochs_figure(per_layer: dict[str, list[float]], title: str) -> go.Figure:
    """One line per layer over the epochs (0 = the random start)."""
    traces = [go.Scatter(x=list(range(len(values))), y=values, name=name, mode="lines+markers")
              for name, values in per_layer.items()]
    epochs = max((len(values) for values in per_layer.values()), default=0)
    return _figure(traces, 320, xaxis=dict(title="epoch (0 = random start)", dtick=1 if epochs <= 21 else None),
                   yaxis=dict(title=title, rangemode="tozero"))


def gradient_norm_figure(grad_norm: dict[str, list[float]], points: int = 300) -> go.Figure:
    """The size of the gradient reaching each layer's weights over training, one line per layer, log scale.

    Averaged over windows of steps (at most `points` per line), so the trend shows through the batch-to-batch noise.
    """
    traces = []
    for name, norms in grad_norm.items():
        values = torch.tensor(norms, dtype=torch.float64)
        window = max(1, math.ceil(len(values) / points))
        usable = len(values) // window * window
        if usable == 0:
            continue
        means = values[:usable].reshape(-1, window).mean(1)
        steps = torch.arange(usable).reshape(-1, window).float().mean(1) + 1
        finite = torch.isfinite(means) & (means > 0)  # a diverged run ends in inf/NaN; log axes cannot show 0
        traces.append(go.Scatter(x=steps[finite].numpy(), y=means[finite].numpy(), name=name, mode="lines"))
    return _figure(traces, 320, xaxis=dict(title="step"), yaxis=dict(title="gradient size (norm)", type="log"))


def layer_bars_figure(values: dict[str, float], title: str, log: bool = True) -> go.Figure:
    """One bar per layer, input side on the left (e.g. the error signal that reached each layer in one step)."""
    bars = go.Bar(x=list(values), y=list(values.values()), marker_color="#d62728",
                  hovertemplate="%{x}: %{y:.3g}<extra></extra>")
    return _figure(bars, 280, xaxis=dict(type="category"), yaxis=dict(title=title, type="log" if log else "linear"))


def before_after_figure(before: torch.Tensor, after: torch.Tensor, classes: tuple[str, ...], target: int) -> go.Figure:
    """Class probabilities before and after a step, side by side; the target class's label is bold."""
    names = [f"<b>{c}</b>" if i == target else str(c) for i, c in enumerate(classes)]
    bars = [go.Bar(x=names, y=before.detach().numpy(), name="before the step", marker_color="#9aa5b1",
                   hovertemplate="%{x}: %{y:.1%}<extra>before</extra>"),
            go.Bar(x=names, y=after.detach().numpy(), name="after the step", marker_color="#2ca02c",
                   hovertemplate="%{x}: %{y:.1%}<extra>after</extra>")]
    return _figure(bars, 300, xaxis=dict(type="category"),
                   yaxis=dict(range=[0, 1.05], tickformat=".0%", title="probability"), barmode="group",
                   legend=dict(orientation="h", y=1.15))


def steps_figure(losses: list[float], checks: list[tuple[int, float]]) -> go.Figure:
    """The loss of every step taken (left) and test accuracy measured along the way (right)."""
    layout, ((x1, y1), (x2, y2)) = _grid(1, 2, ("loss of each step", "test accuracy"))
    finite = _drawable(losses)
    traces = [go.Scatter(x=list(range(1, len(losses) + 1)), y=finite, mode="lines", name="loss",
                         line=dict(color="#d62728"), xaxis=x1, yaxis=y1),
              go.Scatter(x=[s for s, _ in checks], y=[a for _, a in checks], mode="lines+markers",
                         name="test accuracy", line=dict(color="#2ca02c"), xaxis=x2, yaxis=y2)]
    layout["xaxis"].update(title="step")
    layout["xaxis2"].update(title="steps taken")
    layout["yaxis"].update(rangemode="tozero")
    layout["yaxis2"].update(tickformat=".0%", range=[0, 1.02])
    return _figure(traces, 300, " ", showlegend=False, **layout)


def depth_figure(columns: list[tuple[str, list[torch.Tensor]]], per_row: int = 3, tile: int = 48) -> go.Figure:
    """The depth story on one screen: for each block, a few top patches, titled with its receptive field."""
    layout, cells = _grid(1, len(columns), [title for title, _ in columns], horizontal_spacing=0.03)
    traces = []
    for (_, tiles), (x, y) in zip(columns, cells):
        traces.append(image_grid(tiles, per_row, tile=tile, gap=4).data[0].update(xaxis=x, yaxis=y))
        _axes(layout, [(x, y)], "x", visible=False)
        _axes(layout, [(x, y)], "y", visible=False, scaleanchor=x)
    rows = math.ceil(max(len(t) for _, t in columns) / per_row)
    column_width = PAGE_WIDTH / len(columns)  # the page's width shared by the columns
    return _figure(traces, int(60 + column_width * rows / per_row), " ", **layout)


def confusion_grid(matrices: list[tuple[str, torch.Tensor]], classes: tuple[str, ...], columns: int = 3) -> go.Figure:
    """Several models' confusion matrices side by side in one figure, one colour scale each."""
    rows = math.ceil(len(matrices) / columns)
    layout, cells = _grid(rows, columns, [name for name, _ in matrices], horizontal_spacing=0.03,
                          vertical_spacing=0.12 / rows)
    labels = list(classes)
    traces = []
    for (name, counts), (x, y) in zip(matrices, cells):
        c = counts.cpu().numpy()
        traces.append(go.Heatmap(z=c, x=labels, y=labels, colorscale="Blues", text=c, texttemplate="%{text}",
                                 showscale=False, hovertemplate=name + ": true %{y}, predicted %{x}: %{z}"
                                                                       "<extra></extra>", xaxis=x, yaxis=y))
    # class names only along the outer edges, so long ones never run into the next matrix
    _axes(layout, cells, "x", type="category", showticklabels=False)
    _axes(layout, cells[-columns:], "x", title="predicted", showticklabels=True)
    _axes(layout, cells, "y", type="category", autorange="reversed", showticklabels=False)
    _axes(layout, cells[::columns], "y", title="true", showticklabels=True, automargin=True)
    return _figure(traces, 320 * rows + 60, " ", **layout)


def accuracy_figure(rows: list[dict], cnn_accuracy: float) -> go.Figure:
    """Test accuracy per traditional model, one bar per kind of features, the CNN's as a dashed line.

    rows: dicts with "model", "features" and "accuracy".
    """
    traces = []
    colours = iter(["#1f77b4", "#ff7f0e", "#9467bd", "#2ca02c"])  # red is the CNN's
    for kind in dict.fromkeys(r["features"] for r in rows):
        mine = [r for r in rows if r["features"] == kind]
        traces.append(go.Bar(x=[r["model"] for r in mine], y=[r["accuracy"] for r in mine], name=kind,
                             marker_color=next(colours), text=[f"{r['accuracy']:.1%}" for r in mine],
                             textposition="outside", hovertemplate="%{x} on " + kind + ": %{y:.1%}<extra></extra>"))
    models = list(dict.fromkeys(r["model"] for r in rows))
    traces.append(go.Scatter(x=models, y=[cnn_accuracy] * len(models), mode="lines", name=f"CNN ({cnn_accuracy:.1%})",
                             line=dict(color="#d62728", dash="dash", width=2), hoverinfo="skip"))
    low = min([r["accuracy"] for r in rows] + [cnn_accuracy])
    return _figure(traces, 380, yaxis=dict(title="test accuracy", tickformat=".0%", range=[max(0.0, low - 0.15), 1.04]),
                   barmode="group", legend=dict(orientation="h", y=-0.15))


def learning_curve_figure(curves: dict[str, list[tuple[int, float]]], highlight: str) -> go.Figure:
    """Test accuracy against training-set size (log scale), one line per model; highlight drawn thick."""
    traces = []
    others = iter(["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"])  # no red
    for name, points in curves.items():
        sizes, accuracies = zip(*points) if points else ((), ())
        thick = name == highlight
        traces.append(go.Scatter(x=sizes, y=accuracies, name=name, mode="lines+markers",
                                 line=dict(width=4 if thick else 2, color="#d62728" if thick else next(others)),
                                 hovertemplate=name + ": %{y:.1%} with %{x:,} images<extra></extra>"))
    ticks = sorted({size for points in curves.values() for size, _ in points})
    return _figure(traces, 400, xaxis=dict(type="log", title="training images (log scale)", tickvals=ticks,
                                           ticktext=[f"{t:,}" for t in ticks]),
                   yaxis=dict(title="test accuracy", tickformat=".0%"))


def split_pixels_figure(background: np.ndarray, splits: list[dict], width: int) -> go.Figure:
    """A decision tree's first questions as marks on the image: node number at the pixel it asks about.

    background: (H, W) in [0, 1], e.g. the mean training image; splits: from classic.tree_splits
    (features indexing a flattened (C, H, W) image of width `width`).
    """
    rows = [(s["feature"] % (width * background.shape[0])) // width for s in splits]
    cols = [s["feature"] % width for s in splits]
    sizes = [26 - 4 * (s["depth"] - 1) for s in splits]
    traces = [go.Heatmap(z=background, colorscale="Gray", zmin=0, zmax=1, showscale=False, hoverinfo="skip"),
              go.Scatter(x=cols, y=rows, mode="markers+text", text=[str(s["node"]) for s in splits],
                         marker=dict(size=sizes, color="rgba(255,127,14,0.85)", line=dict(color="white")),
                         textfont=dict(color="black", size=12),
                         customdata=[[s["depth"], s["threshold"], s["images"]] for s in splits],
                         hovertemplate="question %{text} (depth %{customdata[0]}): is pixel (row %{y}, "
                                       "col %{x}) ≤ %{customdata[1]:.2f}?<br>asked of %{customdata[2]:,} "
                                       "training images<extra></extra>")]
    return _figure(traces, 440, xaxis=dict(visible=False, range=[-0.5, width - 0.5]),
                   yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"))


def arithmetic_figure(inputs: torch.Tensor, weights: torch.Tensor) -> go.Figure:
    """One neuron's k×k arithmetic on one input map: what it sees, its weights, and their products, with numbers."""
    products = inputs * weights
    titles = ("what it sees (input)", "× its weights", "= products")
    layout, cells = _grid(1, 3, titles, horizontal_spacing=0.05)
    traces = []
    for values, (x, y) in zip((inputs, weights, products), cells):
        v = values.detach().cpu().numpy()
        bound = max(float(np.abs(v).max()), 1e-6)
        traces.append(go.Heatmap(z=v, colorscale=SIGNED_SCALE, zmin=-bound, zmax=bound, showscale=False,
                                 texttemplate="%{z:.2f}", hovertemplate="%{z:.4f}<extra></extra>", xaxis=x, yaxis=y))
    _axes(layout, cells, "x", visible=False)
    _axes(layout, cells, "y", visible=False, autorange="reversed", scaleanchor="x")
    return _figure(traces, 260, " ", **layout)


def contribution_figure(values: torch.Tensor, labels: list[str], title: str) -> go.Figure:
    """Signed contributions (bars): how much each input adds to or takes from a neuron's sum."""
    v = values.detach().cpu().numpy()
    bars = go.Bar(x=labels, y=v, marker_color=_signed_colours(v), hovertemplate="%{x}: %{y:.3f}<extra></extra>")
    return _figure(bars, 260, title, xaxis=dict(type="category"), yaxis=dict(title="adds to the sum"))


def activation_figure(activation: torch.nn.Module, name: str, value: float) -> go.Figure:
    """The activation function as a curve, with this neuron's pre-activation marked on it."""
    reach = max(4.0, abs(value) * 1.2)
    x = torch.linspace(-reach, reach, 200)
    with torch.no_grad():
        y, out = activation(x), float(activation(torch.tensor([value]))[0])
    traces = [go.Scatter(x=x.numpy(), y=y.numpy(), mode="lines", name=name, line=dict(color="#555")),
              go.Scatter(x=[value], y=[out], mode="markers+text", marker=dict(size=14, color="#d62728"),
                         text=[f"{value:.2f} → {out:.2f}"], textposition="top left", name="this neuron")]
    return _figure(traces, 260, xaxis=dict(title="weighted sum + bias"), yaxis=dict(title=f"{name}(x)"),
                   showlegend=False)


def probe_figure(curves: dict[str, dict[str, float]], chance: float) -> go.Figure:
    """Linear-probe accuracy against depth, one line per model (e.g. trained, untrained, after epoch 1)."""
    traces = [go.Scatter(x=list(curve), y=list(curve.values()), name=name, mode="lines+markers",
                         hovertemplate=name + ", %{x}: %{y:.1%}<extra></extra>") for name, curve in curves.items()]
    guessing = dict(type="line", x0=0, x1=1, xref="x domain", y0=chance, y1=chance, yref="y",  # add_hline's line
                    line=dict(color="#999", dash="dot"))
    label = dict(text="guessing", showarrow=False, x=1, xanchor="right", xref="x domain", y=chance, yanchor="top",
                 yref="y")
    return _figure(traces, 380, " ", shapes=[guessing], annotations=[label],
                   xaxis=dict(title="layer (input → output)", type="category"),
                   yaxis=dict(title="linear-probe accuracy", tickformat=".0%", range=[0, 1.02]),
                   legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))  # above: clear of the toolbar


def maps_figure(points: dict[str, np.ndarray], labels: np.ndarray, classes: tuple[str, ...],
                scores: dict[str, float], picked: list[int] | None = None) -> go.Figure:
    """2-D maps of the same images at each layer, side by side, coloured by class, titled with the separation.

    Images in `picked` (test-image numbers) stand out in every map, so a group chosen at one layer can be found
    at the others.
    """
    layout, cells = _grid(1, len(points), [f"{name}<br>separation {scores[name]:.2f}" if math.isfinite(scores[name])
                                           else f"{name}<br>separation n/a" for name in points],
                          horizontal_spacing=0.02)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
               "#17becf"]
    traces = []
    for (name, xy), (x, y) in zip(points.items(), cells):
        for c, label in enumerate(classes):
            mine = labels == c
            shown = dict(selectedpoints=np.nonzero(np.isin(np.nonzero(mine)[0], picked))[0],
                         unselected=dict(marker=dict(opacity=0.12))) if picked else {}
            traces.append(go.Scattergl(x=xy[mine, 0], y=xy[mine, 1], mode="markers", name=str(label),
                                       legendgroup=str(label), showlegend=x == "x",
                                       marker=dict(size=4, color=palette[c % len(palette)]),
                                       customdata=np.nonzero(mine)[0],
                                       hovertemplate=f"{label} (test image %{{customdata}})<extra></extra>",
                                       xaxis=x, yaxis=y, **shown))
    _axes(layout, cells, "x", visible=False)
    _axes(layout, cells, "y", visible=False)
    # dragging picks dots, not a zoom
    return _figure(traces, 330, " ", legend=dict(orientation="h", y=-0.05), dragmode="select", **layout)
