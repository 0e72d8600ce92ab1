"""A lesson in the app: the bar above every page while a lesson runs (its step's question, previous and next), and
the links a teacher puts on slides. The steps themselves are data, in layerlens/lessons.py."""
from __future__ import annotations

import re
import urllib.parse

import streamlit as st

import page_list
import links
import presenter
import server
from layerlens.lessons import LESSONS, Lesson


def current() -> tuple[Lesson, int] | None:
    """The lesson this visitor follows and the step's index, from the link's flags; None outside a lesson."""
    flags = links.flags()
    lesson = LESSONS.get(flags.get("lesson", ""))
    step = flags.get("step", "")
    if lesson is None or not re.fullmatch(r"[0-9]{1,3}", step) or not 1 <= int(step) <= len(lesson.steps):
        return None
    return lesson, int(step) - 1


def step_link(lesson: Lesson, index: int, present: bool) -> tuple[str, dict[str, str]]:
    """The page and query parameters of a lesson's step: its model, its view and the lesson's flags."""
    step = lesson.steps[index]
    config = lesson.config(step, server.dataset(lesson.dataset))
    flags = ({"lesson": lesson.name, "step": str(index + 1)} | ({"present": "1"} if present else {})
             | ({"only": ",".join(step.only)} if step.only else {}))
    return page_list.BY_TITLE[step.page].path, links.params_for(config, step.view, flags)


def go_to(lesson: Lesson, index: int) -> None:
    """Open the step's page with its model and view, as its link would in a new browser."""
    page, params = step_link(lesson, index, presenter.presenting())
    links.reopen()
    st.switch_page(page, query_params=params)


def end_lesson() -> None:
    for name in ("lesson", "step", "only"):
        links.set_flag(name, None)


def bar() -> None:
    """Above the page during a lesson: where the class is, the question to ask, the answer (folded), and the way on."""
    found = current()
    if found is None:
        return
    lesson, index = found
    step = lesson.steps[index]
    with st.container(border=True, key="lesson_bar"):
        st.caption(f"🎓 {lesson.title} · step {index + 1} of {len(lesson.steps)}: **{step.title}**")
        st.markdown(f"#### ❓ {step.question}")
        with st.expander("What the class should notice"):
            st.write(step.notice)
        back, forward, end = st.columns([1, 1, 1])
        if back.button("◀ Previous", key="lesson_btn_back", disabled=index == 0, width="stretch"):
            go_to(lesson, index - 1)
        if forward.button("Next ▶", key="lesson_btn_next", type="primary", disabled=index == len(lesson.steps) - 1,
                          width="stretch"):
            go_to(lesson, index + 1)
        end.button("End the lesson", key="lesson_btn_end", on_click=end_lesson, width="stretch")


def slide_links(lesson: Lesson, base: str) -> list[str]:
    """Every step's address, to put on slides (presenter view included)."""
    addresses = []
    for index in range(len(lesson.steps)):
        page, params = step_link(lesson, index, present=True)
        path = page_list.PAGE_URLS[page]
        addresses.append(f"{base}/{path}?{urllib.parse.urlencode(params)}")
    return addresses
