"""The class's own images: real zips (and camera photos) of real PNGs and JPEGs, written as folder datasets, and
every upload LayerLens refuses, each with a sentence and nothing written."""
from __future__ import annotations

import io
import re
import stat
import struct
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerlens.data import load_dataset
from layerlens.training import FEW_UPDATES
from layerlens.uploads import (MAX_ENTRIES, MIN_PER_CLASS, UPLOADS, Limits, folder_from_photos, folder_from_zip,
                               small_image, suggested_training)


def picture(label: int, seed: int, size=(12, 12), colour: bool = False, kind: str = "PNG") -> bytes:
    """A small image of class `label` (a bright bar whose position says the class) with noise, as file bytes."""
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = rng.integers(0, 60, (height, width)).astype(np.uint8)
    pixels[:, (label * width) // 4:(label * width) // 4 + max(1, width // 8)] = 230
    image = Image.fromarray(np.stack([pixels, pixels // 2, 255 - pixels], axis=2) if colour else pixels)
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


def zipped(entries) -> bytes:
    """A real zip of entries: (name or ZipInfo, bytes) pairs, or a dict name → bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (entries.items() if isinstance(entries, dict) else entries):
            archive.writestr(name, data)
    return out.getvalue()


def class_folders(classes=("bar", "dot", "line"), per_class: int = 10, prefix: str = "", **kw) -> dict[str, bytes]:
    return {f"{prefix}{name}/{i:03d}.png": picture(c, 100 * c + i, **kw)
            for c, name in enumerate(classes) for i in range(per_class)}


@pytest.fixture
def root(tmp_path) -> Path:
    """The visitor-readable folder (LAYERLENS_FOLDERS), inside tmp_path so that writes elsewhere would show."""
    folder = tmp_path / "allowed"
    folder.mkdir()
    return folder


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


def test_class_folders_are_split_into_train_and_test_and_load_as_a_dataset(root):
    uploaded = folder_from_zip(zipped(class_folders(per_class=10)), root)
    assert uploaded.classes == ("bar", "dot", "line")
    assert uploaded.train_counts == {"bar": 8, "dot": 8, "line": 8}  # 20% of each class set aside
    assert uploaded.test_counts == {"bar": 2, "dot": 2, "line": 2}
    assert uploaded.split_here and any("set aside 20%" in note for note in uploaded.notes)
    assert uploaded.folder.parent == root / UPLOADS and uploaded.dataset == f"folder:uploads/{uploaded.folder.name}"
    data = load_dataset(uploaded.dataset, folders=root)  # the Train page's way in, by the name a link carries
    assert data.classes == ("bar", "dot", "line")
    assert (len(data.x_train), len(data.x_test), data.channels, data.image_size) == (24, 6, 1, 12)  # small: kept


def test_a_wrapped_train_test_zip_keeps_its_split_and_leaves_out_junk_and_non_images(root):
    pets = ("cat", "dog")
    train = {f"animals/train/{name}/{i:03d}.jpg": picture(c, i, size=(200, 150), colour=True, kind="JPEG")
             for c, name in enumerate(pets) for i in range(6)}
    test = {f"animals/test/{name}/{i:03d}.png": picture(c, 50 + i) for c, name in enumerate(pets) for i in range(2)}
    other = {"animals/README.txt": b"our pets", "__MACOSX/animals/train/cat/._000.jpg": b"\0\5\26\7",
             "animals/train/.DS_Store": b"\0\0\0\1Bud1", "animals/train/cat/broken.png": b"not a png at all"}
    uploaded = folder_from_zip(zipped({**train, **test, **other}), root)
    assert uploaded.train_counts == {"cat": 6, "dog": 6} and uploaded.test_counts == {"cat": 2, "dog": 2}
    assert not uploaded.split_here
    notes = " ".join(uploaded.notes)
    assert "2 files that computers add" in notes and "1 file that is not an image (animals/README.txt)" in notes
    assert "could not be opened as images: animals/train/cat/broken.png" in notes
    assert "shrunk to 32×32" in notes  # the 200×150 photos
    sizes = Counter(Image.open(p).size for p in files_under(uploaded.folder))
    assert sizes == {(32, 32): 12, (12, 12): 4}  # photos as a 32×32 centre square; small images as they are
    assert not any("README" in p.name or p.name.startswith(".") for p in files_under(uploaded.folder))
    data = load_dataset(uploaded.dataset, folders=root)
    assert data.channels == 3 and data.image_size == 32  # colour, and mixed sizes become 32×32 (load_folder's rule)


def test_the_same_images_land_in_the_same_folder_and_nothing_else_is_written(root, tmp_path):
    entries = class_folders(per_class=6)
    before = files_under(tmp_path)
    first = folder_from_zip(zipped(entries), root)
    again = folder_from_zip(zipped(reversed(list(entries.items()))), root)  # another zip of the same images
    assert again.folder == first.folder and again.dataset == first.dataset
    assert [p.name for p in (root / UPLOADS).iterdir()] == [first.folder.name]  # no half-written folder left
    new = files_under(tmp_path) - before
    assert new and all(p.is_relative_to(first.folder) for p in new)
    other = folder_from_zip(zipped(class_folders(per_class=7)), root)
    assert other.folder != first.folder  # other images, another folder


def test_a_folder_of_train_alone_is_split_here(root):
    uploaded = folder_from_zip(zipped(class_folders(("a", "b"), 5, "train/")), root)
    assert uploaded.split_here and uploaded.train_counts == {"a": 4, "b": 4} and uploaded.test_counts == {"a": 1, "b": 1}


def symlink_entry(name: str, target: str):
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def patched(data: bytes, name: str, field: str, value: int) -> bytes:
    """data with one field of `name`'s local header and central-directory record replaced (a zip that lies):
    "size" (uncompressed) or "flags"."""
    local, central, fmt = {"size": (22, 24, "<I"), "flags": (6, 8, "<H")}[field]
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        struct.pack_into(fmt, out, archive.getinfo(name).header_offset + local, value)
    start = 0
    while (start := out.find(b"PK\x01\x02", start + 1)) != -1:  # the central directory's record of name
        length = struct.unpack_from("<H", out, start + 28)[0]
        if out[start + 46:start + 46 + length] == name.encode():
            struct.pack_into(fmt, out, start + central, value)
    return bytes(out)


def huge_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A real, tiny PNG whose header claims width × height pixels (a decompression bomb for whoever decodes it)."""
    data = bytearray(picture(0, 0))
    struct.pack_into(">II", data, 16, width, height)  # IHDR's width and height
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # and its checksum
    return bytes(data)


ok = class_folders(("a", "b"), 6)
REFUSED = {
    "too big": (lambda: zipped(ok), dict(limits=Limits(upload=1000)), "this server takes zips up to 0.00095 MB (LAYERLENS_UPLOAD_MB)"),
    "not a zip": (lambda: picture(0, 0), {}, "not a .zip archive"),
    "parent path": (lambda: zipped({**ok, "../escape.png": picture(0, 1)}), {}, "'../escape.png', a path that "
                                                                                   "leads outside"),
    "deep parent path": (lambda: zipped({**ok, "a/../../escape.png": picture(0, 1)}), {}, "leads outside"),
    "windows parent path": (lambda: zipped({**ok, "a\\..\\..\\escape.png": picture(0, 1)}), {}, "leads outside"),
    "absolute path": (lambda: zipped({**ok, "/tmp/escape.png": picture(0, 1)}), {}, "'/tmp/escape.png', a path"),
    "drive letter": (lambda: zipped({**ok, "C:/escape.png": picture(0, 1)}), {}, "leads outside"),
    "symlink": (lambda: zipped([*ok.items(), symlink_entry("a/link.png", "/etc/passwd")]), {},
                "a symbolic link ('a/link.png')"),
    "non-images only": (lambda: zipped({"a/notes.txt": b"hello", "b/cv.pdf": b"%PDF-1.4"}), {},
                        "holds no images (it holds a/notes.txt, b/cv.pdf)"),
    "broken images only": (lambda: zipped({"a/1.png": b"nope", "b/1.jpg": b"nope"}), {}, "None of the zip's images"),
    "loose images": (lambda: zipped({"1.png": picture(0, 1), "2.png": picture(1, 1)}), {}, "are in no class folder"),
    "one class": (lambda: zipped(class_folders(("cat",), 10)), {}, "only one class ('cat')"),
    "one wrapped class": (lambda: zipped(class_folders(("cat",), 10, "pets/")), {}, "only one class ('cat')"),
    "too few per class": (lambda: zipped({**class_folders(("a",), 6), **class_folders(("b",), 3)}), {},
                          "'b' has 3 images; every class needs at least 5"),
    "too few to train": (lambda: zipped({**class_folders(("a", "b"), 2, "test/"), **class_folders(("a",), 6, "train/"),
                                         "train/b/000.png": picture(1, 0)}), {}, "'b' has 1 image in train/"),
    "no test images": (lambda: zipped({**class_folders(("a", "b"), 6, "train/"), **class_folders(("a",), 2, "test/")}),
                       {}, "'b' has 0 images in test/"),
    "test class not trained": (lambda: zipped({**class_folders(("a", "b"), 6, "train/"),
                                               **class_folders(("a", "b", "c"), 2, "test/")}), {}, "test/ has 'c'"),
    "mixed layouts": (lambda: zipped({**class_folders(("a", "b"), 6, "train/"), **class_folders(("c",), 6)}), {},
                      "mixes train/ and test/ with other folders (c)"),
    "long class name": (lambda: zipped(class_folders(("a", "b" * 80), 6)), {}, "longer than 60 characters"),
    "control characters": (lambda: zipped({**ok, "a/bell\a.png": picture(0, 1)}), {}, "control characters"),
    "encrypted": (lambda: patched(zipped({**ok, "a/secret.png": picture(0, 1)}), "a/secret.png", "flags", 1), {},
                  "password-protected"),
    "unpacked too big": (lambda: zipped(class_folders(("a", "b"), 40, size=(64, 64))),
                         dict(limits=Limits(unpacked=100_000)), "this server unpacks up to 0.095 MB (LAYERLENS_UNPACKED_MB)"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_every_bad_upload_gets_a_sentence_and_nothing_is_written(case, root, tmp_path):
    make, kwargs, expected = REFUSED[case]
    data = make()
    before = files_under(tmp_path)
    with pytest.raises(ValueError) as refused:
        folder_from_zip(data, root, **kwargs)
    message = str(refused.value)
    assert expected in message, message
    assert message.count(". ") == 0 and message.endswith("."), message  # one sentence
    assert files_under(tmp_path) == before
    assert not (root / UPLOADS).exists() or not any((root / UPLOADS).iterdir())  # no half-written folder either


def test_a_zip_bomb_is_refused_by_its_declared_size(root, tmp_path):
    bomb = {**ok, "a/flat.bmp": bytes(50 * 2**20)}  # 50 MB of zeros: deflate packs it ~1,000 times
    data = zipped(bomb)
    assert len(data) < 2**20
    with pytest.raises(ValueError, match="more than 100 times its size, as zip bombs do"):
        folder_from_zip(data, root)
    assert not files_under(tmp_path)


def test_a_zip_bomb_that_declares_small_sizes_is_refused_while_unpacking(root, tmp_path):
    data = patched(zipped({**ok, "a/flat.png": bytes(50 * 2**20)}), "a/flat.png", "size", 1000)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo("a/flat.png").file_size == 1000  # it lies: the declared sizes look harmless
    with pytest.raises(ValueError, match="damaged|misl"):
        folder_from_zip(data, root)
    assert not files_under(tmp_path)


def test_bytes_are_counted_while_unpacking_whatever_a_member_says(root, monkeypatch):
    """Declared sizes can lie and a zip library may trust them: LayerLens counts what it reads."""
    data = zipped(ok)
    opened = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **kw: io.BytesIO(bytes(2**21))
                        if getattr(info, "filename", info) == "a/000.png" else opened(self, info, *a, **kw))
    with pytest.raises(ValueError, match="'a/000.png' holds more bytes than the zip declares for it"):
        folder_from_zip(data, root)
    assert not (root / UPLOADS).exists()


def test_a_zip_bomb_of_many_entries_is_refused(root):
    with pytest.raises(ValueError, match=f"LayerLens reads up to {MAX_ENTRIES:,}"):
        folder_from_zip(zipped({f"a/{i}.png": b"" for i in range(MAX_ENTRIES + 1)}), root)


def test_an_image_bomb_is_left_out_with_a_note(root):
    uploaded = folder_from_zip(zipped({**ok, "a/huge.png": huge_png(8000, 8000)}), root)
    assert uploaded.train_counts["a"] + uploaded.test_counts["a"] == 6
    assert any("a/huge.png (8000×8000 pixels, too many to open safely)" in note for note in uploaded.notes)
    with pytest.raises(ValueError, match="too many pixels"):
        small_image(huge_png())  # past Pillow's own limit


def test_the_uploads_folder_has_a_bound(root):
    folder_from_zip(zipped(ok), root, limits=Limits(stored=1))  # the first fits: the folder was empty
    with pytest.raises(ValueError, match="is full"):
        folder_from_zip(zipped(class_folders(("a", "b"), 7)), root, limits=Limits(stored=1))


def test_camera_photos_make_a_folder_split_here(root):
    photos = [(name, picture(c, i, size=(640, 480), colour=True, kind="JPEG"))
              for c, name in enumerate(("thumbs up", "thumbs down")) for i in range(MIN_PER_CLASS)]
    uploaded = folder_from_photos(photos, root)
    assert uploaded.train_counts == {"thumbs down": 4, "thumbs up": 4}
    assert uploaded.test_counts == {"thumbs down": 1, "thumbs up": 1}
    assert folder_from_photos(photos, root).folder == uploaded.folder  # the same photos, the same folder
    data = load_dataset(uploaded.dataset, folders=root)
    assert data.classes == ("thumbs down", "thumbs up") and data.image_size == 32


@pytest.mark.parametrize("photos, expected", [
    ([("cat", picture(0, i, kind="JPEG")) for i in range(6)], "only one class ('cat')"),
    ([("cat", picture(0, i)) for i in range(6)] + [("dog", picture(1, i)) for i in range(2)], "'dog' has 2 images"),
    ([("../up", picture(0, i)) for i in range(6)], "'../up' can't be a class name"),
    ([(" ", picture(0, 1))], "has no class name"),
    ([], "no photos yet"),
])
def test_camera_photos_are_refused_with_a_sentence(photos, expected, root):
    with pytest.raises(ValueError, match=re.escape(expected)):
        folder_from_photos(photos, root)
    assert not files_under(root)


def test_small_folders_train_for_about_300_steps_of_small_batches():
    assert suggested_training(48) == dict(batch_size=8, epochs=30)  # 6 steps an epoch: the most epochs, 180 steps
    assert suggested_training(400) == dict(batch_size=16, epochs=12)  # 25 steps an epoch
    assert suggested_training(20_000) == dict(batch_size=64, epochs=4)  # big enough for a preset's few epochs
    for few in (8, 12, 30):  # the fewest a zip may hold: smaller batches, so that it still takes enough steps
        suggested = suggested_training(few)
        assert -(-few // suggested["batch_size"]) * suggested["epochs"] >= 2 * FEW_UPDATES, (few, suggested)


@pytest.mark.parametrize("suffix", [".jpg", ".mpo", ".webp"])
def test_phone_photos_in_a_zip_are_read_from_their_first_frame(root, suffix):
    """Many phone cameras write MPO (a JPEG followed by a second frame); some save WebP."""
    def photo(label: int, seed: int) -> bytes:
        first = Image.open(io.BytesIO(picture(label, seed, size=(40, 40), colour=True))).convert("RGB")
        out = io.BytesIO()
        if suffix == ".webp":
            first.save(out, format="WEBP", lossless=True)
        else:
            first.save(out, format="MPO", save_all=True, append_images=[Image.new("RGB", (40, 40), "blue")])
        return out.getvalue()

    uploaded = folder_from_zip(zipped({f"{name}/{i}{suffix}": photo(c, i) for c, name in enumerate(("a", "b"))
                                       for i in range(MIN_PER_CLASS)}), root)
    assert sum(uploaded.train_counts.values()) + sum(uploaded.test_counts.values()) == 2 * MIN_PER_CLASS
    data = load_dataset(uploaded.dataset, folders=root)
    assert data.x_train[:, 2].mean() > 0.5  # the first frame's blue (255 - noise), not the second frame's pure blue
    assert data.x_train[:, 0].std() > 0.05  # the bars and the noise of the first frame, not a flat second frame
