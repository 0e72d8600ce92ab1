"""Lesson page: the guided paths, each step a question for the class and the page that answers it."""
import streamlit as st

import chrome
import page_list
import guide
from layerlens.lessons import LESSONS

chrome.inside_navigation()


def server_address() -> str:
    """This server's address as the visitor's browser knows it (for links on slides)."""
    url = (st.context.url or "").split("?")[0].rstrip("/")
    return url.removesuffix("/" + page_list.BY_TITLE["Lesson"].url)


def lesson(found) -> None:
    st.subheader(found.title)
    for number, step in enumerate(found.steps, 1):
        st.markdown(f"{number}. **{step.title}** ({page_list.BY_TITLE[step.page].icon} {step.page}): {step.question}")
    if st.button("▶ Start the lesson", key=f"lesson_btn_start_{found.name}", type="primary"):
        guide.go_to(found, 0)
    with st.expander("Links for your slides"):
        st.caption("Each opens its step in any browser, in presenter view, with its model and its view; the lesson's "
                   "bar goes on from there. Students' links work the same without presenter view: turn it off in "
                   "the sidebar, then copy the sidebar's link.")
        for number, address in enumerate(guide.slide_links(found, server_address()), 1):
            st.code(address, language=None, wrap_lines=True)
    st.caption(f"Before class, `python -m layerlens warm {found.name}` trains every model the lesson needs, so no "
               f"step waits. Most steps use the default model, which ships ready.")


st.title("🎓 Lessons")
st.markdown("A lesson is a short path across the pages. Each step opens a page with the model and the view that answer "
            "one question: ask the class first, then look together. The bar above the page keeps the question in "
            "view; **Next ▶** opens the next step. **📽️ Presenter view** in the sidebar enlarges the type for a "
            "projector and hides the advanced settings.")
for each in LESSONS.values():
    lesson(each)
