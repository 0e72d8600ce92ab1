"""Lessons and presenter view: the lesson's steps as data, walked through the app (AppTest), the link flags that hide
controls, and `python -m layerlens warm`."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_test import app_test
import page_list
import presenter
from layerlens.data import load_sample
from layerlens.lessons import FIRST_LOOK, LESSONS

ROOT = Path(__file__).resolve().parents[1]
LESSON_PAGE, TRAIN = "pages/8_lesson.py", "pages/1_train.py"


@pytest.fixture
def app(app_model_cache, monkeypatch) -> AppTest:
    monkeypatch.setenv("LAYERLENS_CACHE", str(app_model_cache))
    return app_test()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def css(at: AppTest) -> str:
    return "\n".join(element.proto.body for element in at.get("html"))


def test_every_step_names_a_page_and_only_train_settings_it_has():
    for lesson in LESSONS.values():
        assert 6 <= len(lesson.steps) <= 10, "a lesson is a short path"
        for step in lesson.steps:
            page = page_list.BY_TITLE[step.page]
            assert all(key.startswith(page.view) and page.view for key in step.view), (step.title, step.view)
            assert set(step.only) <= set(presenter.CONTROLS), step.only
            assert step.question.endswith("?") and step.notice


def test_a_lessons_models_are_listed_once_each():
    configs = FIRST_LOOK.configs(load_sample())
    assert len(configs) == len(set(configs)) == 2  # the shipped default and the 'more data' step's
    assert {c.train_size for c in configs} == {0, 1000}


def test_the_lesson_walks_from_a_neuron_to_deep_versus_traditional(app):
    """Start on the Lesson page, press Next through every step: each opens its page with its question, model and
    view, and the last has no Next."""
    app.switch_page(LESSON_PAGE)
    app.run()
    assert_clean(app)
    app.button(key=f"lesson_btn_start_{FIRST_LOOK.name}").click()
    app.run()
    for number, step in enumerate(FIRST_LOOK.steps, 1):
        assert_clean(app)
        assert any(step.question in m.value for m in app.markdown), step.title
        assert (app.query_params["lesson"], app.query_params["step"]) == (FIRST_LOOK.name, str(number))
        assert all(app.session_state[key] == value for key, value in step.view.items()), step.view
        model = app.session_state["current_model"].config
        assert model.train_size == step.model.get("train_size", 0)
        if number == len(FIRST_LOOK.steps):
            assert app.button(key="lesson_btn_next").disabled
            break
        app.button(key="lesson_btn_next").click()
        app.run()
    app.button(key="lesson_btn_back").click()  # and back one step
    app.run()
    assert_clean(app)
    assert any(FIRST_LOOK.steps[-2].question in m.value for m in app.markdown)
    app.button(key="lesson_btn_end").click()
    app.run()
    assert_clean(app)
    assert "lesson" not in app.query_params and "step" not in app.query_params
    assert not [b for b in app.button if b.key.startswith("lesson_btn_") and "start" not in b.key]  # no bar


@pytest.mark.parametrize("flags, hidden, shown", [
    ({"only": "lr"}, ["train_epochs", "train_preset", "train_ch1", "train_blocks", "train_dataset"], ["train_lr"]),
    ({"only": "n,ep"}, ["train_lr", "train_seed"], ["train_size", "train_epochs"]),
    ({"only": "train_lr"}, ["train_epochs", "train_seed"], ["train_lr"]),  # a widget key names its control too
    ({"hide": "seed,opt"}, ["train_seed", "train_optimizer"], ["train_lr", "train_epochs"]),
    ({"present": "1"}, ["train_seed", "train_optimizer", "train_first_kernel"], ["train_lr", "train_epochs"]),
])
def test_link_flags_hide_train_settings_by_their_widgets(app, flags, hidden, shown):
    for name, value in flags.items():
        app.query_params[name] = value
    app.switch_page(TRAIN)
    app.run()
    assert_clean(app)
    style = css(app)
    assert all(f".st-key-{key}" in style for key in hidden), style
    assert not any(f".st-key-{key}," in style or f".st-key-{key} " in style for key in shown), style
    assert all(app.query_params[name] == value for name, value in flags.items())  # the flags stay in the link


def test_every_train_setting_a_flag_can_hide_is_a_widget_on_the_train_page(app):
    app.switch_page(TRAIN)
    app.run()
    assert_clean(app)
    keys = {widget.key for kind in ("slider", "select_slider", "selectbox", "checkbox", "toggle", "number_input")
            for widget in app.get(kind)}
    app.selectbox(key="train_dataset").set_value("an image folder…")  # the folder box appears only for folders
    app.run()
    keys |= {widget.key for widget in app.get("text_input")}
    wanted = {key for widgets in presenter.CONTROLS.values() for key in widgets}
    assert wanted - keys <= {"train_ch4"}, wanted - keys  # the default has 3 blocks; the 4th shows with 4


def test_presenter_view_is_switched_in_the_sidebar_and_kept_in_the_link(app):
    app.run()
    assert_clean(app)
    assert "font-size" not in css(app)
    app.toggle(key="chrome_present").set_value(True)
    app.run()
    assert app.query_params["present"] == "1" and "font-size" in css(app)
    app.toggle(key="chrome_present").set_value(False)
    app.run()
    assert "present" not in app.query_params and "font-size" not in css(app)


def test_warm_trains_a_lessons_models_once(tmp_path, monkeypatch, capsys):
    """`python -m layerlens warm LESSON` (its main, in this process): the shipped default is ready, the other model
    trains once; a second warm finds both; an unknown lesson is refused with the known ones."""
    from layerlens.__main__ import main

    monkeypatch.setenv("LAYERLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LAYERLENS_MODELS", str(ROOT / "models"))  # the shipped models, as in class
    assert main(["warm", FIRST_LOOK.name]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith("ready") and "trained in" in lines[1], lines
    assert main(["warm", FIRST_LOOK.name]) == 0
    assert [line.endswith("ready") for line in capsys.readouterr().out.strip().splitlines()] == [True, True]
    with pytest.raises(SystemExit) as refused:
        main(["warm", "no-such-lesson"])
    assert refused.value.code == 2 and FIRST_LOOK.name in capsys.readouterr().err


@pytest.mark.parametrize("lesson, step", [("first-look", "²"), ("first-look", "0"), ("first-look", "99"),
                                          ("first-look", "9" * 5000), ("no-such-lesson", "1")])
def test_a_lesson_link_with_an_impossible_step_shows_the_page_without_the_bar(app, lesson, step):
    app.query_params["lesson"], app.query_params["step"] = lesson, step
    app.run()
    assert_clean(app)
    assert "lesson_btn_next" not in [b.key for b in app.button]
