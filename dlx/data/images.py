"""Image files as dlx reads them: any damage or an absurd size is one line naming the file, never a traceback."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from dlx.errors import DlxError


def open_image(path: Path | str, what: str) -> Image.Image:
    """The decoded image at `path`. An image whose header claims more than PIL's pixel limit (about 89 million,
    its decompression-bomb guard) is refused from that header, before any pixel is decoded; one that cannot be
    decoded is refused too, each in one line starting with `what`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                opened.load()  # the pixels are in memory: the image outlives the closed file
                return opened
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise DlxError(f"{what}: cannot read it as an image ({reason})") from None



GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}  # a palette or RGB file is grey when its channels agree
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def read_pixels(path: Path | str, in_shape: tuple[int, ...], what: str) -> np.ndarray:
    """An image file as a model of input shape (C, H, W) takes it, like the run's datasets: resized to (H, W), grey or
    RGB as the model takes, pixels scaled to [0, 1]. Returns (C, H, W) float32, not standardised."""
    channels, height, width = in_shape
    opened = open_image(path, what)  # over PIL's pixel limit (about 89 million) refused, not decoded
    grey_file = opened.mode in GREY_MODES
    if channels == 1 and grey_file:  # decoded as it is stored: no RGB copy of a grey image
        image = opened if opened.mode == "L" else opened.convert("L")
    elif channels in (1, 3):
        image = opened.convert("RGB")
    else:
        raise DlxError(f"{what}: this run's model takes {channels}-channel images; image files can only feed grey (1) "
                       f"or RGB (3) models")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if channels == 1 and pixels.shape[-1] == 3:
        if not np.all(pixels == pixels[..., :1]):
            raise DlxError(f"{what}: a colour image, but this run's model takes grey images (1 channel); convert it "
                           f"to greyscale first")
        pixels = pixels[..., :1]
    elif channels == 3 and grey_file:
        raise DlxError(f"{what}: a greyscale image, but this run's model takes colour images (3 channels); save it as "
                       f"RGB first")
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))
