"""A light Streamlit client: one browser tab's conversation with `streamlit run`, over Streamlit's own websocket.

It speaks the protocol the frontend speaks (BackMsg up, ForwardMsg down, both protobufs) without drawing anything,
so a benchmark can put thirty students on a 2-core machine and still measure the server, not thirty browsers.

    async with StreamlitClient(url) as tab:
        run = await tab.open("layers")                # like typing http://host/layers
        run = await tab.click("layers_btn_random")     # a button, found by its key
        run = await tab.set("train_epochs", 3)         # a slider, number input, multiselect, segmented control…
        run.texts("progress")                          # every progress text the server sent during that run
        tab.view()                                     # what the page shows now: [(kind, text), …]

What the frontend does and this client copies:
- the socket is `ws://host/_stcore/stream` with subprotocol "streamlit" (the frontend repurposes the next two
  subprotocol entries for an XSRF token and a session to reconnect to; a fresh tab sends neither);
- nothing runs until the client sends `rerun_script`: the first one names the page by its URL path (`page_name`),
  later ones by the `page_script_hash` the server listed in `new_session.app_pages`;
- `cached_message_hashes` is sent empty, so the server never answers with a `ref_hash` (a reference to a message
  the browser would have cached) but always with the full message;
- widget values go up as `WidgetStates` keyed by element id (`$$ID-<hash>-<user key>`); a button is pressed by
  sending `trigger_value=True` once, in one rerun only;
- an action is done at `script_finished` FINISHED_SUCCESSFULLY (or with a compile error); FINISHED_EARLY_FOR_RERUN
  means the script called st.rerun() and goes on, so the action is not done yet;
- when a run finishes, elements it did not send again are stale and leave the page, and so do widget values of
  widgets it no longer showed.

Unlike the frontend, the client keeps only the widget values it set itself: the server remembers every other widget's
value between runs, and a value the script set (an element with `set_value`) replaces the client's.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
        ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
WIDGETS = {"button", "button_group", "checkbox", "multiselect", "number_input", "radio", "selectbox", "slider",
           "text_input", "text_area", "download_button", "color_picker"}
ERRORS = {"error", "exception"}  # kinds of text that a student sees as an error box


class ProtocolError(RuntimeError):
    """The server said something this client cannot follow (or closed the socket)."""


@dataclass
class Run:
    """Everything one action (a page open, a click, a widget change) brought back, until its script finished."""

    action: str
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    status: str | None = None  # "ok", "compile error", or why it did not finish ("timeout", "closed")
    reruns: int = 0  # st.rerun() calls on the way (each ends one script run early and starts the next)
    messages: int = 0  # ForwardMsgs received
    longest_silence: float = 0.0  # the longest time without any message from the server (a frozen page)
    _last: float | None = field(default=None, repr=False)
    received: list[tuple[float, str, str]] = field(default_factory=list)  # (seconds since start, kind, text)
    problems: list[str] = field(default_factory=list)  # page_not_found, ref_hash, compile errors…
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else self.finished - self.started

    def texts(self, *kinds: str) -> list[str]:
        """Texts received during the run, in order (of the given kinds, or all)."""
        return [text for _, kind, text in self.received if not kinds or kind in kinds]

    @property
    def errors(self) -> list[str]:
        """Error and exception boxes received during the run."""
        return [f"{kind}: {text}" for _, kind, text in self.received if kind in ERRORS]


def element_text(element) -> tuple[str, str] | None:
    """(kind, text) of an element a student reads, or None for charts, images, layout and widgets."""
    kind = element.WhichOneof("type")
    if kind == "markdown":
        return ("caption" if element.markdown.element_type == element.markdown.CAPTION else "markdown",
                element.markdown.body)
    if kind == "alert":
        return Alert.Format.Name(element.alert.format).lower(), element.alert.body  # error, warning, info, success
    if kind == "exception":
        e = element.exception
        return ("warning" if e.is_warning else "exception"), f"{e.type}: {e.message}"
    if kind == "progress":
        return "progress", element.progress.text
    if kind == "metric":
        m = element.metric
        return "metric", f"{m.label}: {m.body}" + (f" ({m.delta})" if m.delta else "")
    if kind in ("heading", "text", "toast"):
        return kind, getattr(element, kind).body
    if kind == "spinner":
        return kind, element.spinner.text
    return None


def widget_state(widget_id: str, element, value) -> WidgetState:
    """The WidgetState the frontend would send for value in this widget (value True presses a button)."""
    kind = element.WhichOneof("type")
    proto = getattr(element, kind)
    state = WidgetState(id=widget_id)
    if kind in ("button", "download_button"):
        state.trigger_value = bool(value)
    elif kind == "checkbox":
        state.bool_value = bool(value)
    elif kind == "slider":
        values = value if isinstance(value, (list, tuple)) else [value]
        if proto.options:  # a select_slider sends its options' strings
            state.string_array_value.data.extend(str(v) for v in values)
        else:
            state.double_array_value.data.extend(float(v) for v in values)
    elif kind == "number_input":
        if proto.data_type == NumberInput.INT:
            state.int_value = int(value)
        else:
            state.double_value = float(value)
    elif kind in ("multiselect", "button_group"):  # segmented control and pills are button groups
        values = value if isinstance(value, (list, tuple)) else [value]
        options = list(proto.options) if kind == "multiselect" else [o.content for o in proto.options]
        missing = [str(v) for v in values if str(v) not in options]
        if missing:
            raise ValueError(f"{missing} not among the options {options} of {widget_id}")
        state.string_array_value.data.extend(str(v) for v in values)
    elif kind in ("selectbox", "radio", "text_input", "text_area", "color_picker"):
        state.string_value = str(value)
    else:
        raise ValueError(f"setting a {kind} widget is not supported")
    return state


class StreamlitClient:
    """One simulated browser tab on a Streamlit server (see the module docstring)."""

    def __init__(self, url: str, timeout: float = 120.0):
        parts = urlparse(url)
        self.ws_url = f"ws://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream"
        self.timeout = timeout
        self.pages: dict[str, str] = {}  # url path ("layers", "" for the main page) → page_script_hash
        self.page_hash = ""  # the page shown now
        self.run: Run | None = None  # the action in progress, or the last one
        self.runs: list[Run] = []
        self.closed = False
        self.script_running = False  # as the server last said (session_status_changed)
        self._socket = None
        self._reader: asyncio.Task | None = None
        self._values: dict[str, WidgetState] = {}  # widget id → the value this client set
        self._elements: dict[tuple[int, ...], tuple[int, object]] = {}  # delta path → (script run number, element)
        self._widgets: dict[str, tuple[str, object]] = {}  # user key → (widget id, element), from the latest runs
        self._script_runs = 0

    async def __aenter__(self) -> StreamlitClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> None:
        # proxy=None: never route 127.0.0.1 through a proxy from the environment; max_size=None: big plotly figures
        self._socket = await connect(self.ws_url, subprotocols=["streamlit"], proxy=None, max_size=None,
                                     open_timeout=self.timeout, ping_interval=None)
        self._reader = asyncio.create_task(self._read(), name="st-client-reader")

    async def close(self) -> None:
        self.closed = True
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    # what a student does
    async def open(self, page: str = "", timeout: float | None = None) -> Run:
        """Go to a page by its URL path ("layers" for pages/2_layers.py, "" for the main page) and wait for it."""
        page = page.strip("/")
        if not self.pages:  # the first visit, like a browser opening http://host/<page>
            return await self._rerun(f"open {page or 'main'}", ClientState(page_name=page), timeout)
        if page not in self.pages:
            raise ValueError(f"no page {page!r}; the app has {sorted(self.pages)}")
        return await self._rerun(f"open {page or 'main'}",
                                 ClientState(page_script_hash=self.pages[page], page_name=page), timeout)

    async def click(self, key: str, timeout: float | None = None) -> Run:
        """Press the button with this user key (its trigger is sent with this one rerun only)."""
        widget_id, element = self.widget(key)
        trigger = widget_state(widget_id, element, True)
        return await self._rerun(f"click {key}", ClientState(page_script_hash=self.page_hash), timeout, [trigger])

    async def set(self, key: str, value, timeout: float | None = None) -> Run:
        """Give the widget with this user key a new value, as a student would, and wait for the rerun."""
        return await self.set_many({key: value}, timeout)

    async def set_many(self, values: dict, timeout: float | None = None) -> Run:
        """Change several widgets in one rerun (as a form's submit button does) and wait for it."""
        for key, value in values.items():
            widget_id, element = self.widget(key)
            self._values[widget_id] = widget_state(widget_id, element, value)
        action = "set " + ", ".join(f"{k}={v!r}" for k, v in values.items())
        return await self._rerun(action, ClientState(page_script_hash=self.page_hash), timeout)

    # what a student sees
    def widget(self, key: str) -> tuple[str, object]:
        """(element id, element) of the widget with this user key on the page now."""
        if key not in self._widgets:
            raise KeyError(f"no widget with key {key!r} on the page (it has {sorted(self._widgets)})")
        return self._widgets[key]

    def view(self, *kinds: str) -> list[tuple[str, str]]:
        """(kind, text) of what the page shows now, top to bottom (main area first, then the sidebar)."""
        shown = (element_text(element) for _, (_, element) in sorted(self._elements.items()))
        return [t for t in shown if t is not None and (not kinds or t[0] in kinds)]

    # inside
    async def _rerun(self, action: str, state: ClientState, timeout: float | None,
                     triggers: list[WidgetState] = ()) -> Run:
        if self.run is not None and self.run.finished is None:
            raise RuntimeError(f"{action!r} while {self.run.action!r} still runs")
        if self.closed:
            raise ProtocolError("the connection is closed")
        run = self.run = Run(action)
        self.runs.append(run)
        state.widget_states.widgets.extend([*self._values.values(), *triggers])
        state.ClearField("cached_message_hashes")  # no cache here: the server sends every message in full
        message = BackMsg()
        message.rerun_script.CopyFrom(state)
        await self._socket.send(message.SerializeToString())
        try:
            await asyncio.wait_for(run._done.wait(), timeout or self.timeout)
        except asyncio.TimeoutError:
            run.status = run.status or "timeout"
        return run

    def _end(self, status: str) -> None:
        run = self.run
        if run is not None and run.finished is None:
            run.finished, run.status = time.monotonic(), status
            run.longest_silence = max(run.longest_silence, run.finished - (run._last or run.started))
            run._done.set()

    async def _read(self) -> None:
        try:
            async for data in self._socket:
                message = ForwardMsg()
                message.ParseFromString(data)
                self._receive(message)
        except Exception as err:  # noqa: BLE001 - a dropped socket ends the action in progress, with its reason
            if self.run is not None:
                self.run.problems.append(f"connection lost: {type(err).__name__}: {err}")
        finally:
            self.closed = True
            self._end("closed")

    def _receive(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        run = self.run
        now = time.monotonic()
        if run is not None and run.finished is None:
            run.messages += 1
            run.longest_silence = max(run.longest_silence, now - (run._last or run.started))
            run._last = now
        if kind == "new_session":  # a script run starts (also after st.rerun())
            session = message.new_session
            self.pages = {p.url_pathname: p.page_script_hash for p in session.app_pages}
            main = next((p for p in session.app_pages if p.page_script_hash == session.main_script_hash), None)
            if main is not None:
                self.pages[""] = main.page_script_hash
            self.page_hash = session.page_script_hash
            self._script_runs += 1
        elif kind == "delta":
            path = tuple(message.metadata.delta_path)
            delta = message.delta
            which = delta.WhichOneof("type")
            elements = ([delta.new_element] if which == "new_element" else
                        list(delta.new_transient.elements) if which == "new_transient" else [])
            if which == "new_element":
                self._elements[path] = (self._script_runs, delta.new_element)
            elif which == "add_block":  # a new container replaces whatever was drawn at its place
                for other in [p for p in self._elements if p[:len(path)] == path]:
                    del self._elements[other]
            for element in elements:
                self._see_widget(element)
                text = element_text(element)
                if text is not None and run is not None:
                    run.received.append((now - run.started, *text))
        elif kind == "script_finished":
            status = message.script_finished
            if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                if run is not None:
                    run.reruns += 1
            elif status in DONE:
                if status != ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    self._forget_stale()
                self._end("compile error" if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR else "ok")
        elif kind == "session_status_changed":  # also false for a moment between st.rerun() and the next run
            self.script_running = message.session_status_changed.script_is_running
        elif kind == "session_event":
            event = message.session_event
            if event.WhichOneof("type") == "script_compilation_exception" and run is not None:
                e = event.script_compilation_exception
                run.received.append((now - run.started, "exception", f"{e.type}: {e.message}"))
                run.problems.append(f"compile error: {e.type}: {e.message}")
        elif kind == "page_not_found" and run is not None:
            run.problems.append(f"page not found: {message.page_not_found.page_name!r} (the main page ran instead)")
        elif kind == "ref_hash" and run is not None:  # only sent for hashes a client says it has cached: never here
            run.problems.append(f"ref_hash {message.ref_hash} for a message this client never cached")
        elif kind == "parent_message" and run is not None:  # meant for a page embedding the app: nothing to show
            run.received.append((now - run.started, "parent_message", message.parent_message.message))
        # page_config_changed, page_info_changed, navigation, logo, git_info_changed, heartbeat_ack: nothing a
        # student reads

    def _see_widget(self, element) -> None:
        kind = element.WhichOneof("type")
        if kind not in WIDGETS:
            return
        widget_id = getattr(element, kind).id
        user_key = widget_id.split("-", 2)[-1] if widget_id.startswith("$$ID-") else None
        if user_key and user_key != "None":
            self._widgets[user_key] = (widget_id, element)
        if getattr(getattr(element, kind), "set_value", False):
            self._values.pop(widget_id, None)  # the script set this value: the server's value wins

    def _forget_stale(self) -> None:
        """What the frontend does when a script run finishes: drop elements and widget values it did not show."""
        self._elements = {p: (n, e) for p, (n, e) in self._elements.items() if n == self._script_runs}
        shown = {getattr(e, e.WhichOneof("type")).id for _, e in self._elements.values()
                 if e.WhichOneof("type") in WIDGETS}
        self._values = {i: v for i, v in self._values.items() if i in shown}
        self._widgets = {k: (i, e) for k, (i, e) in self._widgets.items() if i in shown}
