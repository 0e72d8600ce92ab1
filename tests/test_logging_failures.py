"""Failures that say so: a folder LayerLens may not write, a download server out of reach, damaged files. Each one
is logged with its real cause, and what a visitor reads names it (no "no internet?" for every kind of trouble)."""
from __future__ import annotations

import builtins
import errno
import logging
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from layerlens.checkpoints import ModelCache
from layerlens.data import SAMPLE, DatasetUnavailable, load_dataset, load_folder


@pytest.fixture
def read_only(monkeypatch):
    """make(folder): a folder this process may not write in. chmod 0o555 where that binds; root ignores permissions,
    so there the lowest-level calls refuse instead (os.mkdir, and open for writing) as the kernel would."""
    folders: list[Path] = []

    def refuse(path) -> None:
        if any(Path(path).resolve().is_relative_to(folder) for folder in folders):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

    if os.geteuid() == 0:
        real_mkdir, real_open = os.mkdir, builtins.open

        def mkdir(path, *args, **kwargs):
            refuse(path)
            return real_mkdir(path, *args, **kwargs)

        def open_for_writing(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+"):
                refuse(file)
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(builtins, "open", open_for_writing)

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        folders.append(folder.resolve())
        return folder

    yield make
    for folder in folders:
        folder.chmod(0o755)  # so that pytest can delete tmp_path


def warnings_from(caplog, module: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == f"layerlens.{module}" and r.levelno == logging.WARNING]


# --- the model cache -------------------------------------------------------------------------------------------

def test_a_read_only_model_cache_warns_that_models_are_trained_again(tiny_config, tiny_data, tmp_path, read_only,
                                                                    caplog):
    folder = read_only(tmp_path / "models")
    cache = ModelCache(folder)
    with caplog.at_level(logging.WARNING, logger="layerlens.checkpoints"):
        result = cache.get_or_train(tiny_config, tiny_data)
    assert cache.get(tiny_config) is result  # memory still serves it
    assert list(folder.iterdir()) == []
    [record] = warnings_from(caplog, "checkpoints")
    message = record.getMessage()
    assert str(folder) in message and "PermissionError" in message
    assert "the folder is not writable" in message and "trained again after every restart" in message


def test_a_failed_save_leaves_no_temporary_file_and_says_so(tiny_result, tmp_path, monkeypatch, caplog):
    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    folder = tmp_path / "models"
    with caplog.at_level(logging.WARNING, logger="layerlens.checkpoints"):
        ModelCache(folder).put(tiny_result)
    assert list(folder.iterdir()) == []  # no stray .tmp file
    [record] = warnings_from(caplog, "checkpoints")
    assert "No space left on device" in record.getMessage() and "the write failed" in record.getMessage()


# --- torchvision downloads -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "cifar10"])  # MNIST sums up its mirrors' errors; CIFAR-10 raises them
def test_a_server_error_is_named(name, tmp_path, monkeypatch, caplog):
    def unavailable(request, *args, **kwargs):
        url = getattr(request, "full_url", request)
        raise urllib.error.HTTPError(url, 503, "Service Unavailable", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", unavailable)
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset(name, data_dir=tmp_path, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "the download server answered HTTP Error 503: Service Unavailable. Try again later" in message
    assert str(tmp_path.resolve()) in message and f"'{SAMPLE}'" in message
    [record] = warnings_from(caplog, "failures")
    assert "503" in record.getMessage() and str(tmp_path.resolve()) in record.getMessage()


def test_a_folder_that_cannot_be_written_is_named(tmp_path, read_only, offline):
    folder = read_only(tmp_path / "data")
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", data_dir=folder, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert f"LayerLens may not write in {folder.resolve()} (PermissionError" in message
    assert "download server" not in message and "no internet" not in message


def test_damaged_files_are_named_with_what_to_do(tmp_path, offline):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):  # present, so torchvision reads them instead of downloading
        (raw / f"{split}-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03 cut short")
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01 cut short")
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert f"The MNIST files in {(tmp_path / 'MNIST').resolve()} look damaged or incomplete" in message
    assert "Delete that folder" in message and "download server" not in message


def test_an_unexpected_error_is_named_and_logged_with_its_traceback(tmp_path, monkeypatch, caplog):
    def full_disk(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(os, "mkdir", full_disk)
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert f"MNIST could not be loaded from {tmp_path.resolve()} (OSError: [Errno 28] No space left" in message
    assert "server's log" in message and f"'{SAMPLE}'" in message
    [record] = warnings_from(caplog, "failures")
    assert record.exc_info is not None


# --- image folders ---------------------------------------------------------------------------------------------

def test_a_read_only_folder_cache_warns_and_still_loads(make_image_folder, tmp_path, read_only, caplog):
    root = make_image_folder()
    cache = read_only(tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="layerlens.data"):
        data = load_folder(root, cache)
    assert data.x_train.shape[0] == 16
    [record] = warnings_from(caplog, "data")
    message = record.getMessage()
    assert str(cache / "folders") in message and "not writable" in message and "decoded again" in message


def test_a_damaged_folder_cache_is_decoded_again(make_image_folder, tmp_path, caplog):
    root = make_image_folder()
    first = load_folder(root, tmp_path / "cache")
    [cached] = (tmp_path / "cache" / "folders").glob("*.pt")
    cached.write_bytes(b"cut short")
    again = load_folder(root, tmp_path / "cache")
    assert again.classes == first.classes and (again.x_train == first.x_train).all()
    [record] = warnings_from(caplog, "data")
    assert str(cached) in record.getMessage() and "decoded again" in record.getMessage()


def test_an_archive_cut_short_is_called_damaged_not_a_bad_image(make_image_folder, tmp_path):
    root = make_image_folder(per_class=(20, 20))
    archive = tmp_path / "images.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="images")
    archive.write_bytes(archive.read_bytes()[:archive.stat().st_size // 2])
    with pytest.raises(DatasetUnavailable, match=r"The archive images.tar.gz is cut off"):
        load_folder(archive, tmp_path / "cache")


# --- the machine -----------------------------------------------------------------------------------------------

def test_a_machine_without_proc_cpuinfo_says_so_in_the_debug_log(monkeypatch, caplog):
    from layerlens import machine

    def no_such_file(self, *args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(self))

    monkeypatch.setattr(Path, "read_text", no_such_file)
    with caplog.at_level(logging.DEBUG, logger="layerlens.machine"):
        assert machine.cpu_name().endswith("(vector unit unknown)")
    assert any("/proc/cpuinfo" in r.getMessage() and "FileNotFoundError" in r.getMessage() for r in caplog.records)
