"""Figure builders return plotly figures holding exactly the data they were given."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from layerlens import plots
from layerlens.colours import NEGATIVE_COLOUR, POSITIVE_COLOUR, SIGNED_SCALE
from layerlens.inspection import confusion_matrix, layer_table
from layerlens.training import History


def channel_values(fig: go.Figure, channel: int) -> np.ndarray:
    """The mosaic cells that belong to one channel, in reading order."""
    heat = fig.data[0]
    z, owner = np.asarray(heat.z, dtype=float), np.asarray(heat.customdata)
    return z[owner == channel]


def reddish(colour: str) -> bool:
    """A '#rrggbb' colour with more red than blue in it."""
    return int(colour[1:3], 16) > int(colour[5:7], 16)


def test_feature_grid_holds_every_channel_on_a_zero_centred_scale():
    torch.manual_seed(0)
    maps = torch.randn(10, 6, 6)  # has negative values
    fig = plots.feature_grid(maps, "conv1")
    assert isinstance(fig, go.Figure) and len(fig.data) == 1 and fig.data[0].type == "heatmap"
    for c in range(10):
        assert np.allclose(channel_values(fig, c), maps[c].flatten().numpy())
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.isnan(z).sum() == z.size - maps.numel()  # everything else is gap
    heat = fig.data[0]
    bound = maps.abs().max().item()
    assert heat.zmid == 0 and heat.zmin == pytest.approx(-bound) and heat.zmax == pytest.approx(bound)
    assert fig.layout.title.text == "conv1"


def test_feature_grid_of_non_negative_maps_starts_at_zero():
    maps = torch.rand(4, 9, 9) * 3  # after a relu: nothing below zero
    heat = plots.feature_grid(maps).data[0]
    assert heat.zmin == 0 and heat.zmax == pytest.approx(maps.max().item())
    assert heat.zmid is None
    assert heat.colorscale != plots.feature_grid(maps - 1).data[0].colorscale


def test_feature_grid_lays_channels_out_in_rows():
    maps = torch.arange(12 * 8 * 8, dtype=torch.float32).reshape(12, 8, 8)
    fig = plots.feature_grid(maps, columns=4)
    owner = np.asarray(fig.data[0].customdata)
    first_row = [c for c in np.unique(owner[0]) if c >= 0]
    assert first_row == [0, 1, 2, 3]
    assert sorted(c for c in np.unique(owner) if c >= 0) == list(range(12))


def test_feature_grid_shows_at_most_max_channels():
    fig = plots.feature_grid(torch.rand(70, 3, 3), max_channels=64)
    channels = np.unique(np.asarray(fig.data[0].customdata))
    assert channels.max() == 63 and (channels >= 0).sum() == 64


def test_feature_grid_sends_compact_arrays():
    """Every rerun sends the grids to the browser: 4-byte values and 2-byte channel numbers, even from float64 maps."""
    heat = plots.feature_grid(torch.rand(8, 28, 28, dtype=torch.float64)).data[0]
    assert np.asarray(heat.z).dtype == np.float32 and np.asarray(heat.customdata).dtype == np.int16


def test_pictures_are_upright_with_square_pixels_and_no_axes():
    for fig in (plots.feature_grid(torch.rand(4, 6, 6), "act1"), plots.image_figure(torch.rand(1, 7, 7), "input")):
        x, y = fig.layout.xaxis, fig.layout.yaxis
        assert y.autorange == "reversed" and y.scaleanchor == "x"  # row 0 on top, as in the image
        assert x.visible is False and y.visible is False
        assert fig.layout.height >= 160 and fig.layout.margin.t == 40  # room for the title
    colour = plots.image_figure(torch.rand(3, 5, 5)).layout
    assert colour.yaxis.scaleanchor == "x" and colour.margin.t == 10 and colour.title.text is None


def test_image_figure_grey_and_colour():
    grey = torch.rand(1, 7, 7)
    heat = plots.image_figure(grey, "input").data[0]
    assert heat.type == "heatmap" and np.allclose(np.asarray(heat.z), grey[0].numpy())
    assert (heat.zmin, heat.zmax) == (0, 1)
    colour = torch.rand(3, 5, 5)
    img = plots.image_figure(colour).data[0]
    assert img.type == "image"
    z = np.asarray(img.z)
    assert z.shape == (5, 5, 3) and z.dtype == np.uint8
    assert np.array_equal(z[..., 1], (colour[1].numpy() * 255).astype(np.uint8))


def test_vector_figure_has_one_bar_per_neuron_coloured_by_sign():
    values = torch.tensor([0.5, -1.0, 0.0, 2.0])
    bar = plots.vector_figure(values, "dense").data[0]
    assert bar.type == "bar"
    assert np.allclose(np.asarray(bar.y), values.numpy())
    colours = list(bar.marker.color)
    assert colours[1] != colours[0] and colours[0] == colours[2] == colours[3]


def test_signed_values_look_the_same_in_every_figure():
    """Red above zero, blue below, on every page: bars, feature maps and the neuron's arithmetic."""
    values = torch.tensor([0.5, -1.0])
    for fig in (plots.vector_figure(values), plots.contribution_figure(values, ["a", "b"], "products")):
        assert list(fig.data[0].marker.color) == [POSITIVE_COLOUR, NEGATIVE_COLOUR]
    assert plots.feature_grid(torch.randn(4, 5, 5)).data[0].colorscale == SIGNED_SCALE
    arithmetic = plots.arithmetic_figure(torch.rand(3, 3), torch.randn(3, 3))
    assert all(heat.colorscale == SIGNED_SCALE for heat in arithmetic.data)
    assert reddish(POSITIVE_COLOUR) and reddish(SIGNED_SCALE[-1][1])  # as the captions say: red above zero,
    assert not reddish(NEGATIVE_COLOUR) and not reddish(SIGNED_SCALE[0][1])  # blue below


def test_probability_figure_highlights_the_most_likely_class():
    probs = torch.tensor([0.1, 0.15, 0.6, 0.15])
    classes = ("cat", "dog", "ship", "frog")
    bar = plots.probability_figure(probs, classes).data[0]
    assert bar.type == "bar" and tuple(bar.x) == classes
    assert np.allclose(np.asarray(bar.y), probs.numpy())
    colours = list(bar.marker.color)
    assert colours.count(colours[2]) == 1 and len(set(colours)) == 2
    assert list(bar.text) == ["10%", "15%", "60%", "15%"]
    axis = plots.probability_figure(probs, classes).layout.yaxis
    assert tuple(axis.range) == (0, 1.15) and axis.tickformat == ".0%"  # room above 100% for the labels


def test_history_figure_plots_the_whole_history(tiny_result):
    h = tiny_result.history
    fig = plots.history_figure(h)
    assert [t.type for t in fig.data] == ["scatter"] * 3
    loss, train, test = fig.data
    assert list(loss.y) == h.step_loss and list(loss.x) == list(range(1, len(h.step_loss) + 1))
    assert list(train.y) == h.epoch_train_accuracy and list(test.y) == h.epoch_test_accuracy
    assert list(test.x) == list(range(1, len(h.epoch_test_accuracy) + 1))


def test_history_figure_of_a_diverged_run_without_epochs():
    fig = plots.history_figure(History(step_loss=[1.0, 5e19, float("nan")]))
    loss = list(fig.data[0].y)
    assert len(loss) == 3 and loss[:2] == [1.0, 5e19]
    assert all(v is None or math.isfinite(v) for v in loss)  # NaN/inf cannot be drawn: they become gaps
    assert len(fig.data[2].y) == 0
    fig.to_json()  # the page can send it to the browser


def test_the_live_loss_figure_keeps_at_most_200_points_and_draws_gaps_for_a_diverging_run():
    losses = [2.3 - i / 1000 for i in range(1000)]
    line = plots.live_loss_figure(losses).data[0]
    assert len(line.x) == len(line.y) == 200 and line.x[:2] == (1, 6) and line.y[:2] == (2.3, losses[5])
    short = plots.live_loss_figure([2.3, 1.5, math.inf]).data[0]
    assert list(short.x) == [1, 2, 3] and list(short.y) == [2.3, 1.5, None]


def test_confusion_figure_shows_the_counts(tiny_result, tiny_data):
    counts = confusion_matrix(tiny_result.model, tiny_data.x_test, tiny_data.y_test, 3)
    heat = plots.confusion_figure(counts, tiny_data.classes).data[0]
    assert heat.type == "heatmap"
    assert np.array_equal(np.asarray(heat.z), counts.numpy())
    assert tuple(heat.x) == tuple(heat.y) == tiny_data.classes


def test_architecture_figure_draws_one_box_per_shown_layer(tiny_result):
    rows = layer_table(tiny_result.model)
    fig = plots.architecture_figure(rows)
    shown = [r for r in rows if r["layer"] not in ("normalize", "flatten", "dropout")]
    boxes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(boxes) == len(shown)
    assert sorted(b.x0 for b in boxes) == [b.x0 for b in boxes]  # left to right, in network order
    text = " ".join(a.text or "" for a in fig.layout.annotations)
    for r in shown:
        assert f"<b>{r['layer']}</b>" in text and r["output shape"] in text
        if r["parameters"]:
            assert f"{r['parameters']:,} w" in text
    assert "<b>normalize</b>" not in text and "<b>flatten</b>" not in text


def png_pixels(trace) -> np.ndarray:
    """The (H, W, 3) pixels of an image trace that carries a PNG (plots.png_image)."""
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(trace.source.split(",", 1)[1]))).convert("RGB"))


def test_image_grid_places_every_tile_and_keeps_pixels_sharp():
    tiles = [torch.zeros(1, 3, 3), torch.ones(3, 5, 5), torch.full((1, 3, 3), 0.5)]
    fig = plots.image_grid(tiles, columns=2, labels=["a", "", "c"], tile=12, gap=2)
    assert fig.data[0].z is None and fig.data[0].source.startswith("data:image/png;base64,")  # a PNG, not numbers
    z = png_pixels(fig.data[0])
    assert z.shape[1] == 2 * 12 + 2 and z.shape[2] == 3
    assert (z[:12, :12] == 0).all() and (z[:12, 14:26] == 255).all() and (z[:12, 12] == 200).all()  # gap
    assert (z[z.shape[0] - 12:, :12] == 127).all()  # mid-grey, enlarged by nearest neighbours only
    assert [a.text for a in fig.layout.annotations] == ["a", "c"]


def test_weight_change_and_depth_figures():
    fig = plots.settling_figure(History(distance_to_final={"conv1": [0.3, 0.1, 0.0], "dense": [0.5, 0.2, 0.0]}))
    assert [t.name for t in fig.data] == ["conv1", "dense"] and list(fig.data[0].x) == [0, 1, 2]
    depth = plots.depth_figure([("block 1: 3×3 px", [torch.rand(1, 3, 3)] * 6),
                                ("block 2: 8×8 px", [torch.rand(3, 8, 8)] * 6)])
    assert len(depth.data) == 2 and all(t.type == "image" for t in depth.data)
    assert [a.text for a in depth.layout.annotations] == ["block 1: 3×3 px", "block 2: 8×8 px"]


def test_gradient_norm_figure_averages_windows_and_skips_what_a_log_axis_cannot_show():
    norms = {"conv1": [1.0, 3.0] * 300, "classifier": [2.0] * 599 + [math.inf]}
    fig = plots.gradient_norm_figure(norms, points=100)
    first, last = fig.data
    assert len(first.x) == 100 and np.allclose(first.y, 2.0)  # windows of 6 steps: the mean of 1s and 3s
    assert len(last.x) == 99 and np.isfinite(last.y).all()  # the window holding the inf is left out
    assert fig.layout.yaxis.type == "log"


def test_step_figures_hold_the_numbers():
    before, after = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.7, 0.2, 0.1])
    fig = plots.before_after_figure(before, after, ("a", "b", "c"), target=0)
    assert np.allclose(fig.data[0].y, before) and np.allclose(fig.data[1].y, after)
    assert list(fig.data[0].x) == ["<b>a</b>", "b", "c"]
    steps = plots.steps_figure([2.3, 1.0, math.nan], [(0, 0.1), (3, 0.4)])
    assert list(steps.data[0].y) == [2.3, 1.0, None] and list(steps.data[1].x) == [0, 3]
    bars = plots.layer_bars_figure({"conv1": 0.01, "classifier": 1.0}, "gradient size")
    assert list(bars.data[0].x) == ["conv1", "classifier"] and bars.layout.yaxis.type == "log"
    moved = plots.layer_epochs_figure({"conv1": [0.0] * 30}, "distance")
    assert moved.layout.xaxis.dtick is None  # 30 epochs: let plotly space the ticks


def test_maps_figure_has_a_trace_per_layer_and_class_and_marks_picked_images_everywhere():
    points = {"input": np.random.default_rng(0).normal(size=(6, 2)), "output": np.arange(12.0).reshape(6, 2)}
    labels = np.array([0, 1, 0, 1, 0, 1])
    fig = plots.maps_figure(points, labels, ("a", "b"), {"input": 0.0, "output": 0.9}, picked=[2, 3])
    assert len(fig.data) == 4 and fig.layout.dragmode == "select"
    for trace in fig.data:  # class a holds images 0, 2, 4; class b holds 1, 3, 5
        assert list(trace.customdata[list(trace.selectedpoints)]) == ([2] if trace.name == "a" else [3])
    plain = plots.maps_figure(points, labels, ("a", "b"), {"input": 0.0, "output": 0.9})
    assert all(t.selectedpoints is None for t in plain.data)


@pytest.mark.parametrize("rows, cols, spacing", [(1, 2, {}), (1, 3, dict(horizontal_spacing=0.05)),
                                                 (1, 6, dict(horizontal_spacing=0.02)),
                                                 (2, 3, dict(horizontal_spacing=0.03, vertical_spacing=0.06)),
                                                 (6, 3, dict(horizontal_spacing=0.03, vertical_spacing=0.02))])
def test_grid_lays_cells_and_titles_out_as_make_subplots_does(rows, cols, spacing):
    """plots._grid builds figures in one go on make_subplots' own grid: the same axes, domains and titles."""
    from plotly.subplots import make_subplots

    titles = [f"cell {i}" if i != 1 else "" for i in range(rows * cols - 1)]  # one untitled, the last cell too
    reference = make_subplots(rows=rows, cols=cols, subplot_titles=titles, **spacing)
    layout, cells = plots._grid(rows, cols, titles, **spacing)
    built = go.Figure(layout=layout)
    assert built.to_dict()["layout"] == reference.to_dict()["layout"]
    assert cells[0] == ("x", "y") and cells[-1] == (f"x{rows * cols}", f"y{rows * cols}")
    reference.add_trace(go.Scatter(x=[1], y=[2]), row=rows, col=cols)  # the last cell's axes, as add_trace sets them
    assert (reference.data[0].xaxis, reference.data[0].yaxis) == cells[-1]
