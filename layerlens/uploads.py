"""A class's own images: an uploaded .zip, or photos taken class by class, checked and written as an image folder.

Everything lands in <folders_root>/uploads/<content hash>/train/<class>/ and test/<class>/: an ordinary folder dataset
("folder:uploads/<hash>"), so the same images give the same folder, the same link and the same cached model for the
whole class. Images are stored as small PNGs, what load_folder makes of them anyway (up to 64 px as they are, bigger
ones as a 32×32 centre square), so a classroom's photos are never kept at full size. Every refusal is a ValueError
in one sentence and leaves nothing behind: the folder is written in a hidden folder beside it and renamed when whole.
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import re
import shutil
import stat
import uuid
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from .data import FOLDER_IMAGE_SIZE, FOLDER_PREFIX, IMAGE_SUFFIXES, KEEP_SIZE, centre_square, stratified_split
from .failures import not_writable, said
from .formatting import plural
from .inputs import MAX_PIXELS, MAX_UPLOAD_BYTES, to_rgb
from .training import FEW_UPDATES

log = logging.getLogger(__name__)

UPLOADS = "uploads"  # the sub-folder of the visitor-readable folder that uploads are written to
UPLOAD_SETTING, UNPACKED_SETTING, STORED_SETTING = "LAYERLENS_UPLOAD_MB", "LAYERLENS_UNPACKED_MB", "LAYERLENS_UPLOADS_MB"
# Defaults in MB. 100: Streamlit holds an upload in the server's memory while the visitor keeps it. 1,000 unpacked:
# members are read one at a time and only small PNGs are written, so this bounds decompression time, not memory.
# 500 stored: all uploads together, as small PNGs (1–12 KB each), tens of thousands of images.
UPLOAD_MB, UNPACKED_MB, STORED_MB = 100, 1000, 500
MAX_RATIO = 100  # deflate packs up to ~1,000:1 (a zip bomb); photos and PNGs barely shrink, BMPs a few times
RATIO_FLOOR = 2**20  # the ratio counts past 1 MB unpacked: a tiny file that shrinks a lot harms nobody
MAX_ENTRIES = 20_000  # files and folders in one zip (a bomb of many empty entries costs time, not bytes)
MAX_CLASSES = 100  # more do not fit a confusion matrix or a class picker
MAX_NAME = 60  # characters in a class name (it labels charts)
MIN_TRAIN, MIN_TEST = 4, 1  # per class: a few images to learn from and at least one to test on
MIN_PER_CLASS = MIN_TRAIN + MIN_TEST  # a class split here: 20% of 5 is its 1 test image
TEST_FRACTION = 0.2
# the only decoders Pillow may use (never EPS's Ghostscript, say); "JPEG" also opens phones' MPO, at its first frame
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
JUNK = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}  # what computers add to a zip by themselves
MAX_PHOTOS = 300  # camera photos one visitor collects (kept in their session until written)
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Limits:
    """Bytes an upload may have: the zip itself, everything in it unpacked, all uploads stored on the server."""

    upload: int = UPLOAD_MB * 2**20
    unpacked: int = UNPACKED_MB * 2**20
    stored: int = STORED_MB * 2**20


@dataclass(frozen=True)
class UploadedImages:
    """An image folder written from an upload: where it is, its dataset name, what it holds, what was left out."""

    folder: Path
    dataset: str  # "folder:uploads/<hash>", relative to the visitor-readable folder, so a link works on any server
    train_counts: dict[str, int]  # class → images, in class order
    test_counts: dict[str, int]
    split_here: bool  # the test images were set aside here (a <class>/ layout, or photos)
    notes: tuple[str, ...]  # what was left out or changed, in sentences

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.train_counts)


@dataclass
class _Found:
    """One image decoded: its split (None: to be split here), class, place in the upload, the image to store and
    whether it was shrunk."""

    split: str | None
    label: str
    order: str
    image: Image.Image
    shrunk: bool


def _few(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _mb(size: int) -> str:
    megabytes = size / 2**20
    return f"{megabytes:,.0f} MB" if megabytes >= 10 else f"{megabytes:.2g} MB"


def small_image(raw: bytes) -> tuple[Image.Image, bool]:
    """Bytes → the image a folder keeps: grey or RGB (transparency on white, phones' rotation applied), up to 64 px
    as it is, else a 32×32 centre square; and whether it was shrunk. ValueError (a short reason) for anything Pillow
    should not or cannot open."""
    try:  # Pillow's own bomb warning (89 Mpx) is never reached: MAX_PIXELS (40 Mpx) is checked before decoding
        image = Image.open(io.BytesIO(raw), formats=FORMATS)
        pixels = image.width * image.height
        if pixels <= MAX_PIXELS:
            grey = image.mode in GREY_MODES
            image.draft(image.mode, (4 * FOLDER_IMAGE_SIZE,) * 2)  # a JPEG decodes at 1/2–1/8 size: 10× faster
            image.load()
            image = to_rgb(image)[0]
    except Image.DecompressionBombError as err:
        raise ValueError("too many pixels to open safely") from err
    except Exception as err:  # Pillow raises many kinds for broken or hostile files
        log.info("a file is not an image Pillow can open (%s)", said(err))
        raise ValueError("not an image LayerLens can open") from err
    if pixels > MAX_PIXELS:
        raise ValueError(f"{image.width}×{image.height} pixels, too many to open safely")
    image = image.convert("L") if grey else image
    if max(image.size) <= KEEP_SIZE:
        return image, False
    return centre_square(image, FOLDER_IMAGE_SIZE), True  # as load_folder squares a big image


def _check_name(name: str, info: zipfile.ZipInfo) -> PurePosixPath:
    """The entry's path, refused when it could lead out of the folder it is unpacked into or is no plain file."""
    path = name.replace("\\", "/")  # zips made on Windows may use backslashes
    shown = path if len(path) <= 80 else path[:79] + "…"
    if path.startswith("/") or re.match(r"[A-Za-z]:", path) or ".." in path.split("/"):
        raise ValueError(f"The zip holds '{shown}', a path that leads outside the zip's own folder, so LayerLens "
                         f"refuses it: zip the image folder again with your computer's own Compress command.")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ValueError(f"The zip holds a file name with control characters ({shown!r}), so LayerLens refuses it: "
                         f"rename that file and zip the folder again.")
    if info.flag_bits & 0x1:
        raise ValueError(f"The zip is password-protected ('{shown}' is encrypted): zip the images again without a "
                         f"password.")
    mode = info.external_attr >> 16  # Unix permissions and file type, when the zip was made on Unix
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
        raise ValueError(f"The zip holds {kind} ('{shown}'), which LayerLens never unpacks: zip the images "
                         f"themselves (not links to them) and upload again.")
    return PurePosixPath(path)


def _bomb(unpacked: int, packed: int) -> bool:
    """Whether unpacked bytes from packed ones look like a zip bomb (past RATIO_FLOOR, more than MAX_RATIO × smaller)."""
    return unpacked > RATIO_FLOOR and unpacked > MAX_RATIO * max(packed, 1)


def _bomb_sentence(what: str, unpacked: int, packed: int) -> str:
    return (f"{what} unpacks to {_mb(unpacked)} from {_mb(max(packed, 1))}, more than "
            f"{MAX_RATIO} times its size, as zip bombs do (images barely shrink in a zip), so LayerLens refuses it: "
            f"zip the image files themselves and upload again.")


def _too_big_sentence(unpacked: int, limits: Limits) -> str:
    return (f"The zip unpacks to {_mb(unpacked)}; this server unpacks up to {_mb(limits.unpacked)} "
            f"({UNPACKED_SETTING}): upload fewer or smaller images, or ask the teacher to raise it.")


class _Counted:
    """Bytes unpacked so far, checked against the limits as they come (declared sizes can lie)."""

    def __init__(self, limits: Limits, packed: int):
        self.limits, self.packed, self.total = limits, packed, 0

    def read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
        chunks, size = [], 0
        with archive.open(info) as member:
            while chunk := member.read(2**16):
                size += len(chunk)
                self.total += len(chunk)
                if size > info.file_size:
                    raise ValueError(f"'{name}' holds more bytes than the zip declares for it, so the zip is damaged "
                                     f"or made to mislead: zip the images again and upload the new zip.")
                if self.total > self.limits.unpacked:
                    raise ValueError(_too_big_sentence(self.total, self.limits))
                if _bomb(size, info.compress_size):
                    raise ValueError(_bomb_sentence(f"'{name}'", size, info.compress_size))
                if _bomb(self.total, self.packed):
                    raise ValueError(_bomb_sentence("The zip", self.total, self.packed))
                chunks.append(chunk)
        return b"".join(chunks)


def _classes(paths: list[PurePosixPath]) -> list[tuple[str | None, str] | None]:
    """(split, class) of each image path: split None when the zip is not split into train/ and test/, None for an
    image in no class folder. Folders that wrap everything (a zipped 'animals/' folder, or train/ alone) are looked
    through; whatever lies deeper than a class folder belongs to that class."""
    parts = [p.parts for p in paths]
    while parts and all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    tops = {p[0] for p in parts if len(p) >= 2}
    splits = {t for t in tops if t.lower() in SPLITS}
    if splits and tops - splits:
        raise ValueError(f"The zip mixes train/ and test/ with other folders ({_few(sorted(tops - splits))}): use "
                         f"either train/<class>/ and test/<class>/, or just one folder per class, and upload again.")
    if splits:
        both = {s.lower() for s in splits} == set(SPLITS)
        return [((p[0].lower() if both else None), p[1]) if len(p) >= 3 else None for p in parts]
    return [(None, p[0]) if len(p) >= 2 else None for p in parts]


def folder_from_zip(data: bytes, root: Path, limits: Limits = Limits(),
                    on_progress: Callable[[int, int], None] | None = None) -> UploadedImages:
    """Check an uploaded zip of train/<class>/… and test/<class>/… (or <class>/…, split here) and write its images
    as a folder dataset under root/uploads/. on_progress(done, total) after each image."""
    if len(data) > limits.upload:
        raise ValueError(f"This file is {_mb(len(data))}; this server takes zips up to {_mb(limits.upload)} "
                         f"({UPLOAD_SETTING}): upload fewer or smaller images, or ask "
                         f"the teacher to raise it.")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ValueError("This file is not a .zip archive: put the images in one folder per class, compress those "
                         "folders into a .zip (right-click → Compress) and upload that.")
    notes: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES:
                raise ValueError(f"The zip holds {len(infos):,} entries; LayerLens reads up to {MAX_ENTRIES:,}: "
                                 f"upload fewer images.")
            files, junk, others = [], 0, []
            for info in infos:
                path = _check_name(info.filename, info)
                if info.is_dir():
                    continue
                if any(part in JUNK or part.startswith(".") for part in path.parts):
                    junk += 1
                elif path.suffix.lower() in IMAGE_SUFFIXES:
                    files.append((path, info))
                else:
                    others.append(str(path))
            declared = sum(info.file_size for info in infos)
            if declared > limits.unpacked:
                raise ValueError(_too_big_sentence(declared, limits))
            if _bomb(declared, len(data)):
                raise ValueError(_bomb_sentence("The zip", declared, len(data)))
            for path, info in files:
                if _bomb(info.file_size, info.compress_size):
                    raise ValueError(_bomb_sentence(f"'{path}'", info.file_size, info.compress_size))
            if junk:
                notes.append(f"Left out {plural(junk, 'file')} that computers add by themselves (__MACOSX/, "
                             f".DS_Store, hidden files).")
            if others:
                what = "is not an image" if len(others) == 1 else "are not images"
                notes.append(f"Left out {plural(len(others), 'file')} that {what} ({_few(others)}): LayerLens reads "
                             f"PNG, JPEG, BMP, GIF and WebP.")
            if not files:
                found = f" (it holds {_few(others)})" if others else ""
                raise ValueError(f"The zip holds no images{found}: put PNG or JPEG images in one folder per class, "
                                 f"zip those folders and upload again.")
            found = _read_images(archive, files, len(data), limits, notes, on_progress)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError,
            UnicodeDecodeError) as err:
        log.info("refused an uploaded zip that could not be read (%s)", said(err))
        raise ValueError(f"The zip could not be read ({said(err)}): it may be damaged or cut short, or use a "
                         f"compression LayerLens cannot unpack; zip the images again and upload the new zip.") from err
    return _write(found, root, limits, notes)


def _read_images(archive: zipfile.ZipFile, files: list, packed: int, limits: Limits, notes: list[str],
                 on_progress: Callable[[int, int], None] | None) -> list[_Found]:
    """Every image of the zip decoded into what the folder keeps, with its split and class; notes what was left out."""
    where = _classes([path for path, _ in files])
    counted, found, loose, broken, huge = _Counted(limits, packed), [], [], [], []
    for i, ((path, info), place) in enumerate(zip(files, where)):
        if place is None:
            loose.append(str(path))
        elif len(place[1]) > MAX_NAME:
            raise ValueError(f"The folder name '{place[1][:MAX_NAME]}…' is longer than {MAX_NAME} characters: give "
                             f"each class folder a short name (it labels the charts) and upload again.")
        elif info.file_size > MAX_UPLOAD_BYTES:
            huge.append(str(path))
        else:
            raw = counted.read(archive, info, str(path))
            try:
                found.append(_Found(place[0], place[1], str(path), *small_image(raw)))
            except ValueError as err:
                broken.append(f"{path} ({err})")
        if on_progress is not None:
            on_progress(i + 1, len(files))
    if loose:
        notes.append(f"Left out {plural(len(loose), 'image')} in no class folder ({_few(loose)}): put every image "
                     f"in the folder of its class.")
    if huge:
        notes.append(f"Left out {plural(len(huge), 'image')} over {MAX_UPLOAD_BYTES // 2**20} MB ({_few(huge)}).")
    if broken:
        notes.append(f"Left out {plural(len(broken), 'file')} that could not be opened as images: {_few(broken)}.")
    if not found and loose:
        raise ValueError("The zip's images are in no class folder: put the images of each class in a folder named "
                         "after it (cat/, dog/), zip those folders and upload again.")
    if not found:
        raise ValueError("None of the zip's images could be opened: save them again as PNG or JPEG, zip them and "
                         "upload again.")
    return found


def stored_photo(raw: bytes) -> bytes:
    """A camera photo as its folder will keep it (see small_image), as PNG bytes: what a visitor's session holds
    (a few KB, not the photo) and what the page shows as "what the network sees"."""
    out = io.BytesIO()
    small_image(raw)[0].save(out, format="PNG")
    return out.getvalue()


def check_class_name(label: str) -> str:
    """The class name, stripped; ValueError in one sentence for a name a folder cannot have (checked as the teacher
    types it, so that no photo is taken under it)."""
    label = label.strip()
    if not label:
        raise ValueError("A photo has no class name: type a name for every class, then take its photos.")
    if "/" in label or "\\" in label or label.startswith(".") or len(label) > MAX_NAME \
            or any(ord(c) < 32 for c in label):
        raise ValueError(f"'{label[:MAX_NAME]}' can't be a class name: use up to {MAX_NAME} letters, digits and "
                         f"spaces, without '/' or '\\' and not starting with a dot.")
    return label


def folder_from_photos(photos: Iterable[tuple[str, bytes]], root: Path, limits: Limits = Limits()) -> UploadedImages:
    """Write photos, (class name, image bytes) in the order taken, as a folder dataset under root/uploads/ (20% of
    each class set aside for testing)."""
    found, broken = [], []
    for i, (label, raw) in enumerate(photos):
        label = check_class_name(label)
        try:
            found.append(_Found(None, label, f"{i:06d}", *small_image(raw)))
        except ValueError as err:
            broken.append(f"photo {i + 1} of '{label}' ({err})")
    notes = [f"Left out {plural(len(broken), 'photo')} that could not be opened: {_few(broken)}."] if broken else []
    if not found:
        raise ValueError("There are no photos yet: name two or more classes and take a few photos of each.")
    return _write(found, root, limits, notes)


def _check_classes(found: list[_Found]) -> None:
    """Refuse one class, too many, or too few images in a class (with what to add)."""
    classes = sorted({f.label for f in found})
    if len(classes) < 2:
        raise ValueError(f"There is only one class ('{classes[0]}'): a network learns to tell classes apart, so add "
                         f"a second class (another folder of images, or photos of something else).")
    if len(classes) > MAX_CLASSES:
        raise ValueError(f"There are {len(classes):,} classes; LayerLens takes up to {MAX_CLASSES}: merge or leave "
                         f"out some.")
    if found[0].split is None:
        counts = Counter(f.label for f in found)
        few = sorted(c for c in classes if counts[c] < MIN_PER_CLASS)
        if few:
            raise ValueError(f"'{few[0]}' has {plural(counts[few[0]], 'image')}; every class needs at least "
                             f"{MIN_PER_CLASS} ({MIN_TRAIN} to learn from and {MIN_TEST} to test on), and 20 or more "
                             f"work better: add images of {_few([f'{c!r}' for c in few])}.")
        return
    counts = {split: Counter(f.label for f in found if f.split == split) for split in SPLITS}
    unknown = sorted(set(counts["test"]) - set(counts["train"]))
    if unknown:
        raise ValueError(f"test/ has {_few([f'{c!r}' for c in unknown])}, which train/ lacks: add training images "
                         f"of it, or leave it out of test/.")
    for split, least in (("train", MIN_TRAIN), ("test", MIN_TEST)):
        few = sorted(c for c in classes if counts[split][c] < least)
        if few:
            raise ValueError(f"'{few[0]}' has {plural(counts[split][few[0]], 'image')} in {split}/; every class "
                             f"needs at least {MIN_TRAIN} in train/ and {MIN_TEST} in test/: add images there, or "
                             f"upload the class folders without train/ and test/ so LayerLens splits them.")


def _split(found: list[_Found]) -> dict[str, dict[str, list[_Found]]]:
    """split → class → images, in the order given; a <class>/ layout is split here, seeded and stratified."""
    if found[0].split is None:
        labels = np.array([f.label for f in found])
        train, test = stratified_split(labels, TEST_FRACTION)  # 20% of every class (≥ 1: MIN_PER_CLASS is 5)
        for positions, split in ((train, "train"), (test, "test")):
            for p in sorted(positions):
                found[p].split = split
    grouped: dict[str, dict[str, list[_Found]]] = {split: {} for split in SPLITS}
    for f in found:
        grouped[f.split].setdefault(f.label, []).append(f)
    return grouped


def _stored_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _write(found: list[_Found], root: Path, limits: Limits, notes: list[str]) -> UploadedImages:
    """Write the images under root/uploads/<hash of their pixels>/, atomically; the same images, the same folder."""
    _check_classes(found)
    split_here = found[0].split is None
    found = sorted(found, key=lambda f: (f.label, f.order))  # the order a zip lists its files in does not count
    grouped = _split(found)
    root = Path(root).resolve()
    uploads = root / UPLOADS
    partial = uploads / f".partial-{uuid.uuid4().hex}"  # hidden, and never a dataset: no train/ and test/ yet
    try:
        uploads.mkdir(parents=True, exist_ok=True)
        if _stored_bytes(uploads) > limits.stored:
            raise ValueError(f"The server's folder of uploaded images ({uploads}) is full ({_mb(limits.stored)}, "
                             f"{STORED_SETTING}): ask the teacher to delete old uploads there or raise it.")
        digest = hashlib.sha256(f"{FOLDER_IMAGE_SIZE}|{KEEP_SIZE}".encode())
        for split in SPLITS:
            for label, images in sorted(grouped[split].items()):
                folder = partial / split / label
                if folder.resolve().parent != (partial / split).resolve():  # class names were checked: never
                    raise ValueError(f"'{label}' can't be a folder name: rename that class and upload again.")
                folder.mkdir(parents=True)
                for i, f in enumerate(images):
                    digest.update(f"{split}/{label}/{i}:{f.image.mode}:{f.image.size}|".encode())
                    digest.update(f.image.tobytes())
                    f.image.save(folder / f"{i:04d}.png", format="PNG")
        final = uploads / digest.hexdigest()[:16]
        if not final.is_dir():
            try:
                partial.rename(final)
            except OSError:
                if not final.is_dir():  # else another visitor's identical upload got there first: the same folder
                    raise
    except OSError as err:
        log.warning("could not write an uploaded image folder in %s (%s)", uploads, said(err))
        why = "that folder is not writable" if not_writable(err) else said(err)
        raise ValueError(f"LayerLens could not write the images to {uploads} ({why}): ask the teacher to let the "
                         f"server write there, or to set LAYERLENS_FOLDERS to a folder it can write.") from err
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if split_here:
        notes.append(f"LayerLens set aside {TEST_FRACTION:.0%} of each class's images (at least one) as test "
                     f"images, which the network never learns from: its test accuracy is measured on them.")
    if any(f.shrunk for f in found):
        notes.append(f"Images bigger than {KEEP_SIZE} px were cropped to their centre square and shrunk to "
                     f"{FOLDER_IMAGE_SIZE}×{FOLDER_IMAGE_SIZE} pixels: that is all the network sees of them.")
    counts = {split: {label: len(images) for label, images in sorted(grouped[split].items())} for split in SPLITS}
    log.info("wrote an uploaded image folder %s: %s", final, counts)
    return UploadedImages(final, f"{FOLDER_PREFIX}{UPLOADS}/{final.name}", counts["train"], counts["test"],
                          split_here, tuple(notes))


def suggested_training(train_images: int, max_epochs: int = 30) -> dict[str, int]:
    """Batch size and epochs for a folder of the class's own images: about 300 steps of small batches (a preset's few
    epochs are only a handful of steps on 50 images), and never fewer than twice FEW_UPDATES, the fewest steps a
    network learns from, however few the images (smaller batches, then)."""
    batch = 16 if train_images < 1000 else 64
    while batch > 2 and math.ceil(train_images / batch) * max_epochs < 2 * FEW_UPDATES:
        batch //= 2
    batches = math.ceil(max(train_images, 1) / batch)
    return dict(batch_size=batch, epochs=min(max_epochs, max(4, math.ceil(300 / batches))))
