"""The whole app in a real browser: Debian's Chromium driven by Playwright, against `streamlit run app.py`."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerlens.training import PRESET_TRAINING
from streamlit_server import (CHROMIUM, VIEWPORT, chromium, drag_through, full_page_screenshot, streamlit_app,
                              wait_until_idle)

SCREENSHOTS = Path(os.environ.get("LAYERLENS_SCREENSHOTS", Path(__file__).parent / "screenshots"))
ERROR_BOXES = "[data-testid='stException'], [data-testid='stAlertContentError']"
DEFAULT_EPOCHS = PRESET_TRAINING["tiny"]["epochs"]  # the default model's, shown in the sidebar as "N epochs on"

if not Path(CHROMIUM).exists():
    reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
    if os.environ.get("CI"):
        raise RuntimeError(reason)  # CI installs it, so its absence there is a failure
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, app_model_cache):
    tmp = tmp_path_factory.mktemp("browser")
    env = {"LAYERLENS_CACHE": str(app_model_cache), "LAYERLENS_DATA": str(tmp / "data")}
    with streamlit_app(env) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def page(app_url, browser):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(app_url)  # Home, so that every test can start from the sidebar, alone or after the others
    wait_until_idle(page)
    return page


def visit(page, link: str, marker: str, shot: str, expect: tuple[str, ...] = ()) -> None:
    """Click a sidebar link (the session and its model carry over), wait for marker text and an idle app,
    check for errors and for each expected text, save a screenshot."""
    page.locator("[data-testid='stSidebar']").get_by_role("link", name=link).click()
    page.get_by_text(marker).first.wait_for(timeout=120_000)
    wait_until_idle(page)
    assert page.locator(ERROR_BOXES).count() == 0, page.locator(ERROR_BOXES).first.inner_text()
    assert "Traceback" not in page.content()
    for text in expect:
        assert page.get_by_text(text).count() >= 1, text
    full_page_screenshot(page, SCREENSHOTS / f"{shot}.png")


def test_layers_first_trains_the_default_then_follows_a_new_image(page, app_url):
    page.goto(f"{app_url}/layers")  # a fresh visitor opens the Layers page before any training
    visit(page, "Layers", "Output: the classifier", "layers")
    assert page.get_by_text("The network says").count() == 1
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 5  # input, 3 blocks, dense, output
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
        assert page.get_by_text(text).count() >= 1, text
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
    for label in ("Model (.pt)", "Model as ONNX", "This page as files"):
        with page.expect_download(timeout=120_000) as download:
            page.get_by_role("button", name=label).click()
        files[label] = download.value.path()
    assert load_checkpoint(files["Model (.pt)"]).metrics["epochs"] >= 1
    onnx.checker.check_model(onnx.load(files["Model as ONNX"]))
    with zipfile.ZipFile(files["This page as files"]) as archive:
        assert archive.namelist() == ["01-train_history.png", "02-train_architecture.png", "03-train_confusion.png",
                                      "confusion-matrix.csv", "summaries.txt"]
        assert all(archive.read(name).startswith(b"\x89PNG") for name in archive.namelist()[:3])


def test_features_page_shows_patches_growing_with_depth(page):
    visit(page, "Filters & features", "Training filmstrip", "features",
          expect=("block 1: 3×3 px", "block 3: 18×18 px", "ch 0 wants"))


def test_traditional_ml_page_compares_and_measures_learning_curves(page):
    visit(page, "Traditional ML", "White box or black box?", "classic",
          expect=("Who gets the test images right", "SVM (RBF kernel)", "Side by side on one image"))
    page.get_by_role("button", name="Measure learning curves").click()
    page.get_by_text("Going from 100 to").wait_for(timeout=180_000)
    wait_until_idle(page)
    page.get_by_role("radio", name="Decision tree").click()
    page.get_by_text("Q1: is pixel").wait_for(timeout=10_000)
    assert page.locator(ERROR_BOXES).count() == 0
    full_page_screenshot(page, SCREENSHOTS / "classic.png")


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
        assert page.get_by_text(text).count() >= 1, text
    assert page.locator(ERROR_BOXES).count() == 0
    full_page_screenshot(page, SCREENSHOTS / "neuron.png")


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
    full_page_screenshot(page, SCREENSHOTS / "learning.png")


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
    full_page_screenshot(page, SCREENSHOTS / "abstraction.png")


def test_home_page_explains_and_links_every_page(page):
    visit(page, "Home", "LayerLens: see how a deep network learns", "home")
    for link in ("Train", "Layers", "Filters & features", "Traditional ML", "One neuron", "Learning",
                 "Abstraction"):
        assert page.get_by_role("link", name=link).count() >= 1
    assert page.get_by_text("Your model").count() == 1  # the same visitor's model, trained on the other pages


def test_two_students_share_the_queue_see_their_place_in_line_and_can_cancel(page, browser, app_url):
    """Two visitors (two browser sessions) on one server: one trains, the other waits in line, sees why and how
    long, cancels, and nobody's model is lost."""
    visit(page, "Train", "Which classes get confused?", "train")  # the default model exists: both start from it
    students = [browser.new_context(viewport=VIEWPORT).new_page() for _ in range(2)]
    for student in students:
        student.goto(f"{app_url}/train")
        student.get_by_text("Which classes get confused?").first.wait_for(timeout=120_000)
        wait_until_idle(student)
    ann, bob = students
    ann.get_by_text("Retrain when a setting changes").click()  # ann sets up a long training: batch 16, 30 epochs
    wait_until_idle(ann)
    for name, key in (("Batch size", "Home"), ("Epochs (passes over the data)", "End")):
        ann.get_by_role("slider", name=name).focus()
        ann.keyboard.press(key)
        wait_until_idle(ann)
    ann.get_by_role("button", name="Train now").click()
    ann.get_by_text("Training: epoch").first.wait_for(timeout=60_000)
    bob_slider = bob.get_by_role("slider", name="Epochs (passes over the data)")
    bob_slider.focus()
    bob.keyboard.press("PageUp")  # another config while ann's trains: bob waits in line
    line = bob.get_by_text("1st in line").first
    line.wait_for(timeout=30_000)
    assert "about" in line.inner_text()
    full_page_screenshot(bob, SCREENSHOTS / "queue.png")
    bob.get_by_role("button", name="Cancel this training").click()
    bob.get_by_text("You cancelled the training of these settings").first.wait_for(timeout=30_000)
    assert bob.locator(ERROR_BOXES).count() == 0
    assert bob.locator("[data-testid='stSidebar']").get_by_text(f"{DEFAULT_EPOCHS} epochs on").count() == 1  # bob kept his model
    wanted = bob_slider.input_value()
    bob.get_by_role("button", name="Train now").click()  # bob changes his mind: back in line
    bob.get_by_text("1st in line").first.wait_for(timeout=30_000)
    ann.get_by_role("button", name="Cancel this training").click()  # ann stops hers, so bob's starts
    ann.get_by_text("You cancelled the training of these settings").first.wait_for(timeout=30_000)
    try:
        bob.locator("[data-testid='stSidebar']").get_by_text(f"{wanted} epochs on").wait_for(timeout=120_000)
    finally:
        full_page_screenshot(bob, SCREENSHOTS / "queue-after.png")
    for student in students:
        wait_until_idle(student)
        assert student.locator(ERROR_BOXES).count() == 0
    assert ann.locator("[data-testid='stSidebar']").get_by_text(f"{DEFAULT_EPOCHS} epochs on").count() == 1  # ann kept her model
    for student in students:
        student.context.close()


def model_status(page) -> str:
    """The sidebar's four lines on the visitor's model (weights, data, epochs, test accuracy)."""
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert "Model:" in sidebar, sidebar
    found = sidebar[sidebar.index("Model:"):]
    return found[:found.index("Trained on:")]


def test_a_link_opens_the_same_model_and_view_in_another_browser(browser, app_url):
    """A teacher changes a setting and picks an image; the address bar, opened in a fresh browser context (another
    student), rebuilds the same model and shows the same view."""
    teacher = browser.new_page(viewport=VIEWPORT)
    teacher.goto(f"{app_url}/train")
    teacher.get_by_text("Which classes get confused?").wait_for(timeout=120_000)
    seed = teacher.get_by_label("Random seed")
    seed.fill("2")
    seed.press("Enter")  # a new setting: a new model trains
    sidebar = teacher.locator("[data-testid='stSidebar']")
    teacher.get_by_text("Training:").first.wait_for(timeout=30_000)
    wait_until_idle(teacher)
    sidebar.get_by_role("link", name="Layers").click()
    teacher.get_by_text("Output: the classifier").wait_for(timeout=60_000)
    wait_until_idle(teacher)
    teacher.get_by_role("button", name="🎲 Random").click()
    wait_until_idle(teacher)
    link, says = teacher.url, teacher.get_by_text("The network says").inner_text()
    status = model_status(teacher)
    assert "seed=2" in link and "layers_index=" in link and "layers_class=" in link, link
    sidebar.get_by_text("🔗 Link for the class").click()
    shown = teacher.locator("[data-testid='stPopoverBody'] code").first.inner_text()
    assert "seed=2" in shown and "v=1" in shown, shown
    full_page_screenshot(teacher, SCREENSHOTS / "link.png")

    student = browser.new_context(viewport=VIEWPORT).new_page()  # another browser: no session, no cookies
    student.goto(link)
    student.get_by_text("The network says").wait_for(timeout=120_000)
    wait_until_idle(student)
    assert student.get_by_text("The network says").inner_text() == says
    assert model_status(student) == status
    assert student.locator(ERROR_BOXES).count() == 0 and "Traceback" not in student.content()
    student.context.close()
    teacher.close()


def test_a_lesson_in_presenter_view_and_a_link_that_leaves_students_one_setting(browser, app_url):
    """The teacher turns presenter view on, starts the lesson and goes on a step; a student opens the 'more data'
    step's link from the slides and sees only the 'Training images' slider."""
    teacher = browser.new_page(viewport=VIEWPORT)
    teacher.goto(f"{app_url}/lesson")
    teacher.get_by_role("button", name="▶ Start the lesson").wait_for(timeout=60_000)
    wait_until_idle(teacher)
    teacher.locator("[data-testid='stSidebar']").get_by_text("Presenter view").click()
    wait_until_idle(teacher)
    assert "present=1" in teacher.url
    slides = teacher.locator("[data-testid='stCode'] code").all_text_contents()
    teacher.get_by_role("button", name="▶ Start the lesson").click()
    teacher.get_by_text("step 1 of 9").wait_for(timeout=60_000)
    wait_until_idle(teacher)
    size = teacher.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                            "'[data-testid=\"stMain\"] [data-testid=\"stMarkdownContainer\"] p')).fontSize)")
    assert size >= 20, size  # projector type: 1.3rem
    full_page_screenshot(teacher, SCREENSHOTS / "presenter.png")
    teacher.get_by_role("button", name="Next ▶").click()
    teacher.get_by_text("step 2 of 9").wait_for(timeout=60_000)
    teacher.get_by_text("Output: the classifier").wait_for(timeout=60_000)
    wait_until_idle(teacher)
    assert "layers_class=7" in teacher.url and "lesson=first-look" in teacher.url and "step=2" in teacher.url
    assert teacher.locator(ERROR_BOXES).count() == 0
    full_page_screenshot(teacher, SCREENSHOTS / "lesson.png")
    teacher.close()

    projector = browser.new_context(viewport=VIEWPORT).new_page()  # the first slide's link, opened on the projector
    projector.goto(next(link for link in slides if "step=1&" in link or link.endswith("step=1")))
    projector.get_by_text("step 1 of 9").wait_for(timeout=60_000)
    wait_until_idle(projector)
    assert projector.get_by_test_id("stExpandSidebarButton").is_visible()  # the sidebar closed, its button shown
    projector.context.close()

    more_data = next(link for link in slides if "step=7" in link)
    assert "only=n" in more_data and "/train?" in more_data, more_data
    student = browser.new_context(viewport=VIEWPORT).new_page()
    student.goto(more_data.replace("present=1", "present=0"))
    student.get_by_text("step 7 of 9").wait_for(timeout=120_000)
    student.get_by_text("Which classes get confused?").wait_for(timeout=120_000)
    wait_until_idle(student)
    assert student.locator(".st-key-train_size").is_visible() and student.get_by_role("button", name="Train now").is_visible()
    for hidden in ("train_lr", "train_epochs", "train_preset", "train_blocks", "train_seed", "train_save_name"):
        student.locator(f".st-key-{hidden}").wait_for(state="hidden", timeout=10_000)  # fails if it stays
    assert student.locator(ERROR_BOXES).count() == 0 and "Traceback" not in student.content()
    full_page_screenshot(student, SCREENSHOTS / "lesson-student.png")
    student.context.close()


def test_a_zip_of_the_class_images_trains_and_the_pages_look_inside_that_model(browser, app_url, tmp_path):
    """A teacher uploads a zip of the class's images (real digits in <class>/ folders), trains on them and looks at
    the Layers and Filters & features pages of that model."""
    from test_pages import digits_zip

    archive = tmp_path / "our-digits.zip"
    archive.write_bytes(digits_zip())
    teacher = browser.new_page(viewport=VIEWPORT)
    teacher.goto(f"{app_url}/images")
    visit(teacher, "Your images", "Teach a network your own classes", "images-empty")
    teacher.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(archive))
    teacher.get_by_text("Your images, ready to train").wait_for(timeout=60_000)
    wait_until_idle(teacher)
    assert teacher.locator(ERROR_BOXES).count() == 0, teacher.locator(ERROR_BOXES).first.inner_text()
    assert teacher.get_by_text("48 training and 12 test images").count() == 1
    full_page_screenshot(teacher, SCREENSHOTS / "images.png")
    teacher.get_by_role("button", name="Train a CNN on them").click()
    teacher.get_by_text("Which classes get confused?").wait_for(timeout=120_000)
    wait_until_idle(teacher)
    status = teacher.locator("[data-testid='stSidebar']").inner_text()
    assert "folder:uploads/" in status and "on 48 images" in status, status
    assert "data=folder%3Auploads%2F" in teacher.url or "data=folder:uploads/" in teacher.url, teacher.url
    visit(teacher, "Layers", "Output: the classifier", "images-layers", expect=("The network says",))
    visit(teacher, "Filters & features", "Training filmstrip", "images-features")
    teacher.close()


def test_photos_taken_with_the_camera_class_by_class_become_the_dataset(browser, app_url):
    """The teacher names two classes and takes photos of each with the camera (Chromium's fake camera: a test
    pattern), then uses them: the Train page's dataset is now that folder."""
    from streamlit_server import CHROMIUM_FLAGS

    camera = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_FLAGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
    try:
        context = camera.new_context(viewport=VIEWPORT, permissions=["camera"])
        teacher = context.new_page()
        teacher.goto(f"{app_url}/images")
        teacher.get_by_text("Teach a network your own classes").wait_for(timeout=60_000)
        wait_until_idle(teacher)
        teacher.get_by_role("radio", name="The camera").click()
        wait_until_idle(teacher)
        names = teacher.get_by_label("Your classes, separated by commas")
        names.fill("left, right")
        names.press("Enter")
        wait_until_idle(teacher)
        for name in ("left", "right"):
            teacher.locator(".st-key-images_label").get_by_role("radio", name=name).click()
            wait_until_idle(teacher)
            for taken in range(1, 6):
                shoot = teacher.get_by_role("button", name="Take Photo")
                shoot.wait_for(timeout=30_000)
                teacher.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2)",
                                          timeout=30_000)  # the camera's picture has arrived
                shoot.click()
                teacher.get_by_text(f"{name}: {taken} photo").first.wait_for(timeout=30_000)
                wait_until_idle(teacher)
        assert teacher.locator(ERROR_BOXES).count() == 0, teacher.locator(ERROR_BOXES).first.inner_text()
        teacher.get_by_role("button", name="Use these photos").click()
        teacher.get_by_text("Your images, ready to train").wait_for(timeout=60_000)
        wait_until_idle(teacher)
        assert teacher.get_by_text("8 training and 2 test images").count() == 1
        assert teacher.locator(ERROR_BOXES).count() == 0, teacher.locator(ERROR_BOXES).first.inner_text()
        full_page_screenshot(teacher, SCREENSHOTS / "images-camera-ready.png")
        context.close()
    finally:
        camera.close()
