"""Text drawn onto frames (``Recorder(overlay=...)``), off the training thread: in the encoder
process, or in the worker thread that encodes. The frame in the queue is never changed (other
clips may share it): the text goes onto a copy.

Light text on a darkened band in the frame's top-left corner, as small as the text: the scene
shows around it, and at a quarter of its brightness behind it. Drawn with Pillow (the
``overlay`` extra) in its default font (Aileron, rendered by FreeType), at about a 28th of the
frame's shorter side (8 pixels at least: a 64x64 frame shows ``step 12`` on a line). Pillow
takes tens of microseconds per character per call, so each character is rendered once per
video and the lines are composed from those with numpy.
"""

from __future__ import annotations

import importlib
import string
from types import ModuleType
from typing import Any

import numpy as np

from recorder._base.frames import Image
from recorder._base.info import SEPARATOR

INSTALL_HINT = "pip install 'recorder[overlay]'"
#: font sizes in pixels: about a 28th of the frame's shorter side, within these bounds.
MIN_FONT, MAX_FONT = 8, 40
#: characters rendered once and kept, per video.
MAX_GLYPHS = 512


def require_pillow() -> tuple[ModuleType, ModuleType, ModuleType]:
    """Pillow's Image, ImageDraw and ImageFont modules.

    Raises:
        ModuleNotFoundError: Pillow is not installed (the message says how to install it).
    """
    try:
        return tuple(  # type: ignore[return-value]
            importlib.import_module(f"PIL.{name}") for name in ("Image", "ImageDraw", "ImageFont")
        )
    except ImportError as e:
        raise ModuleNotFoundError(
            f"overlay= draws its text with Pillow, which is not installed: {INSTALL_HINT}",
            name="PIL",
        ) from e


def font_size(height: int, width: int) -> int:
    """The font size (pixels) of the overlay on frames of *height* x *width*."""
    return min(MAX_FONT, max(MIN_FONT, round(min(height, width) / 28)))


class TextBand:
    """Draws text onto copies of the frames of one video (of *shape*), in a top-left band.

    The band is the text's lines plus a margin, rounded up to even sizes (so that the 4:2:0
    chroma of the pixels around it is the scene's alone), clipped to the frame. A line that
    is too wide for the frame breaks at the separators (``·``) and newlines; what still does
    not fit is cut.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        image, draw, font = require_pillow()
        self._new_image: Any = image.new
        self._draw: Any = draw.Draw
        self._font: Any = font.load_default(font_size(shape[0], shape[1]))
        # A line is as high as the ink of ASCII's printable characters (a font's ascent and
        # descent leave room for accents above that: a fifth of the line, kept for the scene).
        _left, self._top, _right, bottom = self._font.getbbox(string.printable[:94])
        self._line = int(bottom - self._top)
        self._pad = max(1, self._line // 6)
        self._height, self._width = shape[0], shape[1]
        self._channels = shape[2] if len(shape) == 3 else 0
        self._copy = np.empty(shape, np.uint8)
        self._glyphs: dict[str, Image] = {}
        self._last: tuple[str | None, Image] = (None, np.zeros((0, 0), np.uint8))

    def mask(self, text: str) -> Image:
        """The band of *text*: how much of each of its pixels the text covers (0..255), with
        the frame's channels (HxW, or HxWx3 with equal channels)."""
        if text == self._last[0]:
            return self._last[1]  # a run of frames with the same text
        pad, line = self._pad, self._line
        lines = self._lines(text)
        width = max(map(self._measure, lines), default=0)
        height = _even(2 * pad + line * len(lines), self._height)
        mask = np.zeros((height, _even(2 * pad + width, self._width)), np.uint8)
        for i, chars in enumerate(lines):
            top = pad + i * line
            if chars and top < height:
                row = np.concatenate([self._glyph(c) for c in chars], axis=1)
                row = row[: height - top, : mask.shape[1] - pad]
                mask[top : top + row.shape[0], pad : pad + row.shape[1]] = row
        if self._channels:  # numpy's maximum() is many times slower broadcasting one
            mask = np.repeat(mask[:, :, None], self._channels, axis=2)
        self._last = (text, mask)
        return mask

    def draw(self, image: Image, text: str) -> Image:
        """A copy of *image* with *text* drawn on it (valid until the next call)."""
        mask = self.mask(text)
        out = self._copy
        np.copyto(out, image)
        band = out[: mask.shape[0], : mask.shape[1]]
        np.right_shift(band, 2, out=band)  # a quarter of the scene's brightness
        np.maximum(band, mask, out=band)
        return out

    def _lines(self, text: str) -> list[str]:
        """*text* broken into lines that fit the frame's width; as many as its height holds."""
        room = self._width - 2 * self._pad
        lines: list[str] = []
        for given in text.splitlines():
            paragraph = given if given.isprintable() else _printable(given)
            if self._measure(paragraph) <= room:
                lines.append(paragraph)
                continue
            parts = paragraph.split(SEPARATOR)
            line = parts[0]
            for part in parts[1:]:
                longer = line + SEPARATOR + part
                if self._measure(longer) <= room:
                    line = longer
                else:
                    lines.append(line)
                    line = part
            lines.append(line)
        return lines[: max(1, (self._height - 2 * self._pad) // self._line)]

    def _measure(self, text: str) -> int:
        """The width of *text* in pixels."""
        return sum([self._glyph(c).shape[1] for c in text])

    def _glyph(self, char: str) -> Image:
        """*char* rendered in a cell as wide as its advance and as high as a line."""
        glyph = self._glyphs.get(char)
        if glyph is None:
            width = max(1, round(self._font.getlength(char)))
            cell = self._new_image("L", (width, self._line))
            self._draw(cell).text((0, -self._top), char, font=self._font, fill=255)
            glyph = np.asarray(cell)
            if len(self._glyphs) < MAX_GLYPHS:
                self._glyphs[char] = glyph
        return glyph


def _printable(text: str) -> str:
    """*text* with a space for each character that is not printable (a tab, say)."""
    return "".join(c if c.isprintable() else " " for c in text)


def _even(size: int, limit: int) -> int:
    """*size* rounded up to even, at most *limit* (an even frame side)."""
    return min(size + size % 2, limit)
