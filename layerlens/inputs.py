"""A visitor's own input: uploads checked and decoded, drawings and photos prepared like the dataset's images."""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .data import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from .nets import NetConfig

MAX_UPLOAD_BYTES = MAX_IMAGE_BYTES  # one uploaded image: the same limits as an image of a folder
MAX_PIXELS = MAX_IMAGE_PIXELS
MAX_ASPECT = 20  # longer than this for its width is a line, not a picture (and is drawn 0 pixels wide, scaled down)
FORMATS = ("PNG", "JPEG", "MPO", "WEBP")  # MPO: the JPEG many phone cameras write, with extra frames after the photo
DIGIT_BOX, DIGIT_SIZE = 20, 28  # MNIST: the digit scaled into 20×20, centred by mass in 28×28


def read_upload(data: bytes, name: str = "the file") -> tuple[Image.Image, list[str]]:
    """Decode an uploaded PNG, JPEG (a phone's MPO: its first frame) or WebP into an RGB image, plus notes on what
    was converted.

    Raises ValueError, with what is wrong and what to do, for anything that is not a usable still image.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name} is {len(data) / 2**20:.0f} MB; upload an image under "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(f"{name} is {image.width}×{image.height} pixels, too large to open safely; "
                                 "upload a smaller image.")
            if image.format not in FORMATS:
                raise ValueError(f"{name} is a {image.format} image; upload a PNG or JPEG (or WebP).")
            if getattr(image, "n_frames", 1) > 1 and image.format != "MPO":  # an MPO's first frame is the photo
                raise ValueError(f"{name} is animated ({image.n_frames} frames); upload a still image.")
            width, height = image.size
            if max(width, height) > MAX_ASPECT * min(width, height):
                raise ValueError(f"{name} is {width}×{height} pixels, a line rather than a picture; upload an image "
                                 f"at most {MAX_ASPECT} times as long as it is wide.")
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        if isinstance(err, UnidentifiedImageError):
            raise ValueError(f"{name} is not an image LayerLens can read; upload a PNG or JPEG.") from None
        raise ValueError(f"{name} is too large to open safely; upload a smaller image.") from None
    except (OSError, SyntaxError):  # truncated or damaged data
        raise ValueError(f"{name} looks damaged (cut short or corrupted) and cannot be decoded; upload it again "
                         "or another image.") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """Any PIL mode → RGB, with a note for every conversion a person should know about."""
    notes = []
    if image.mode == "CMYK":
        notes.append("It was a print (CMYK) image: converted to screen colours (RGB).")
    elif image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"It had {'16-bit' if image.mode.startswith('I;16') else '32-bit'} grey levels: scaled to "
                     "the usual 256.")
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = arr.min(), arr.max()
        image = Image.fromarray(((arr - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        notes.append("Its transparent parts were filled with white.")
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    image = ImageOps.exif_transpose(image) if image.mode != "RGBA" else image  # phones store rotation apart
    return image.convert("RGB"), notes


def _border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def prepare_digit(grey: np.ndarray) -> torch.Tensor:
    """A drawn or photographed digit (H, W) in [0, 1] → (1, 28, 28) like MNIST.

    Light backgrounds are inverted (MNIST is white ink on black), the ink is cropped, scaled to fit 20×20
    and placed so that its centre of mass is the image centre.
    """
    grey = np.asarray(grey, dtype=np.float32)
    if _border(grey).mean() > 0.5:  # dark ink on light paper
        grey = 1.0 - grey
    grey = np.clip(grey - np.median(_border(grey)), 0, 1)  # the paper becomes exactly 0
    if grey.max() < 0.1:
        raise ValueError("There is no digit to read: the drawing (or photo) is empty. Draw a digit first.")
    rows, cols = np.nonzero(grey > 0.1 * grey.max())
    ink = grey[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = DIGIT_BOX / max(ink.shape)
    h, w = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
    small = np.asarray(Image.fromarray((ink / ink.max() * 255).astype(np.uint8)).resize((w, h), Image.LANCZOS),
                       dtype=np.float32) / 255
    ys, xs = np.mgrid[:h, :w]
    mass = small.sum()
    cy, cx = (ys * small).sum() / mass, (xs * small).sum() / mass
    top = int(np.clip(round(DIGIT_SIZE / 2 - 0.5 - cy), 0, DIGIT_SIZE - h))
    left = int(np.clip(round(DIGIT_SIZE / 2 - 0.5 - cx), 0, DIGIT_SIZE - w))
    out = np.zeros((DIGIT_SIZE, DIGIT_SIZE), dtype=np.float32)
    out[top:top + h, left:left + w] = small
    return torch.from_numpy(out)[None]


def prepare_photo(image: Image.Image, size: int, channels: int, dark_background: bool) -> torch.Tensor:
    """A photo → (channels, size, size) in [0, 1]: centre-cropped square, resized; grey ones inverted when the
    dataset's objects sit on black but the photo's background is light."""
    square = ImageOps.fit(image, (size, size), Image.LANCZOS)
    arr = np.asarray(square.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255
    if channels == 1:
        if dark_background and _border(arr).mean() > 0.5:
            arr = 1.0 - arr
        return torch.from_numpy(arr)[None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def network_input(photo: Image.Image, net: NetConfig, digits: bool) -> torch.Tensor:
    """A photo or drawing as the network's input: prepared like MNIST for a digit model, else centre-cropped and
    resized (and, for grey datasets of objects on black, inverted when its background is light)."""
    if digits:
        return prepare_digit(np.asarray(photo.convert("L"), dtype=np.float32) / 255)
    return prepare_photo(photo, net.image_size, net.in_channels, dark_background=net.in_channels == 1)


def canvas_image(rgba: np.ndarray | None) -> Image.Image | None:
    """The drawing canvas's pixels (H, W, 4) as a grey image; None while nothing is drawn."""
    if rgba is None or rgba[..., :3].max() == 0:
        return None
    return Image.fromarray(rgba[..., :3].mean(axis=2).astype(np.uint8))
