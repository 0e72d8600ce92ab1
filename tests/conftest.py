"""Shared fixtures: tiny synthetic images, writable folders outside the repository, the real datasets."""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import layerlens  # noqa: F401  (first: it sets OMP_WAIT_POLICY before torch loads OpenMP)
import numpy as np
import pytest
import torch
from PIL import Image

from layerlens.checkpoints import load_checkpoint
from layerlens.data import ImageData, from_uint8
from layerlens.nets import Net, NetConfig
from layerlens.training import TrainConfig, TrainResult, fit

ROOT = Path(__file__).resolve().parents[1]

# pytest-xdist runs test files side by side: each worker gets its share of the cores, not all of them each
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, (os.cpu_count() or 1) // WORKERS)
if WORKERS > 1:
    torch.set_num_threads(THREADS)

# The longest test files first, so that pytest-xdist (`--no-loadscope-reorder` in pyproject.toml keeps this order) hands
# them out at the start and the short ones fill in beside them: in its own order, by number of tests, the browser
# files (few tests, two minutes each) came last and one worker ran on alone for a minute. Ordered by their seconds,
# summed from `python -m pytest --durations=0` (2-core AVX2 machine, sgemm 68); a file not listed comes after these.
LONGEST_FILES = ("test_pages.py", "test_browser.py", "test_browser_class.py", "test_remote.py", "test_exports.py",
                 "test_lessons.py", "test_hostile.py", "test_classic.py", "test_learning.py")


def pytest_collection_modifyitems(items: list) -> None:
    """Run the longest files first (a stable sort: each file's tests keep their order)."""
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


TINY_CLASSES = ("vertical", "horizontal", "blank")


def bar_images(rng: np.random.Generator, per_class: int, size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size) uint8 noise; class 0 adds a bright vertical bar, class 1 a horizontal one, class 2 nothing."""
    xs, ys = [], []
    for label in range(len(TINY_CLASSES)):
        for _ in range(per_class):
            img = rng.integers(0, 60, (size, size))
            pos = rng.integers(1, size - 3)
            if label == 0:
                img[:, pos:pos + 2] = rng.integers(190, 256, (size, 2))
            elif label == 1:
                img[pos:pos + 2, :] = rng.integers(190, 256, (2, size))
            xs.append(img)
            ys.append(label)
    order = rng.permutation(len(xs))
    return np.stack(xs).astype(np.uint8)[order], np.array(ys)[order]


@pytest.fixture(scope="session")
def tiny_data() -> ImageData:
    """3 classes of 12×12 grey images (vertical bar, horizontal bar, noise): 60 train, 30 test."""
    rng = np.random.default_rng(0)
    x_train, y_train = bar_images(rng, 20)
    x_test, y_test = bar_images(rng, 10)
    return from_uint8("tiny-bars", x_train, y_train, x_test, y_test, TINY_CLASSES)


@pytest.fixture(scope="session")
def tiny_config(tiny_data) -> TrainConfig:
    """A two-block network for tiny_data that trains in well under a second."""
    net = NetConfig(in_channels=1, image_size=12, num_classes=3, mean=tiny_data.mean, std=tiny_data.std,
                    channels=(4, 8), kernel_size=3, dense=16)
    return TrainConfig(net=net, dataset=tiny_data.name, learning_rate=0.01, batch_size=16, epochs=6)


@pytest.fixture(scope="session")
def app_model_cache(tmp_path_factory, worker_id) -> Path:
    """The model-cache folder of every app these tests start (AppTest and the browser's server), as on a server
    that keeps its cache: a config trains once per test run, whichever xdist worker asks first (the workers' temporary
    folders share their parent; checkpoints are written whole, then renamed, so two workers may write one at once).
    Tests about a first training use a fresh folder. It starts with the shipped default model (models/), as the
    server's own folder does in effect: the AppTests' models folder is an empty one of their own."""
    run = tmp_path_factory.getbasetemp()
    folder = (run.parent if worker_id != "master" else run) / "app-model-cache"
    (folder / "models").mkdir(parents=True, exist_ok=True)
    default = load_checkpoint(ROOT / "models" / "tiny-mnist-sample.pt")
    target = folder / "models" / f"{default.config.key()}.pt"
    if not target.exists():
        part = target.with_name(f"{target.name}.{os.getpid()}")
        shutil.copyfile(ROOT / "models" / "tiny-mnist-sample.pt", part)
        os.replace(part, target)  # whole: the other worker may be reading it already
    return folder


@pytest.fixture(scope="session")
def tiny_result(tiny_config, tiny_data) -> TrainResult:
    """tiny_config trained on tiny_data (shared: tests must not change it)."""
    return fit(tiny_config, tiny_data)


@pytest.fixture(scope="session")
def edge_model() -> Net:
    """12×12 grey images → 2 channels (vertical-bar and horizontal-bar detectors) → classifier.

    Class 0 ('vertical') adds up channel 0, class 1 ('horizontal') channel 1, class 2 ('blank') is a constant.
    """
    config = NetConfig(in_channels=1, image_size=12, num_classes=3, mean=(0.0,), std=(1.0,), channels=(2,),
                       kernel_size=3, batch_norm=False, dense=0)
    model = Net(config).eval()
    with torch.no_grad():
        bar = torch.tensor([[-1.0, 2.0, -1.0]] * 3)  # bright middle column between dark ones
        model.layers.conv1.weight.copy_(torch.stack([bar, bar.T])[:, None])
        model.layers.conv1.bias.fill_(-1.0)
        per_channel = model.layers.classifier.weight.view(3, 2, 6, 6)
        per_channel.zero_()
        per_channel[0, 0], per_channel[1, 1] = 0.5, 0.5
        model.layers.classifier.bias.copy_(torch.tensor([0.0, 0.0, 2.0]))
    return model


@pytest.fixture(autouse=True)
def writable_dirs(tmp_path, monkeypatch) -> SimpleNamespace:
    """Point every folder LayerLens reads or writes by default at tmp_path, so no test touches the repository."""
    dirs = SimpleNamespace(data=tmp_path / "data", cache=tmp_path / "cache", models=tmp_path / "models")
    dirs.data.mkdir()
    monkeypatch.setenv("LAYERLENS_DATA", str(dirs.data))
    monkeypatch.setenv("LAYERLENS_CACHE", str(dirs.cache))
    monkeypatch.setenv("LAYERLENS_MODELS", str(dirs.models))
    monkeypatch.setenv("LAYERLENS_WARM_UP", "0")  # an AppTest computes what its test asks for, nothing ahead
    return dirs


@pytest.fixture
def offline(monkeypatch):
    """No internet, as in a classroom without it: every socket connection fails at once."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test's offline fixture")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full datasets in ../shared/data (or $LAYERLENS_SHARED_DATA); the test is skipped without them."""
    path = Path(os.environ.get("LAYERLENS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"{path} (../shared/data) is absent: the full datasets are needed for this test")
    return path


@pytest.fixture
def make_image_folder(tmp_path):
    """Factory: write PNGs under root/train/<class>/ and root/test/<class>/ and return root.

    Class "bar" has a bright vertical bar, class "blank" only faint noise. colour is "none", "all" or
    "first" (the first image of every class folder in colour, the rest grey); size is an int or (width, height).
    """

    def make(name: str = "images", per_class: tuple[int, int] = (8, 4), size=12, colour: str = "none",
             splits=("train", "test"), seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        width, height = (size, size) if isinstance(size, int) else size
        root = tmp_path / name
        for split, count in zip(("train", "test"), per_class):
            if split not in splits:
                continue
            for cls in ("bar", "blank"):
                folder = root / split / cls
                folder.mkdir(parents=True)
                for i in range(count):
                    img = rng.integers(0, 50, (height, width)).astype(np.uint8)
                    if cls == "bar":
                        img[:, width // 2 - 1:width // 2 + 1] = 230
                    if colour == "all" or (colour == "first" and i == 0):
                        rgb = np.stack([img, img // 2, 255 - img], axis=2)
                        Image.fromarray(rgb, "RGB").save(folder / f"{i:03d}.png")
                    else:
                        Image.fromarray(img, "L").save(folder / f"{i:03d}.png")
        return root

    return make


@pytest.fixture(scope="module")
def app_url(request, tmp_path_factory, app_model_cache):
    """A `streamlit run app.py` server per test module (the modules may run side by side, each on its own), with the
    module's SERVER_ENV on top (the warm-up is off unless a module turns it on)."""
    from streamlit_server import streamlit_app

    tmp = tmp_path_factory.mktemp("browser")
    env = {"LAYERLENS_CACHE": str(app_model_cache), "LAYERLENS_DATA": str(tmp / "data"),
           "OMP_NUM_THREADS": str(THREADS), "LAYERLENS_LOG": "info", "LAYERLENS_WARM_UP": "0",
           **getattr(request.module, "SERVER_ENV", {})}
    with streamlit_app(env, log_path=tmp / "streamlit.log") as url:
        SERVER_LOGS[url] = tmp / "streamlit.log"
        yield url


SERVER_LOGS: dict[str, Path] = {}  # a browser module's server address → its output


@pytest.fixture
def server_log(app_url) -> Path:
    """The output of the module's server (LAYERLENS_LOG=info)."""
    return SERVER_LOGS[app_url]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test's report ends with what each open tab showed and its server's last lines: on a CI machine
    nobody can look at, they say why a page never showed what the test waited for."""
    report = (yield).get_result()
    if report.when != "call" or not report.failed or "browser" not in item.fixturenames:
        return
    from streamlit_server import open_tabs_text

    report.sections.append(("open tabs at the failure", open_tabs_text(item.funcargs.get("browser"))))
    log = SERVER_LOGS.get(item.funcargs.get("app_url"))
    if log is not None and log.exists():
        report.sections.append((f"server output, last lines ({log})", "\n".join(log.read_text().splitlines()[-60:])))


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, per browser test module."""
    from streamlit_server import chromium

    with chromium(still=True) as browser:
        yield browser


@pytest.fixture(scope="module")
def page(app_url, browser):
    """One visitor's tab, on Home; the tests of a module visit the pages in turn with it."""
    from streamlit_server import VIEWPORT, wait_until_idle

    page = browser.new_page(viewport=VIEWPORT)
    page.goto(app_url)  # Home, so that every test can start from the sidebar, alone or after the others
    wait_until_idle(page)
    return page
