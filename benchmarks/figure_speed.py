"""Figures: what each page sends the browser, how long the figures take to build, and a figure-heavy page in Chromium.

JSON lines:
  1. per page (Streamlit's AppTest, default model, caches warm after a first visit): the seconds of a rerun, the
     number of plotly figures and their JSON size, the biggest figures;
  2. the figure builders that used to dominate: the Train page's architecture chain (one shape and two annotations
     per layer), its history (make_subplots, then trace by trace) and an image mosaic with a label per tile, built
     once with plotly's one-at-a-time calls (add_shape/add_annotation/add_trace/update_xaxes, z= numbers: how
     plots.py built them before) and once as plots.py builds them now (all at once, the mosaic as a PNG); and one
     redraw of the loss chart during a training, st.line_chart (before) against plots.live_loss_figure (now);
  3. where /usr/bin/chromium exists: the Filters & features page (the app's biggest figures) in a real browser, from
     clicking its link to its last change, first visit and again after Home.

    python benchmarks/figure_speed.py
"""
from __future__ import annotations

import json
import os
import tempfile
import time

from _bench import forget_results, print_machine

os.environ.setdefault("LAYERLENS_CACHE", tempfile.mkdtemp(prefix="layerlens-bench-"))

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import torch  # noqa: E402

from app_test import app_test  # noqa: E402
from layerlens import plots  # noqa: E402
from layerlens.checkpoints import ModelCache  # noqa: E402
from layerlens.data import SAMPLE, default_cache_dir, load_dataset  # noqa: E402
from layerlens.images import enlarged_rgb  # noqa: E402
from layerlens.inspection import layer_table  # noqa: E402
from layerlens.nets import Net, preset_config  # noqa: E402
from layerlens.training import preset_train_config  # noqa: E402
from streamlit_server import CHROMIUM, cold_and_cached_render, streamlit_app  # noqa: E402

PAGES = {"Train": "pages/1_train.py", "Layers": "pages/2_layers.py", "Filters & features": "pages/3_features.py",
         "Traditional ML": "pages/4_classic.py", "Learning": "pages/6_learning.py",
         "Abstraction": "pages/7_abstraction.py"}


def page_figures() -> None:
    at = app_test()
    at.run()
    for name, path in PAGES.items():
        at.switch_page(path)
        at.run(timeout=600)  # first visit: fits, probes, searches (probe_speed.py, classic_speed.py time those)
        start = time.perf_counter()
        at.run(timeout=600)
        rerun = time.perf_counter() - start
        assert not at.exception and not at.error, (name, at.exception, at.error)
        sizes = {chart.proto.id.split("-", 2)[-1]: len(chart.proto.spec) for chart in at.get("plotly_chart")}
        biggest = dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:3])
        print(json.dumps({"page": name, "rerun_seconds": round(rerun, 2), "figures": len(sizes),
                          "figure_json_kb": round(sum(sizes.values()) / 1e3, 1),
                          "biggest_kb": {k: round(v / 1e3, 1) for k, v in biggest.items()}}), flush=True)


def one_at_a_time_architecture(rows: list[dict]) -> go.Figure:
    """plots.architecture_figure as it was built before: one add_shape/add_annotation call per box and arrow."""
    shown = [r for r in rows if r["layer"] not in ("normalize", "flatten", "dropout")]
    fig = go.Figure()
    for i, r in enumerate(shown):
        fig.add_shape(type="rect", x0=i - 0.45, x1=i + 0.45, y0=0, y1=1)
        fig.add_annotation(x=i, y=0.5, showarrow=False, text=f"<b>{r['layer']}</b><br>{r['output shape']}")
        if i:
            fig.add_annotation(x=i - 0.45, y=0.5, ax=i - 0.55, ay=0.5, xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=2, text="")
    return fig


def one_at_a_time_grid(tiles: list[torch.Tensor], columns: int, labels: list[str], tile: int) -> go.Figure:
    """plots.image_grid as it was built before: the mosaic as numbers (z=), one add_annotation call per label."""
    rows = -(-len(tiles) // columns)
    step, row_step = tile + 3, tile + 14
    mosaic = np.full((rows * row_step - (row_step - tile), columns * step - 3, 3), 200, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        mosaic[r * row_step:r * row_step + tile, c * step:c * step + tile] = enlarged_rgb(t, tile)
    fig = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    for i, label in enumerate(labels):
        r, c = divmod(i, columns)
        fig.add_annotation(x=c * step + tile / 2, y=r * row_step + tile + 7, text=label, showarrow=False)
    return fig


def one_at_a_time_history(history) -> go.Figure:
    """plots.history_figure as it was built before: make_subplots, then each trace and axis setting one at a time."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss per step", "accuracy per epoch"))
    epochs = list(range(1, history.epochs + 1))
    fig.add_trace(go.Scatter(x=list(range(1, len(history.step_loss) + 1)), y=history.step_loss), row=1, col=1)
    fig.add_trace(go.Scatter(x=epochs, y=history.epoch_train_accuracy, mode="lines+markers"), row=1, col=2)
    fig.add_trace(go.Scatter(x=epochs, y=history.epoch_test_accuracy, mode="lines+markers"), row=1, col=2)
    fig.update_xaxes(title="step", row=1, col=1)
    fig.update_xaxes(title="epoch", dtick=1, row=1, col=2)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02], row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.25), height=340, title=" ")
    return fig


def live_chart(steps: int = 1000, repeats: int = 10) -> None:
    """What one redraw of the loss chart during a training costs the server (Streamlit without a browser): the
    st.line_chart it was, and plots.live_loss_figure through st.plotly_chart, as tasks.train_with_progress draws it."""
    import pandas as pd
    import streamlit as st

    losses = [2.3 * 0.998 ** i for i in range(steps)]

    def line_chart():
        every = max(1, steps // 200)
        st.line_chart(pd.DataFrame({"training loss": losses[::every]}, index=range(1, steps + 1, every)), height=200,
                      x_label="step")

    def plotly_chart():
        st.plotly_chart(plots.live_loss_figure(losses), config={"displayModeBar": False})

    times = {}
    for name, draw in (("st_line_chart", line_chart), ("plotly", plotly_chart)):
        draw()  # imports and caches first
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            draw()
            runs.append(time.perf_counter() - start)
        times[f"{name}_ms"] = round(sorted(runs)[repeats // 2] * 1000, 1)
    print(json.dumps({"figure": f"loss chart during a training ({steps:,} steps), one redraw, median of {repeats}",
                      **times}), flush=True)


def timed(build) -> tuple[float, int]:
    start = time.perf_counter()
    fig = build()
    seconds = time.perf_counter() - start
    return seconds, len(fig.to_json())


def builders() -> None:
    rows = layer_table(Net(preset_config("tiny", 1, 28, 10, (0.13,), (0.31,))))
    torch.manual_seed(0)
    tiles = [torch.rand(1, 3, 3) for _ in range(80)]  # the Features page's patches: 8 channels × 10 tiles of 3×3
    labels = [f"ch {i // 10}: {i % 10}" for i in range(80)]
    history = ModelCache(default_cache_dir() / "models").get(preset_train_config("tiny", load_dataset(SAMPLE))).history
    cases = {"architecture chain, tiny (18 layers)": (lambda: one_at_a_time_architecture(rows),
                                                      lambda: plots.architecture_figure(rows)),
             "Train page's history (loss per step, accuracy per epoch)": (lambda: one_at_a_time_history(history),
                                                                          lambda: plots.history_figure(history)),
             "mosaic of 80 labelled 3×3 patches at 40 px": (lambda: one_at_a_time_grid(tiles, 10, labels, 40),
                                                            lambda: plots.image_grid(tiles, 10, labels, tile=40))}
    for case, (before, now) in cases.items():
        (s0, n0), (s1, n1) = timed(before), timed(now)
        print(json.dumps({"figure": case, "one_at_a_time_seconds": round(s0, 3), "now_seconds": round(s1, 3),
                          "one_at_a_time_json_kb": round(n0 / 1e3, 1), "now_json_kb": round(n1 / 1e3, 1)}),
              flush=True)


def browser() -> None:
    if not os.path.exists(CHROMIUM):
        print(json.dumps({"case": "Filters & features in Chromium", "skipped": f"no {CHROMIUM}"}), flush=True)
        return
    forget_results()  # the patches computed now, not read back from the AppTests' run above
    with streamlit_app({"LAYERLENS_CACHE": os.environ["LAYERLENS_CACHE"]}) as url:
        first, cached = cold_and_cached_render(url, "/train", "Which classes get confused?", "Filters & features",
                                               "Training filmstrip")
    print(json.dumps({"case": "Filters & features, default model, Chromium", "first_render_seconds": round(first, 2),
                      "cached_render_seconds": round(cached, 2)}), flush=True)


def main() -> None:
    print_machine()
    data = load_dataset(SAMPLE)
    ModelCache(default_cache_dir() / "models").get_or_train(preset_train_config("tiny", data), data)  # not timed
    builders()
    live_chart()
    page_figures()
    browser()


if __name__ == "__main__":
    main()
