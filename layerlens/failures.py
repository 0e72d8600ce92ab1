"""What went wrong, in words: the real cause of a failed download or a refused write, for messages a teacher can act
on (the details go to the log)."""
from __future__ import annotations

import errno
import http.client
import logging
import pickle
import tarfile
import urllib.error
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

def not_writable(err: BaseException) -> bool:
    """Whether an error means that a folder (or file) may not be written: permissions or a read-only disk."""
    return isinstance(err, PermissionError) or getattr(err, "errno", None) == errno.EROFS


def _causes(err: BaseException) -> list[BaseException]:
    """err and the exceptions it was raised from or while handling, outermost first."""
    chain = []
    while err is not None and err not in chain:
        chain.append(err)
        err = err.__cause__ or err.__context__
    return chain


def said(err: BaseException) -> str:
    """'Type: message' on one line, short enough for a sentence."""
    text = f"{type(err).__name__}: {err}".splitlines()[0]
    return text if len(text) <= 200 else text[:199] + "…"


def _network_failure(err: BaseException) -> tuple[str, str] | None:
    """When the network is why err was raised: what happened, in words, and what to do about it; else None."""
    for e in _causes(err):
        if isinstance(e, urllib.error.HTTPError):
            return f"the download server answered {e}", "Try again later"
        if isinstance(e, (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException)):
            reason = getattr(e, "reason", e)
            reason = said(reason) if isinstance(reason, BaseException) else reason
            return f"LayerLens could not reach the download server ({reason})", "Connect once"
    # MNIST tries two mirrors and sums up their errors in one RuntimeError, as text
    lines = [line.strip("<>") for line in str(err).splitlines() if "urlopen error" in line or "HTTP Error" in line]
    if not str(err).startswith("Error downloading") or not lines:
        return None
    if lines[-1].startswith("HTTP Error"):
        return f"the download server answered {lines[-1]}", "Try again later"
    return f"LayerLens could not reach the download server ({lines[-1].removeprefix('urlopen error ')})", "Connect once"


# what torchvision raises for files cut short or damaged (its MNIST reader asserts; CIFAR-10 unpickles)
DAMAGED = (RuntimeError, ValueError, AssertionError, EOFError, zlib.error, tarfile.TarError, pickle.UnpicklingError)


def download_failure(name: str, title: str, size: str, data_dir: Path, files: Path, err: Exception,
                     sample: str) -> str:
    """The real cause of a failed torchvision download or load of dataset `name` (its files under `files`), in one
    or two sentences, and a warning in the log: the network, a folder LayerLens may not write, damaged files, else
    the error itself. sample: the offline dataset that works meanwhile."""
    folder, files = data_dir.resolve(), files.resolve()
    meanwhile = f"the offline '{sample}' dataset works meanwhile."
    network = _network_failure(err)
    denied = next((e for e in _causes(err) if not_writable(e)), None)
    unexpected = False
    if network:
        what_happened, retry = network
        message = (f"{title} is not in {folder} and {what_happened}. {retry} to download it ({size}) into that "
                   f"folder, or set LAYERLENS_DATA to a folder that already has it; {meanwhile}")
    elif denied is not None:
        where = Path(denied.filename).resolve().parent if getattr(denied, "filename", None) else folder
        message = (f"{title} could not be downloaded because LayerLens may not write in {where} ({said(denied)}). "
                   f"Make that folder writable, or set LAYERLENS_DATA to a folder it can write to; {meanwhile}")
    elif isinstance(err, DAMAGED) and files.exists():
        message = (f"The {title} files in {files} look damaged or incomplete ({said(err)}). Delete that folder and "
                   f"load {title} again to download it afresh ({size}); {meanwhile}")
    else:
        message = (f"{title} could not be loaded from {folder} ({said(err)}); the server's log has the details. "
                   f"The offline '{sample}' dataset works meanwhile.")
        unexpected = True
    log.warning("could not load %s from %s (%s: %s)", name, folder, type(err).__name__, err,
                exc_info=err if unexpected else None)
    return message
