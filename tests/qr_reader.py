"""QR codes read as an authenticator app reads them: zxing-cpp's decoder over the pixels a
browser drew, the blocks a terminal printed, or the modules of an SVG drawn by segno."""

from __future__ import annotations

import base64
import io
import re
from urllib.parse import unquote

import numpy as np
import zxingcpp
from PIL import Image

PIXELS_PER_MODULE = 6
QUIET_ZONE = 4  # modules of light margin a reader needs around the code
# segno's compact terminal output: two module rows per line, light modules printed as ink.
TOP_LIGHT = frozenset("█▀")
BOTTOM_LIGHT = frozenset("█▄")
SVG_SIZE = re.compile(r"width=['\"](\d+)['\"].*?scale\((\d+)\)", re.S)
# The stroked path draws the dark modules (a filled one, when there is one, the background).
SVG_PATH = re.compile(r"<path[^>]*\sstroke=[^>]*\sd=['\"]([^'\"]+)['\"]")
PATH_STEP = re.compile(r"([Mmh])(-?[\d.]+)(?:\s(-?[\d.]+))?")


def decode(image: Image.Image | np.typing.NDArray[np.uint8]) -> str:
    """The text of the one QR code in the image."""
    # Dark modules on light ground only, as printed: an inverted code is not read.
    qr_only = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    found = zxingcpp.read_barcodes(image, formats=qr_only, try_invert=False)
    assert len(found) == 1, f"{len(found)} QR codes found"
    return str(found[0].text)


def from_png(png: bytes) -> str:
    return decode(Image.open(io.BytesIO(png)).convert("L"))


def _image(dark: np.typing.NDArray[np.bool_]) -> np.typing.NDArray[np.uint8]:
    """Modules (True: dark) as a grey image with a quiet zone, a few pixels a module."""
    bordered = np.pad(dark, QUIET_ZONE, constant_values=False)
    grey = np.where(bordered, 0, 255).astype(np.uint8)
    block = np.ones((PIXELS_PER_MODULE, PIXELS_PER_MODULE), dtype=np.uint8)
    return np.kron(grey, block).astype(np.uint8)


def from_terminal(text: str) -> str:
    """The code printed by segno's ``terminal(compact=True)``, among other lines of text."""
    lines = [line for line in text.splitlines() if line and set(line) <= {*TOP_LIGHT, " ", "▄"}]
    assert lines, "no QR code printed"
    width = max(len(line) for line in lines)
    rows: list[list[bool]] = []
    for line in lines:
        padded = line.ljust(width, "█")
        rows.append([c not in TOP_LIGHT for c in padded])
        rows.append([c not in BOTTOM_LIGHT for c in padded])
    return decode(_image(np.array(rows, dtype=bool)))


def from_svg(svg: str) -> str:
    """The code of segno's SVG: its path draws each row's dark modules as horizontal runs."""
    size = SVG_SIZE.search(svg)
    path = SVG_PATH.search(svg)
    assert size, svg[:200]
    assert path, svg[:200]
    modules = int(size[1]) // int(size[2])
    dark = np.zeros((modules, modules), dtype=bool)
    x = y = 0.0
    for command, first, second in PATH_STEP.findall(path[1]):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            run = int(float(first))
            dark[int(y), int(x) : int(x) + run] = True
            x += run
    return decode(_image(dark))


def from_data_uri(uri: str) -> str:
    """The code of an ``<img src="data:image/svg+xml...">``."""
    header, _, data = uri.partition(",")
    assert header.startswith("data:image/svg+xml"), header
    svg = base64.b64decode(data).decode() if header.endswith(";base64") else unquote(data)
    return from_svg(svg)
