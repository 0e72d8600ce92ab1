"""Hostile input, as a mischievous student would try it: each gets one sentence, at once, never a traceback or a hang.

One test per case of issue 15 (a new hostile input joins here). Every input is real: devices and pipes, archives with
a forged or cut-off byte stream, pickles that would run code, phone photos written by Pillow. Cases a student meets on
a page run the app through AppTest, as test_pages.py does; the rest call the core.
"""
from __future__ import annotations

import contextlib
import copy
import gzip
import io
import os
import pickle
import shutil
import sys
import tarfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_test import app_test
from layerlens.checkpoints import load_checkpoint, save_checkpoint
from layerlens.data import DatasetUnavailable, load_dataset, load_folder, load_sample, shown_name
from layerlens.inputs import read_upload
from layerlens.training import FEW_UPDATES, fit, preset_train_config, training_problem
from test_pages import ABSTRACTION, FEATURES, NEURON, TRAIN, charts, model, open_page, text

ROOT = Path(__file__).resolve().parents[1]
PROMPTLY = 10  # seconds: what "at once" means for a refusal on a loaded 2-core machine


@pytest.fixture
def app(app_model_cache, monkeypatch, tmp_path) -> AppTest:
    """A fresh visitor on a fresh server with the run's model-cache folder (as in test_pages.py); image folders are
    allowed from the test's own tmp_path."""
    monkeypatch.setenv("LAYERLENS_CACHE", str(app_model_cache))
    monkeypatch.setenv("LAYERLENS_FOLDERS", str(tmp_path))
    return app_test()


def errors(at: AppTest) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error]


def refusal(call) -> str:
    """The sentence call refuses with, failing the test when it does not return within PROMPTLY seconds (a hang)."""
    outcome = {}

    def run():
        try:
            call()
        except Exception as err:  # what the student would see, whatever it is
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROMPTLY)
    assert not thread.is_alive(), f"still reading after {PROMPTLY} s: a hang"
    assert isinstance(outcome.get("error"), ValueError), outcome
    return str(outcome["error"])


def open_and_close(pipe: Path) -> None:
    """A writer that comes and goes at once: a reader stuck opening pipe reads an empty file and goes on."""
    with contextlib.suppress(OSError):  # ENXIO: nobody is reading it
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))


def set_free(pipe: Path, seconds: float = 1.0) -> None:
    """Free, for a while, whatever a hang left stuck opening pipe (it may open it again and again)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        open_and_close(pipe)
        time.sleep(0.05)


@contextlib.contextmanager
def writer_at(pipe: Path):
    """Open and close pipe every 50 ms while the block runs: AppTest waits for its script to end, so a script stuck
    opening the pipe would stop the whole test run."""
    done = threading.Event()

    def keep_freeing():
        while not done.wait(0.05):
            open_and_close(pipe)

    thread = threading.Thread(target=keep_freeing, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


# 1. Hangs: a device or a pipe is refused before it is opened.

@pytest.mark.parametrize("kind", ["/dev/zero", "a pipe", "a pipe among the images"])
def test_a_device_or_a_pipe_gets_a_sentence_at_once(kind, tmp_path, make_image_folder):
    if kind == "/dev/zero":
        path, root, pipe = Path("/dev/zero"), Path("/dev"), None
        expected = "/dev/zero is neither a folder nor a file (a device or a pipe, say)"
    elif kind == "a pipe":
        path = root = pipe = tmp_path / "images"
        os.mkfifo(pipe)
        expected = f"{pipe} is neither a folder nor a file (a device or a pipe, say)"
    else:
        path = root = make_image_folder()
        pipe = path / "train" / "bar" / "zzz.png"
        os.mkfifo(pipe)
        expected = "train/bar/zzz.png is not a file but a device or a pipe, which LayerLens does not read"
    try:
        message = refusal(lambda: load_dataset(f"folder:{path}", folders=root))
    except AssertionError:  # a hang: free the reader it left stuck, then fail
        if pipe is not None:
            set_free(pipe)
        raise
    assert expected in message


def test_a_pipe_typed_into_the_folder_box_gets_a_sentence(app, tmp_path):
    pipe = tmp_path / "images"
    os.mkfifo(pipe)
    at = open_page(app, TRAIN)
    before = model(at)
    at.selectbox(key="train_dataset").set_value("an image folder…").run()
    with writer_at(pipe):
        at.text_input(key="train_folder").set_value("images").run()
    assert any("is neither a folder nor a file (a device or a pipe, say)" in e for e in errors(at))
    assert model(at) is before


# 2. Tracebacks, and the archives and folders behind them.

def forged_archive(path: Path, declared: int) -> Path:
    """A real .tar.gz of one small PNG whose header declares `declared` bytes (what a forger or a bad disk writes)."""
    image = io.BytesIO()
    Image.new("L", (8, 8), 200).save(image, format="PNG")
    header = tarfile.TarInfo("train/a/0.png")
    header.size = declared
    block = header.tobuf(format=tarfile.GNU_FORMAT)  # sizes past 8 GiB - 1 are written in base 256
    path.write_bytes(gzip.compress(block + image.getvalue().ljust(512, b"\0") + b"\0" * 1024))
    return path


def test_an_archive_that_declares_an_8_gb_image_is_refused(tmp_path):
    archive = forged_archive(tmp_path / "forged.tar.gz", 8 * 2**30)
    message = refusal(lambda: load_folder(archive))
    assert message == (f"train/a/0.png in {archive} says it is 8.0 GB, far more than an image (20 MB at most): the "
                       f"archive is damaged; copy or download it again.")


def test_an_image_file_too_big_to_be_an_image_is_refused_unread(make_image_folder):
    root = make_image_folder()
    with open(root / "train" / "bar" / "huge.png", "wb") as huge:
        huge.truncate(30 * 2**20)  # 30 MB of nothing (a sparse file): refused by its size, before it is read
    message = refusal(lambda: load_folder(root))
    assert message == (f"train/bar/huge.png in {root} is 30 MB, more than an image LayerLens reads (20 MB at most): "
                       f"replace it with a smaller one.")


def test_a_folder_past_the_reading_budget_is_refused(make_image_folder, monkeypatch):
    from layerlens import data

    monkeypatch.setattr(data, "MAX_FOLDER_FILES", 10)  # the budget, made small enough for a small real folder
    root = make_image_folder()  # 24 images
    assert refusal(lambda: load_folder(root)) == (f"{root} holds more than 10 files or 4 GB, more than LayerLens "
                                                  f"reads for one dataset: use a smaller folder.")


@pytest.mark.parametrize("typed", ["/", "/proc"])
def test_a_system_folder_is_no_image_folder(typed):
    message = refusal(lambda: load_dataset(f"folder:{typed}", folders=Path("/")))
    assert message == (f"{typed} is not an image folder: it needs train/<class>/ and test/<class>/ sub-folders with "
                       f"the images in them.")


@pytest.mark.parametrize("missing, expected", [
    (["train/blank", "test/blank"], "has only one class (bar), and a network learns to tell classes apart: add a "
                                    "second class folder under train/ and test/."),
    (["test/blank"], "are all of one class (bar), so a test could not tell whether the network tells classes "
                     "apart: add test images of another class."),
])
def test_a_folder_of_one_class_is_refused(make_image_folder, missing, expected):
    root = make_image_folder()
    for folder in missing:
        shutil.rmtree(root / folder)
    with pytest.raises(DatasetUnavailable) as refused:
        load_folder(root)
    assert str(refused.value).endswith(expected)


def test_a_folder_of_one_class_typed_on_the_train_page_keeps_the_model(app, make_image_folder):
    root = make_image_folder()
    shutil.rmtree(root / "train" / "blank")
    shutil.rmtree(root / "test" / "blank")
    at = open_page(app, TRAIN)
    before = model(at)
    at.selectbox(key="train_dataset").set_value("an image folder…").run()
    at.text_input(key="train_folder").set_value(root.name).run()
    assert any("has only one class (bar)" in e for e in errors(at))
    assert "where picking a class at random gets 100%" not in " ".join(w.value for w in at.warning)
    assert model(at) is before


def test_pages_size_their_picks_to_a_folder_of_few_test_images(app, make_image_folder):
    """3 training and 1 test image per class: fewer than Filters & features' 9 patches, too few for a probe."""
    root = make_image_folder(per_class=(3, 1))
    at = open_page(app, TRAIN)
    at.selectbox(key="train_dataset").set_value("an image folder…").run()
    at.text_input(key="train_folder").set_value(root.name).run()
    assert not errors(at)
    assert shown_name(model(at).config.dataset) == f"folder:{root.name}"
    open_page(at, FEATURES)
    assert any("the 2 test patches (out of 2 images)" in c.value for c in at.caption)
    at.switch_page(ABSTRACTION).run()
    assert not errors(at)
    assert any(i.value.startswith("A linear probe needs more test images than the 2 here") for i in at.info)
    titles = [a["text"] for a in charts(at)["abstraction_maps"]["layout"]["annotations"]]
    assert titles and all("separation n/a" in t for t in titles)  # one image per class: no silhouette


@pytest.mark.parametrize("cut", ["inside an image", "between two files", "inside the .gz", "in the .gz's checksum"])
def test_a_cut_off_archive_is_blamed_not_an_image(cut, tmp_path, make_image_folder):
    root = make_image_folder(per_class=(4, 2))
    gz = cut.endswith("checksum") or cut.endswith(".gz")
    archive = tmp_path / ("images.tar.gz" if gz else "images.tar")
    with tarfile.open(archive, "w:gz" if gz else "w") as tar:
        tar.add(root / "train", "train")
        tar.add(root / "test", "test")
    with tarfile.open(archive) as tar:  # offsets are known once read back
        third = [member for member in tar.getmembers() if member.isfile()][-3]
    data = archive.read_bytes()
    keep = {"inside an image": third.offset_data + 10, "between two files": third.offset,
            "inside the .gz": len(data) // 2, "in the .gz's checksum": len(data) - 4}[cut]
    archive.write_bytes(data[:keep])
    with pytest.raises(DatasetUnavailable) as refused:
        load_folder(archive)
    assert str(refused.value) == (f"The archive {archive.name} is cut off: it ends before its last file, as when a "
                                  f"copy or a download stops early; copy or download it again.")


@pytest.fixture
def default_model(app) -> tuple[AppTest, object]:
    """The visitor on the Train page with the default model."""
    at = open_page(app, TRAIN)
    return at, model(at)


def load_on_train_page(at: AppTest, name: str) -> AppTest:
    at.run()  # the new file in the models folder is listed
    at.selectbox(key="train_load_name").set_value(name)
    at.button(key="train_btn_load").click().run()
    return at


class RunsCode:
    """What a malicious checkpoint carries: unpickling it would run a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious(path: Path, marker: Path, how: str) -> None:
    if how == "torch.save":
        torch.save({"config": RunsCode(marker), "state_dict": {}}, path)
    else:
        path.write_bytes(pickle.dumps(RunsCode(marker), protocol=2))  # what torch.load reads unasked


@pytest.mark.parametrize("how", ["torch.save", "pickle.dumps"])
def test_a_malicious_checkpoint_is_refused_without_running_it_or_pytorchs_advice(how, tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    malicious(path, marker, how)
    with pytest.raises(ValueError) as refused:
        load_checkpoint(path)
    assert str(refused.value) == ("evil.pt is not a LayerLens checkpoint: it holds something other than a network's "
                                  "settings and weights, so LayerLens did not open it; choose a model saved by "
                                  "LayerLens.")
    assert not marker.exists()


def damage(ckpt: dict, how: str) -> None:
    """Change a real checkpoint's contents as a hand-edited or half-written file would."""
    if how == "no metrics":
        del ckpt["metrics"]
    elif how == "learning rate 'fast'":
        ckpt["config"]["learning_rate"] = "fast"
    elif how == "channels 'many'":
        ckpt["config"]["net"]["channels"] = ["many"]
    elif how == "test accuracy 'high'":
        ckpt["metrics"]["test_accuracy"] = "high"
    elif how == "step losses as text":
        ckpt["history"]["step_loss"] = "low"
    elif how == "weights of another network":
        ckpt["state_dict"] = {"weight": torch.zeros(3)}
    elif how == "a state of another network":
        ckpt["history"]["states"][0] = {"weight": torch.zeros(3)}


CHECKPOINT_DAMAGE = {
    "no metrics": "it lacks a checkpoint's metrics",
    "learning rate 'fast'": "its settings are impossible (the setting learning rate must be a number, not 'fast')",
    "channels 'many'": "its settings are impossible (the setting channels of block 1 must be a whole number, not "
                       "'many')",
    "test accuracy 'high'": "its metrics (test accuracy, training time, …) are missing or not numbers",
    "step losses as text": "its training history is damaged (step loss holds something other than what LayerLens "
                           "records)",
    "weights of another network": "its weights do not fit the network its settings describe",
    "a state of another network": "its training history is damaged (the network's states during training do not "
                                  "fit it)",
}


@pytest.mark.parametrize("how", CHECKPOINT_DAMAGE)
def test_a_checkpoint_is_checked_in_full_when_it_loads(how, tiny_result, tmp_path):
    path = save_checkpoint(tiny_result, tmp_path / "edited.pt")
    ckpt = torch.load(path, weights_only=True)
    damage(ckpt, how)
    torch.save(ckpt, path)
    with pytest.raises(ValueError) as refused:
        load_checkpoint(path)
    assert str(refused.value) == (f"edited.pt is not a LayerLens checkpoint that this version can read: "
                                  f"{CHECKPOINT_DAMAGE[how]}; choose another model, or train this one again and "
                                  f"save it.")


@pytest.mark.parametrize("how", ["malicious", "no metrics", "learning rate 'fast'"])
def test_a_bad_checkpoint_loaded_on_the_train_page_gets_a_sentence(how, default_model, writable_dirs, tmp_path):
    at, before = default_model
    writable_dirs.models.mkdir(exist_ok=True)
    path = writable_dirs.models / "bad.pt"
    if how == "malicious":
        malicious(path, tmp_path / "ran", "torch.save")
    else:
        save_checkpoint(before, path)
        ckpt = torch.load(path, weights_only=True)
        damage(ckpt, how)
        torch.save(ckpt, path)
    load_on_train_page(at, "bad.pt")
    shown = errors(at)
    assert len(shown) == 1 and shown[0].startswith("bad.pt is not a LayerLens checkpoint"), shown
    assert "weights_only" not in shown[0] and "Traceback" not in shown[0]
    assert model(at) is before
    assert not (tmp_path / "ran").exists()


def test_a_checkpoint_saved_at_commit_74809e6_loads_and_every_page_copes(default_model, writable_dirs):
    """Its history lacks distance_to_final, distance_from_init, grad_norm and states, and has weight_change."""
    at, current = default_model
    path = save_checkpoint(current, writable_dirs.models / "old.pt")
    ckpt = torch.load(path, weights_only=True)
    history = ckpt["history"]
    for field in ("distance_to_final", "distance_from_init", "grad_norm", "states"):
        del history[field]
    history["weight_change"] = {"conv1": [0.5, 0.2, 0.1, 0.05]}
    torch.save(ckpt, path)
    load_on_train_page(at, "old.pt")
    assert not errors(at)
    assert model(at) is not current and model(at).history.distance_to_final == {}
    open_page(at, FEATURES)
    assert {"features_filmstrip", "features_patches"} <= charts(at).keys()
    assert "features_settling" not in charts(at)  # nothing recorded to draw it from, and no KeyError
    open_page(at, ABSTRACTION)
    assert any("trained before LayerLens kept its in-between states" in i.value for i in at.info)


def test_saving_into_a_models_setting_that_is_a_file_gets_a_sentence(default_model, monkeypatch, tmp_path):
    at, _ = default_model
    models = tmp_path / "models.txt"
    models.write_text("not a folder")
    monkeypatch.setenv("LAYERLENS_MODELS", str(models))
    at.text_input(key="train_save_name").set_value("class-demo")
    at.button(key="train_btn_save").click().run()
    assert errors(at) == [f"No model can be saved in {models}: it is a file, not a folder; ask the teacher to set "
                          f"LAYERLENS_MODELS to a folder."]
    assert models.read_text() == "not a folder"


def test_the_whole_canvas_painted_white_gets_a_sentence(app, monkeypatch):
    white = np.full((280, 280, 4), 255, dtype=np.uint8)  # the canvas's pixels after painting every one of them
    # AppTest cannot drive the canvas (a browser component): a stand-in hands the page what the canvas would
    canvas = SimpleNamespace(st_canvas=lambda **_: SimpleNamespace(image_data=white))
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", canvas)
    at = open_page(app, TRAIN)
    at.switch_page(NEURON).run()
    assert at.segmented_control(key="neuron_source").value == "Draw"
    assert errors(at) == ["There is no digit to read: the drawing (or photo) is empty. Draw a digit first."]


# 3. Raw exception text: uploads say what is wrong in a sentence.

def encoded(image: Image.Image, format: str, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **save)
    return buffer.getvalue()


def test_an_upload_ten_thousand_pixels_long_and_one_high_gets_a_sentence(app):
    at = open_page(app, TRAIN)
    at.switch_page(NEURON).run()
    at.segmented_control(key="neuron_source").set_value("Upload a photo").run()
    at.file_uploader(key="neuron_upload").upload("line.png", encoded(Image.new("L", (10000, 1), 255), "PNG"),
                                                 "image/png").run()
    assert errors(at) == ["line.png is 10000×1 pixels, a line rather than a picture; upload an image at most 20 times "
                          "as long as it is wide."]
    assert "sure this is" in text(at)  # the page goes on with a test image


# 4. Wrong advice: diagnose before advising.

def test_too_few_updates_is_its_own_lesson_not_the_learning_rates():
    data = load_sample()
    config = preset_train_config("tiny", data, train_size=100, batch_size=512, epochs=8)  # 8 updates
    result = fit(config, data)
    assert result.metrics["test_accuracy"] < 0.15 and config.net.batch_norm
    problem = training_problem(result)
    assert problem.startswith("The network is no better than guessing: ")
    assert problem.endswith("because it took only 8 steps (8 epochs of 1 batch of up to 512 images), too few to learn, "
                            "and batch-norm's running averages, which it uses on test images, have not settled. Use a "
                            f"smaller batch or more epochs, so that it takes at least {FEW_UPDATES} steps.")
    assert "learning rate" not in problem
    # the diagnosis is right: the same weights with each batch's own statistics read far more digits
    with torch.no_grad():
        batch_statistics = copy.deepcopy(result.model).train()(data.x_test).argmax(1)
    assert (batch_statistics == data.y_test).float().mean() > result.metrics["test_accuracy"] + 0.2


# 5. Phone formats: MPO (its first frame) and WebP.

def phone_photo(format: str) -> bytes:
    """A dark '1' on white paper, as a phone writes it: MPO with a second (blue) frame after the photo, or WebP."""
    photo = Image.new("RGB", (120, 160), "white")
    photo.paste((30, 30, 30), (55, 20, 68, 140))
    if format == "MPO":
        return encoded(photo, "MPO", save_all=True, append_images=[Image.new("RGB", (120, 160), "blue")])
    return encoded(photo, format)


@pytest.mark.parametrize("format", ["MPO", "WEBP"])
def test_a_phone_photo_is_read_from_its_first_frame(format):
    assert Image.open(io.BytesIO(phone_photo(format))).format == format
    image, notes = read_upload(phone_photo(format), f"photo.{format.lower()}")
    assert image.size == (120, 160) and not notes
    assert min(image.getpixel((5, 5))) > 240  # the white paper of the first frame, not the blue second one


@pytest.mark.parametrize("format", ["MPO", "WEBP"])
def test_a_phone_photo_uploaded_on_the_one_neuron_page_is_read(app, format):
    at = open_page(app, TRAIN)
    at.switch_page(NEURON).run()
    at.segmented_control(key="neuron_source").set_value("Upload a photo").run()
    name = "photo.jpg" if format == "MPO" else "photo.webp"
    at.file_uploader(key="neuron_upload").upload(name, phone_photo(format), "image/jpeg").run()
    assert not errors(at)
    assert "sure this is a 1" in text(at)


# 6. Saving over a saved model asks first; a shipped model is never replaced from the app.

def test_saving_over_a_saved_model_asks_first(default_model, writable_dirs):
    at, _ = default_model
    writable_dirs.models.mkdir(exist_ok=True)
    name = "class-demo"
    path = writable_dirs.models / f"{name}.pt"
    path.write_bytes(b"a model saved earlier")  # what it holds does not matter: it is not overwritten unasked
    before = path.read_bytes()
    at.text_input(key="train_save_name").set_value(name)
    at.button(key="train_btn_save").click().run()
    assert not errors(at)
    assert [w.value for w in at.warning if "already saved" in w.value] == [
        f"A model called {name} is already saved in {writable_dirs.models}: press **Replace it** to save over it, "
        f"or choose another name."]
    assert path.read_bytes() == before
    at.button(key="train_btn_replace").click().run()
    assert not errors(at)
    assert any(s.value == f"Saved as {path}" for s in at.success)
    assert load_checkpoint(path).config == model(at).config
    assert not any("already saved" in w.value for w in at.warning)


def test_a_shipped_model_is_never_replaced_from_the_app(default_model, writable_dirs):
    at, _ = default_model
    writable_dirs.models.mkdir(exist_ok=True)
    path = writable_dirs.models / "tiny-mnist-sample.pt"
    shutil.copy(ROOT / "models" / path.name, path)
    before = path.read_bytes()
    at.text_input(key="train_save_name").set_value("tiny-mnist-sample")
    at.button(key="train_btn_save").click().run()
    assert [e.value for e in at.error] == ["tiny-mnist-sample is a model that ships with LayerLens: every visitor "
                                           "starts from it, so it is never replaced from here; choose another name."]
    assert "train_btn_replace" not in [b.key for b in at.button]
    assert path.read_bytes() == before
