"""A visitor's own input: digit preprocessing on synthetic strokes, and every kind of bad upload."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from layerlens import inputs
from layerlens.inputs import prepare_digit, prepare_photo, read_upload


def stroke_canvas(size: int = 280, top: int = 30, left: int = 190, height: int = 80, width: int = 12) -> np.ndarray:
    """White ink on black: one upright bar, off-centre in the top right of a big canvas."""
    canvas = np.zeros((size, size), dtype=np.float32)
    canvas[top:top + height, left:left + width] = 1.0
    return canvas


def png(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(digit > 0.05)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[:digit.shape[0], :digit.shape[1]]
    return (ys * digit).sum() / digit.sum(), (xs * digit).sum() / digit.sum()


def test_a_stroke_anywhere_is_scaled_into_20_px_and_centred_by_mass_in_28():
    digit = prepare_digit(stroke_canvas())[0].numpy()
    assert digit.shape == (28, 28) and digit.min() >= 0 and digit.max() <= 1
    assert ink_box(digit)[0] in (20, 21)  # the longer side fills the 20-px box (resampling blurs one pixel)
    cy, cx = centre_of_mass(digit)
    assert abs(cy - 13.5) < 1 and abs(cx - 13.5) < 1


def test_a_tiny_stroke_is_enlarged_and_a_wide_one_keeps_its_shape():
    small = prepare_digit(stroke_canvas(top=10, left=10, height=8, width=4))[0].numpy()
    assert ink_box(small)[0] in (20, 21)
    wide = prepare_digit(stroke_canvas(top=100, left=20, height=20, width=200))[0].numpy()
    rows, cols = ink_box(wide)
    assert cols in (20, 21) and rows <= 4  # 200×20 → 20×2: the aspect ratio survives


def test_dark_ink_on_light_paper_is_inverted_to_match_mnist():
    light = 1.0 - stroke_canvas()
    assert np.allclose(prepare_digit(light), prepare_digit(stroke_canvas()), atol=1e-6)
    grey_paper = np.where(stroke_canvas() > 0, 0.1, 0.8).astype(np.float32)  # a photo: grey paper, dark ink
    digit = prepare_digit(grey_paper)[0].numpy()
    assert digit[0].max() == 0 and digit.max() == pytest.approx(1, abs=0.02)  # paper → black, ink → white


def test_an_empty_drawing_says_so():
    with pytest.raises(ValueError, match="empty"):
        prepare_digit(np.zeros((280, 280), dtype=np.float32))


def test_a_photo_becomes_the_models_size_and_grey_objects_on_white_are_inverted():
    photo = Image.new("RGB", (64, 48), (255, 255, 255))
    photo.paste((20, 20, 20), (20, 10, 44, 38))
    colour = prepare_photo(photo, 32, 3, dark_background=False)
    assert colour.shape == (3, 32, 32) and colour[:, 0, 0].tolist() == [1.0, 1.0, 1.0]
    grey = prepare_photo(photo, 28, 1, dark_background=True)
    assert grey.shape == (1, 28, 28) and grey[0, 0, 0] == 0 and grey[0, 14, 14] > 0.9


def test_a_good_png_and_jpeg_are_read_without_notes():
    for data in (png(Image.new("RGB", (30, 20), (10, 200, 30))), png(Image.new("L", (30, 20), 128), format="JPEG")):
        image, notes = read_upload(data)
        assert image.mode == "RGB" and image.size == (30, 20) and notes == []


@pytest.mark.parametrize("data, message", [
    (b"hello, this is not an image", "not an image LayerLens can read"),
    (png(Image.new("RGB", (40, 40), "red"))[:60], "damaged"),
    (png(Image.new("RGB", (40, 40), "red"), format="GIF"), "is a GIF image; upload a PNG or JPEG"),
    (png(Image.new("RGB", (40, 40), "red"), format="BMP"), "is a BMP image"),
])
def test_bad_uploads_get_a_sentence(data, message):
    with pytest.raises(ValueError, match=message):
        read_upload(data, "drawing.png")


def test_an_animated_png_is_refused():
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "blue", "green")]
    data = png(frames[0], save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ValueError, match="animated \\(3 frames\\); upload a still image"):
        read_upload(data)


def test_huge_uploads_are_refused_before_decoding(monkeypatch):
    data = png(Image.new("RGB", (300, 300), "white"))
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", len(data) - 1)
    with pytest.raises(ValueError, match="upload an image under"):
        read_upload(data)
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", 10 ** 9)
    monkeypatch.setattr(inputs, "MAX_PIXELS", 300 * 300 - 1)
    with pytest.raises(ValueError, match="300×300 pixels, too large"):
        read_upload(data)


def test_odd_modes_are_converted_and_explained():
    cmyk, notes = read_upload(png(Image.new("CMYK", (10, 10), (0, 255, 255, 0)), format="JPEG"))
    assert cmyk.mode == "RGB" and "CMYK" in notes[0]
    assert cmyk.getpixel((5, 5))[0] > 200 and cmyk.getpixel((5, 5))[1] < 60  # cyan-free, magenta+yellow: red
    deep = Image.fromarray(np.array([[0, 1000], [30000, 65535]], dtype=np.uint16))
    grey, notes = read_upload(png(deep))
    assert "16-bit" in notes[0] and grey.getpixel((0, 0)) == (0, 0, 0) and grey.getpixel((1, 1)) == (255,) * 3
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    filled, notes = read_upload(png(clear))
    assert "transparent" in notes[0] and filled.getpixel((0, 0)) == (255, 255, 255)
