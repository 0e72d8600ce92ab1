"""What a class does together, in a real browser (Debian's Chromium driven by Playwright, against its own
`streamlit run app.py`): two students in the training queue, a link shared with the class, a lesson in presenter view,
and the class's own images from a zip and from the camera."""
from __future__ import annotations

from browser_common import DEFAULT_EPOCHS, ERROR_BOXES, shoot, skip_without_chromium, visit
from streamlit_server import CHROMIUM, VIEWPORT, wait_until_idle

skip_without_chromium()


def test_two_students_share_the_queue_see_their_place_in_line_and_can_cancel(page, browser, app_url):
    """Two visitors (two browser sessions) on one server: one trains, the other waits in line, sees why and how
    long, cancels, and nobody's model is lost."""
    visit(page, "Train", "Which classes get confused?", "train")  # ann's tab; the default model exists: both start from it
    ann, bob = page, browser.new_context(viewport=VIEWPORT).new_page()  # bob: another browser, his own session
    bob.goto(f"{app_url}/train")
    bob.get_by_text("Which classes get confused?").first.wait_for(timeout=120_000)
    wait_until_idle(bob)
    students = [ann, bob]
    ann.get_by_text("Retrain when a setting changes").click()  # ann sets up a long training: batch 16, 30 epochs
    wait_until_idle(ann)
    for name, key in (("Batch size", "Home"), ("Epochs (passes over the data)", "End")):
        ann.get_by_role("slider", name=name).focus()
        ann.keyboard.press(key)
        wait_until_idle(ann)
    bob.get_by_text("Retrain when a setting changes").click()  # bob sets up a config no other test trains: seed 11,
    wait_until_idle(bob)  # 1 epoch (before ann's training starts, so that it runs no longer than the test needs)
    bob_seed = bob.get_by_label("Random seed")
    bob_seed.fill("11")
    bob_seed.press("Enter")
    wait_until_idle(bob)
    bob_slider = bob.get_by_role("slider", name="Epochs (passes over the data)")
    bob_slider.focus()
    bob.keyboard.press("Home")
    wait_until_idle(bob)
    ann.get_by_role("button", name="Train now").click()
    ann.get_by_text("Training: epoch").first.wait_for(timeout=60_000)
    ann.get_by_text("Training loss so far: down from").first.wait_for(timeout=30_000)  # the live chart's sentence
    assert ann.locator("[data-testid='stPlotlyChart']").count() >= 1
    bob.get_by_role("button", name="Train now").click()  # while ann's trains, bob waits in line
    line = bob.get_by_text("1st in line").first
    line.wait_for(timeout=30_000)
    assert "about" in line.inner_text()
    shoot(bob, "queue")
    bob.get_by_role("button", name="Cancel this training").click()
    bob.get_by_text("You cancelled the training of these settings").first.wait_for(timeout=30_000)
    assert bob.locator(ERROR_BOXES).count() == 0
    assert bob.locator("[data-testid='stSidebar']").get_by_text(f"{DEFAULT_EPOCHS} epochs on").count() == 1  # bob kept his model
    wanted = bob_slider.input_value()
    assert (wanted, bob_seed.input_value()) == ("1", "11"), wanted
    bob.get_by_role("button", name="Train now").click()  # bob changes his mind: back in line
    bob.get_by_text("1st in line").first.wait_for(timeout=30_000)
    ann.get_by_role("button", name="Cancel this training").click()  # ann stops hers, so bob's starts
    ann.get_by_text("You cancelled the training of these settings").first.wait_for(timeout=30_000)
    try:
        bob.locator("[data-testid='stSidebar']").get_by_text(f"{wanted} epoch on").wait_for(timeout=120_000)
    finally:
        shoot(bob, "queue-after")
    for student in students:
        wait_until_idle(student)
        assert student.locator(ERROR_BOXES).count() == 0
    assert ann.locator("[data-testid='stSidebar']").get_by_text(f"{DEFAULT_EPOCHS} epochs on").count() == 1  # ann kept her model
    bob.context.close()


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
    shoot(teacher, "link")

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
    shoot(teacher, "presenter")
    teacher.get_by_role("button", name="Next ▶").click()
    teacher.get_by_text("step 2 of 9").wait_for(timeout=60_000)
    teacher.get_by_text("Output: the classifier").wait_for(timeout=60_000)
    wait_until_idle(teacher)
    assert "layers_class=7" in teacher.url and "lesson=first-look" in teacher.url and "step=2" in teacher.url
    assert teacher.locator(ERROR_BOXES).count() == 0
    shoot(teacher, "lesson")
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
    student.get_by_role("button", name="Train now").wait_for(timeout=60_000)  # once the step's model is trained
    wait_until_idle(student)
    assert student.locator(".st-key-train_size").is_visible()
    for hidden in ("train_lr", "train_epochs", "train_preset", "train_blocks", "train_seed", "train_save_name"):
        student.locator(f".st-key-{hidden}").wait_for(state="hidden", timeout=10_000)  # fails if it stays
    assert student.locator(ERROR_BOXES).count() == 0 and "Traceback" not in student.content()
    shoot(student, "lesson-student")
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
    shoot(teacher, "images")
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
                take = teacher.get_by_role("button", name="Take Photo")
                take.wait_for(timeout=30_000)
                teacher.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2)",
                                          timeout=30_000)  # the camera's picture has arrived
                take.click()
                teacher.get_by_text(f"{name}: {taken} photo").first.wait_for(timeout=30_000)
                wait_until_idle(teacher)
        assert teacher.locator(ERROR_BOXES).count() == 0, teacher.locator(ERROR_BOXES).first.inner_text()
        teacher.get_by_role("button", name="Use these photos").click()
        teacher.get_by_text("Your images, ready to train").wait_for(timeout=60_000)
        wait_until_idle(teacher)
        assert teacher.get_by_text("8 training and 2 test images").count() == 1
        assert teacher.locator(ERROR_BOXES).count() == 0, teacher.locator(ERROR_BOXES).first.inner_text()
        shoot(teacher, "images-camera-ready")
        context.close()
    finally:
        camera.close()
