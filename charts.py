"""Charts with their sentence, and a page's files to take away.

Every chart is drawn by chart(): under it goes one line that says in numbers what it shows (screen readers read
it, and so does the back row when the chart is too small to see). The page keeps what it drew in this run, and
page_downloads() offers it at the bottom as one zip: each figure as PNG, each table as CSV."""
from __future__ import annotations

import streamlit as st

import server
import session
from layerlens import exports
from layerlens.formatting import plural

# drawing a page's PNGs on a busy 2-core server, measured: 5.2-7.6 s for 3-7 figures (a Chromium's start, then each)
BROWSER_START_S, PER_FIGURE_S = 4.0, 0.5


def chart(fig, key: str, summary: str, where=None, keep: bool = True, **options):
    """Draw fig (key prefixed by the page) with its one-line summary under it, and keep both for the page's zip
    (keep=False: a chart of the moment, such as the loss while a training runs, stays out of it).
    where: a column or container (default: the page); options go to st.plotly_chart, whose value is returned."""
    where = where or st
    shown = where.plotly_chart(fig, key=key, **options)
    where.caption(summary)
    if keep:
        session.page_exports()["figures"][key] = (fig, summary)
    return shown


def csv_button(name: str, rows, key: str, where=None) -> None:
    """A button that downloads rows (dicts or a DataFrame) as <name>.csv; they go into the page's zip too."""
    (where or st).download_button(f"⬇️ {name}.csv", lambda: exports.csv_bytes(rows), file_name=f"{name}.csv",
                                  mime="text/csv", key=key, on_click="ignore")
    session.page_exports()["tables"][name] = rows


def begin_page() -> None:
    """Forget what the last run drew (chrome calls it before each page runs)."""
    session.forget_page_exports()


def page_downloads() -> None:
    """At the bottom of a page: everything it drew in this run in one zip (made only when asked)."""
    drawn = session.page_exports()
    session.forget_page_exports()
    figures, tables = dict(drawn["figures"]), dict(drawn["tables"])
    if not figures and not tables:
        return
    page = next(iter(figures), "page").split("_")[0]  # keys start with the page's prefix
    missing = exports.browser_path() is None and figures
    wait = round(BROWSER_START_S + PER_FIGURE_S * len(figures)) if figures else 0
    what = " and ".join(filter(None, [figures and f"{plural(len(figures), 'figure')} (PNG)",
                                      tables and f"{plural(len(tables), 'table')} (CSV)"]))
    st.divider()
    # made on Streamlit's own thread when clicked (a failure is logged there, with its traceback)
    st.download_button(f"⬇️ This page as files: {what}, in one zip",
                       lambda: exports.page_zip(figures, tables, server.figure_pngs),
                       file_name=f"layerlens-{page}.zip", mime="application/zip", key="page_btn_zip",
                       on_click="ignore", disabled=bool(missing),
                       help=f"Drawn when you click: about {wait} s." if wait else None)
    if missing:
        st.caption("Drawing PNGs needs Chrome or Chromium on the server (`apt-get install chromium`).")
    elif wait:  # a wait says how long: the browser shows nothing while the server draws
        st.caption(f"The figures are drawn when you click: about {wait} s (at once where someone else already had "
                   "the same figures drawn), then your browser saves the zip.")
