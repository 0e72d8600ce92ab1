"""Page chrome: the navigation and the sidebar every page shares (the pages themselves are listed in page_list)."""
from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit.runtime.pages_manager import PagesManager

import charts
import guide
import links
import presenter
import server
import session
from page_list import BY_TITLE, HOME, PAGES
from layerlens.data import shown_name
from layerlens.formatting import percent, plural


KEPT_WIDGETS = ("train_", "classic_")  # pages whose settings survive a visit to another page


def navigation() -> None:
    """Run the page the visitor asked for, inside the chrome every page shares (called once, by app.py): its link
    read on the first visit and kept up to date, the sidebar's model status."""
    page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p is HOME, url_path=p.url or None)
                          for p in PAGES])
    info = BY_TITLE[page.title]
    st.set_page_config(page_title=f"LayerLens · {page.title}", page_icon="🔬", layout="wide",
                       initial_sidebar_state=presenter.sidebar_state())
    links.restore(info.view)
    presenter.apply()
    guide.bar()
    # Streamlit forgets the state of widgets that are not on screen; re-assigning it keeps the
    # Train page's settings when the visitor looks at another page and comes back.
    for key in [k for k in st.session_state if str(k).startswith(KEPT_WIDGETS) and "_btn_" not in str(k)]:
        st.session_state[key] = st.session_state[key]
    with st.sidebar:
        model_status()
        share = st.container()
        presenter.toggle()
    charts.begin_page()
    try:
        page.run()
        charts.page_downloads()  # every figure and table the page drew, in one zip
    except StreamlitAPIException:  # a widget refused a value: one from a link that does not fit this model
        if not links.forget_view():
            raise
        st.rerun()
    finally:
        links.publish(info.view)
    server.preload_in_background()
    with share:
        links.share_link()


def inside_navigation() -> None:
    """First line of every page. Until some visitor's run calls st.navigation, Streamlit runs a script of pages/ on its
    own, without app.py (its "pages directory" mode): the first visitor of a fresh server who opens /layers would get
    no sidebar, no link and Streamlit's file names as navigation. Such a run hands over to the navigation at once
    (which leaves that mode for good) and stops: the page runs once, inside the chrome, with the visitor's click."""
    if PagesManager.uses_pages_directory:
        navigation()
        st.stop()


def model_status() -> None:
    """The visitor's model in four lines."""
    result = session.peek_current_model()
    if result is None:
        st.caption("No model trained yet.")
        return
    m = result.metrics
    st.caption(f"**Model:** {plural(len(result.config.net.channels), 'conv block')}, {m['params']:,} weights  \n"
               f"**Data:** {shown_name(result.config.dataset)}, {plural(m['epochs'], 'epoch')} on {m['train_images']:,} images  \n"
               f"**Test accuracy:** {percent(m['test_accuracy'])}  \n**Trained on:** {m['device']}")
