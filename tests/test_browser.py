"""One visitor's tour of the app in a real browser: Debian's Chromium driven by Playwright, against
`streamlit run app.py`. test_browser_class.py has what a class does together (queue, links, lesson, own images)."""
from __future__ import annotations

from browser_common import DEFAULT_EPOCHS, ERROR_BOXES, shoot, skip_without_chromium, visit
from streamlit_server import drag_through, wait_until_idle

skip_without_chromium()

SERVER_ENV = {"LAYERLENS_WARM_UP": "1"}  # this server fits the Traditional ML page's first models before it is opened


def test_layers_first_trains_the_default_then_follows_a_new_image(page, app_url):
    page.goto(f"{app_url}/layers")  # a fresh visitor opens the Layers page before any training
    visit(page, "Layers", "Output: the classifier", "layers-drawing")  # its charts may still be loading plotly
    assert page.get_by_text("The network says").count() == 1
    page.locator("[data-testid='stPlotlyChart']").nth(4).wait_for(timeout=60_000)  # input, 3 blocks, dense, output
    wait_until_idle(page)
    shoot(page, "layers")
    example = page.get_by_role("slider").first
    example.focus()
    for _ in range(3):  # one key at a time: each one reruns the page
        page.keyboard.press("ArrowRight")
        wait_until_idle(page)
    assert example.input_value() == "3"
    assert page.get_by_text("The network says").count() == 1
    assert page.locator(ERROR_BOXES).count() == 0


def test_train_page_shows_the_trained_model_and_retrains_on_a_slider(page):
    visit(page, "Train", "Which classes get confused?", "train")
    for text in ("Test accuracy", "Training time", "Learned weights", "The network, layer by layer"):
        page.get_by_text(text).first.wait_for(timeout=30_000)  # drawn, if not yet (a busy machine draws late)
    slider = page.get_by_role("slider", name="Epochs (passes over the data)")
    slider.focus()
    page.keyboard.press("ArrowLeft")  # one epoch fewer than the default: a new model trains
    page.get_by_text("Training:").first.wait_for(timeout=30_000)
    page.locator("[data-testid='stSidebar']").get_by_text(f"{DEFAULT_EPOCHS - 1} epochs on").wait_for(timeout=60_000)
    wait_until_idle(page)
    assert page.locator(ERROR_BOXES).count() == 0


def test_train_page_hands_out_the_model_and_the_page_as_files(page):
    """The downloads, made when clicked, open as what they say: a checkpoint, an ONNX graph, a zip of PNGs."""
    import zipfile

    import onnx

    from layerlens.checkpoints import load_checkpoint

    visit(page, "Train", "Take the model with you", "train-downloads", expect=("Right on ",))
    files = {}
    for label in ("confusion-matrix.csv", "Model (.pt)", "Model as ONNX", "This page as files"):
        with page.expect_download(timeout=120_000) as download:
            page.get_by_role("button", name=label).click()
        files[label] = download.value.path()
    assert open(files["confusion-matrix.csv"]).readline().count(",") == 10  # the true class, then 10 answers
    assert load_checkpoint(files["Model (.pt)"]).metrics["epochs"] >= 1
    onnx.checker.check_model(onnx.load(files["Model as ONNX"]))
    with zipfile.ZipFile(files["This page as files"]) as archive:
        assert archive.namelist() == ["01-train_history.png", "02-train_architecture.png", "03-train_confusion.png",
                                      "confusion-matrix.csv", "summaries.txt"]
        assert all(archive.read(name).startswith(b"\x89PNG") for name in archive.namelist()[:3])


def test_features_page_shows_patches_growing_with_depth(page):
    visit(page, "Filters & features", "Training filmstrip", "features",
          expect=("block 1: 3×3 px", "block 3: 18×18 px", "ch 0 wants"))


def test_traditional_ml_page_compares_and_measures_learning_curves(page, server_log):
    log = server_log
    for _ in range(240):  # the warm-up waited for the first trainings of this module, then fitted (or read) five models
        if "Traditional ML page's 5 first models ready" in log.read_text():
            break
        page.wait_for_timeout(500)
    else:
        raise AssertionError(f"no warm-up in the server's log:\n{log.read_text()[-3000:]}")
    visit(page, "Traditional ML", "White box or black box?", "classic",
          expect=("Who gets the test images right", "SVM (RBF kernel)", "Side by side on one image"))
    page.get_by_role("button", name="Measure learning curves").click()
    page.get_by_text("Going from 100 to").wait_for(timeout=180_000)
    wait_until_idle(page)
    page.get_by_role("radio", name="Decision tree").click()
    page.get_by_text("Q1: is pixel").wait_for(timeout=10_000)
    assert page.locator(ERROR_BOXES).count() == 0
    shoot(page, "classic")


def draw(page, points: list[tuple[int, int]]) -> None:
    """One stroke with the mouse through points (x, y) of the page's drawing canvas, 10 moves per segment."""
    drag_through(page, page.locator("canvas").last.bounding_box(), points)
    page.mouse.up()


def test_one_neuron_page_reads_a_drawn_digit(page):
    visit(page, "One neuron", "Draw a digit in the black square", "neuron-empty")
    draw(page, [(70, 60), (210, 60), (130, 240)])  # a 7
    page.get_by_text("sure this is a 7").first.wait_for(timeout=30_000)
    wait_until_idle(page)
    for text in ("One neuron under the microscope", "What matters to this prediction", "it fires"):
        page.get_by_text(text).first.wait_for(timeout=30_000)  # drawn, if not yet (a busy machine draws late)
    assert page.locator(ERROR_BOXES).count() == 0
    shoot(page, "neuron")


def test_learning_page_steps_by_hand_breaks_learning_and_adds_data(page):
    visit(page, "Learning", "One step under the microscope", "learning-start",
          expect=("Loss on this image", "first-layer kernels now", "Training, step by step: your model"))
    page.get_by_text("32 random training images").click()
    wait_until_idle(page)
    for _ in range(2):
        page.get_by_role("button", name="100 steps").click()
        page.get_by_text("steps taken.").first.wait_for(timeout=60_000)
        wait_until_idle(page)
    assert page.get_by_text("200 steps taken.").count() == 1
    page.get_by_role("button", name="A tiny training set and many epochs").click()
    page.get_by_text("The same recipe unbroken").wait_for(timeout=120_000)
    wait_until_idle(page)
    page.get_by_role("button", name="Measure it").click()
    page.get_by_text("images (100%)").wait_for(timeout=300_000)
    wait_until_idle(page)
    assert page.locator(ERROR_BOXES).count() == 0
    assert page.get_by_role("button", name="Cancel this training").count() == 0  # gone with their trainings
    shoot(page, "learning")


def test_abstraction_page_shows_probes_and_maps_and_the_images_behind_the_dots(page):
    visit(page, "Abstraction", "Maps of each layer", "abstraction",
          expect=("A straight line at every layer", "Abstraction being built, epoch by epoch", "separation"))
    output_map = page.locator("[data-testid='stPlotlyChart']").last.locator(".nsewdrag").last
    output_map.scroll_into_view_if_needed()
    box = output_map.bounding_box()  # drag a selection box over the top half of the output layer's map
    drag_through(page, box, [(5, 5), (box["width"] - 5, box["height"] / 2)])
    page.mouse.up()
    page.get_by_text("picked test images").wait_for(timeout=30_000)
    wait_until_idle(page)
    assert page.locator(ERROR_BOXES).count() == 0
    shoot(page, "abstraction")
    images = page.get_by_role("slider", name="Test images")
    images.focus()
    images.press("Home")  # 500 test images: t-SNE's six maps in seconds
    wait_until_idle(page)
    page.locator("[data-testid='stButtonGroup']").get_by_text("t-SNE", exact=True).click()  # layer by layer, with a bar that says which and how long
    page.get_by_text("Drawing the t-SNE map of").first.wait_for(timeout=30_000)
    wait_until_idle(page)
    assert page.get_by_text("Drawing the t-SNE map of").count() == 0  # gone once the maps are drawn
    assert page.get_by_text("500 test images mapped at 6 layers").count() == 1
    assert page.locator(ERROR_BOXES).count() == 0


def test_home_page_explains_and_links_every_page(page):
    visit(page, "Home", "LayerLens: see how a deep network learns", "home")
    for link in ("Train", "Layers", "Filters & features", "Traditional ML", "One neuron", "Learning",
                 "Abstraction"):
        page.get_by_role("link", name=link).first.wait_for(timeout=30_000)
    assert page.get_by_text("Your model").count() == 1  # the same visitor's model, trained on the other pages


