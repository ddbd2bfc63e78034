"""Image files as dlx reads them: any damage or an absurd size is one line naming the file, never a traceback."""
from __future__ import annotations

import warnings
from pathlib import Path

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

