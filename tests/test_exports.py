"""Files to take away: the trained model as .pt and ONNX, a page's figures as PNG and its numbers as CSV."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from layerlens import exports, plots
from layerlens.checkpoints import load_checkpoint
from layerlens.inspection import confusion_matrix
from layerlens.training import weights_digest


def test_the_pt_file_loads_with_torch_and_as_a_layerlens_checkpoint(tiny_result, tiny_data, tmp_path):
    data = exports.checkpoint_bytes(tiny_result)
    raw = torch.load(io.BytesIO(data), weights_only=True)  # no code runs when it is opened
    assert {"config", "state_dict", "history", "metrics"} <= raw.keys()
    path = tmp_path / "downloaded.pt"
    path.write_bytes(data)
    loaded = load_checkpoint(path)  # what the Train page's saved models use
    assert loaded.config == tiny_result.config and loaded.metrics == tiny_result.metrics
    assert weights_digest(loaded.model) == weights_digest(tiny_result.model)
    with torch.no_grad():
        assert torch.equal(loaded.model(tiny_data.x_test), tiny_result.model(tiny_data.x_test))
    assert exports.file_stem(tiny_result) == f"layerlens-tiny-bars-{tiny_result.config.key()[:8]}"


def test_onnx_gives_the_same_answers_as_torch_and_leaves_the_model_alone(tiny_result, tiny_data):
    import onnx  # here, not at the top: every xdist worker imports the test files (onnx alone 1.2 s)
    import onnxruntime

    model = tiny_result.model
    before = weights_digest(model), model.training
    data = exports.onnx_bytes(model, tiny_data.classes)
    assert (weights_digest(model), model.training) == before  # the shared model is untouched
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == list(tiny_data.classes)
    ops = [node.op_type for node in proto.graph.node if node.op_type in ("Conv", "Relu", "MaxPool")]
    assert ops[:3] == ["Conv", "Relu", "MaxPool"]  # in the order the pages show, not Net.forward's pooling first
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    for images in (tiny_data.x_test[:1], tiny_data.x_test):  # any batch size
        (logits,) = session.run(["logits"], {"image": images.numpy()})
        with torch.no_grad():
            expected = model(images).numpy()
        assert logits.shape == expected.shape
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


def test_a_class_downloading_one_model_as_onnx_waits_for_one_export(monkeypatch):
    """The Train page's ONNX button goes through server.onnx_model: the second student to ask gets the same bytes
    without a second export (2.6 s of server CPU each)."""
    import onnx
    from conftest import ROOT

    import server

    result = load_checkpoint(ROOT / "models" / "tiny-mnist-sample.pt")
    exported = []
    export = exports.onnx_bytes
    monkeypatch.setattr(exports, "onnx_bytes", lambda model, classes: exported.append(classes) or export(model, classes))
    first, second = server.onnx_model(result), server.onnx_model(result)
    assert first == second and len(exported) == 1
    meta = {p.key: p.value for p in onnx.load_from_string(first).metadata_props}
    assert json.loads(meta["classes"]) == [str(c) for c in exported[0]]  # the dataset's class names


def test_tables_as_csv(tiny_result, tiny_data):
    counts = confusion_matrix(tiny_result.model, tiny_data.x_test, tiny_data.y_test, 3)
    table = pd.read_csv(io.BytesIO(exports.csv_bytes(exports.confusion_rows(counts, tiny_data.classes))))
    assert list(table.columns) == ["true class", "predicted vertical", "predicted horizontal", "predicted blank"]
    assert list(table["true class"]) == list(tiny_data.classes)
    assert table.iloc[:, 1:].to_numpy().tolist() == counts.tolist()
    curves = pd.read_csv(io.BytesIO(exports.csv_bytes(exports.curve_rows({"CNN": [(100, 0.5), (300, 0.75)],
                                                                           "SVM": [(100, 0.6)]}))))
    assert curves.to_dict("list") == {"model": ["CNN", "CNN", "SVM"], "training images": [100, 300, 100],
                                      "test accuracy": [0.5, 0.75, 0.6]}
    probes = exports.probe_rows({"trained": {"input": 0.8, "pool1": 0.9}, "random weights": {"input": 0.8,
                                                                                             "pool1": 0.5}})
    assert probes == [{"layer": "input", "trained": 0.8, "random weights": 0.8},
                      {"layer": "pool1", "trained": 0.9, "random weights": 0.5}]


@pytest.fixture
def browser():
    if exports.browser_path() is None:
        pytest.skip("no Chrome or Chromium here: apt-get install chromium (PNGs are drawn by a headless browser)")


def test_a_page_zip_holds_one_png_per_figure_its_tables_and_summaries(browser, tiny_result, tiny_data, monkeypatch):
    """The zip as the page's button makes it, through server.figure_pngs: the class shares the PNGs, so a figure
    someone already had drawn is not drawn again."""
    import server

    drawn = []
    draw = exports.figure_pngs
    monkeypatch.setattr(exports, "figure_pngs", lambda figures: drawn.append(len(figures)) or draw(figures))
    counts = confusion_matrix(tiny_result.model, tiny_data.x_test, tiny_data.y_test, 3)

    def page(image: int) -> dict:  # a student's page, drawn from scratch as each visitor's run draws it
        return {"train_history": (plots.history_figure(tiny_result.history), "Loss fell."),
                "train_confusion": (plots.confusion_figure(counts, tiny_data.classes), "Right on most."),
                "layers_input": (plots.image_figure(tiny_data.x_test[image]), "A 12×12 grey image.")}

    rows = exports.confusion_rows(counts, tiny_data.classes)
    archive = zipfile.ZipFile(io.BytesIO(exports.page_zip(page(0), {"confusion-matrix": rows}, server.figure_pngs)))
    figures = page(0)
    again = zipfile.ZipFile(io.BytesIO(exports.page_zip(figures, {}, server.figure_pngs)))  # the next student
    assert all(again.read(name) == archive.read(name) for name in again.namelist() if name.endswith(".png"))
    exports.page_zip(page(1), {}, server.figure_pngs)  # another test image: only that figure is drawn
    assert drawn == [3, 1]  # two browser starts for three pages
    assert sorted(archive.namelist()) == ["01-train_history.png", "02-train_confusion.png", "03-layers_input.png",
                                          "confusion-matrix.csv", "summaries.txt"]
    for name, (figure, _) in zip(sorted(n for n in archive.namelist() if n.endswith(".png")), figures.values()):
        picture = Image.open(io.BytesIO(archive.read(name)))
        picture.verify()  # a whole, valid PNG
        assert picture.format == "PNG"
        assert picture.size == (plots.PAGE_WIDTH * exports.PNG_SCALE, figure.layout.height * exports.PNG_SCALE)
    assert pd.read_csv(archive.open("confusion-matrix.csv")).iloc[:, 1:].to_numpy().tolist() == counts.tolist()
    assert archive.read("summaries.txt").decode().splitlines() == [
        "01-train_history.png: Loss fell.", "02-train_confusion.png: Right on most.",
        "03-layers_input.png: A 12×12 grey image."]


def test_pngs_without_a_browser_say_what_to_install(monkeypatch):
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(exports.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="apt-get install chromium"):
        exports.figure_pngs([plots.probability_figure(torch.tensor([0.5, 0.5]), ("a", "b"))])
