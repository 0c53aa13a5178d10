"""Text drawn onto frames (``Recorder(overlay=...)``), off the training thread: in the encoder
process, or in the worker thread that encodes. The frame in the queue is never changed (other
clips may share it): the text goes onto a copy, or onto the frame converted for the encoder.

Light text on a darkened band in the frame's top-left corner, as small as the text: the scene
shows around it, and at a quarter of its brightness behind it. A large frame encoded as yuv420p
gets the text on its converted planes (the encoder's own buffer: :meth:`TextBand.draw_planes`),
no copy of the frame at all; a small one on a copy (:meth:`TextBand.draw`), cheaper there.
Drawn with Pillow (the ``overlay`` extra) in its default font (Aileron, rendered by FreeType),
at about a 28th of the frame's shorter side (8 pixels at least: a 64x64 frame shows ``step 12``
on a line). Pillow takes tens of microseconds per character per call, so each character is
rendered once (ASCII's once per process and font size, the rest once per video) and a frame's
lines are composed from those cells with numpy.
"""

from __future__ import annotations

import importlib
import re
import string
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import numpy as np

from recorder._base.frames import Image
from recorder._base.info import SEPARATOR

INSTALL_HINT = "pip install 'recorder[overlay]'"
#: font sizes in pixels: about a 28th of the frame's shorter side, within these bounds.
MIN_FONT, MAX_FONT = 8, 40
#: characters rendered and kept per video (ASCII's are rendered once per process).
MAX_GLYPHS = 512
#: frames of at least this many bytes get the text on their converted yuv420p planes: the
#: copy of the frame :meth:`TextBand.draw` makes (about 50 µs at 600x400, and as much memory
#: traffic beside the training loop) costs more than viewing the planes (a few µs).
PLANES_FROM = 64 * 1024


def require_pillow() -> tuple[ModuleType, ModuleType, ModuleType]:
    """Pillow's Image, ImageDraw and ImageFont modules.

    Raises:
        ModuleNotFoundError: Pillow is not installed (the message says how to install it).
        ImportError: it is older than 10.1 (its default font takes no size).
    """
    try:
        modules = tuple(
            importlib.import_module(f"PIL.{name}") for name in ("Image", "ImageDraw", "ImageFont")
        )
    except ImportError as e:
        raise ModuleNotFoundError(
            f"overlay= draws its text with Pillow, which is not installed: {INSTALL_HINT}",
            name="PIL",
        ) from e
    version = importlib.import_module("PIL").__version__
    if tuple(int(part) for part in re.findall(r"\d+", version)[:2]) < (10, 1):
        raise ImportError(
            f"overlay= needs Pillow 10.1 or later (its default font at any size), found "
            f"{version}: pip install -U 'recorder[overlay]'"
        )
    return modules  # type: ignore[return-value]


def font_size(height: int, width: int) -> int:
    """The font size (pixels) of the overlay on frames of *height* x *width*."""
    return min(MAX_FONT, max(MIN_FONT, round(min(height, width) / 28)))


class _Face:
    """The font at one size, and the cells of ASCII's printable characters: made once per
    process and size (loading the font and rendering those takes milliseconds), read-only
    afterwards, shared by the videos' :class:`TextBand`."""

    def __init__(self, size: int) -> None:
        image, draw, font = require_pillow()
        self.new_image: Any = image.new
        self.draw: Any = draw.Draw
        self.font: Any = font.load_default(size)
        # A line is as high as the ink of ASCII's printable characters (a font's ascent and
        # descent leave room for accents above that: a fifth of the line, kept for the scene).
        _left, self.top, _right, bottom = self.font.getbbox(_ASCII)
        self.line = int(bottom - self.top)
        self.glyphs: dict[str, Image] = {}
        self.widths: dict[str, int] = {}
        for char in _ASCII + SEPARATOR:
            self.glyphs[char], self.widths[char] = self.render(char)

    def render(self, char: str) -> tuple[Image, int]:
        """*char* in a cell as wide as its advance and as high as a line; that width."""
        width = max(1, round(self.font.getlength(char)))
        cell = self.new_image("L", (width, self.line))
        self.draw(cell).text((0, -self.top), char, font=self.font, fill=255)
        return np.asarray(cell), width


_ASCII = string.printable[:95]  # letters, digits, punctuation and the space
_faces: dict[int, _Face] = {}


def _face(size: int) -> _Face:
    face = _faces.get(size)
    if face is None:  # two threads may each make one: the same, and one is kept
        face = _faces[size] = _Face(size)
    return face


class TextBand:
    """Draws text onto copies of the frames of one video (of *shape*), in a top-left band.

    The band is the text's lines plus a margin, rounded up to even sizes (so that the 4:2:0
    chroma of the pixels around it is the scene's alone), clipped to the frame. A line that
    is too wide for the frame breaks at the separators (``·``) and newlines; what still does
    not fit is cut.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self._face = face = _face(font_size(shape[0], shape[1]))
        self._line = face.line
        self._pad = max(1, self._line // 6)
        self._height, self._width = shape[0], shape[1]
        self._channels = shape[2] if len(shape) == 3 else 0
        self._copy = np.empty(shape, np.uint8)
        # Each character's cell and width, looked up per character of every frame's text, so
        # in C (map, set comparisons): the face's, and those this video's texts added.
        self._glyphs = dict(face.glyphs)
        self._widths = dict(face.widths)
        self._forms()
        none = np.zeros((0, 0), np.uint8)
        self._last: tuple[str | None, Image] = (None, none)
        self._last_luma: tuple[str | None, Image] = (None, none)

    def mask(self, text: str) -> Image:
        """The band of *text*: how much of each of its pixels the text covers (0..255), with
        the frame's channels (HxW, or HxWx3 with equal channels)."""
        if text == self._last[0]:
            return self._last[1]  # a run of frames with the same text
        mask = self._compose(text, luma=False)
        self._last = (text, mask)
        return mask

    def luma(self, text: str) -> Image:
        """The band of *text* as limited-range luma (16 where no ink, 235 under full ink)."""
        if text == self._last_luma[0]:
            return self._last_luma[1]
        luma = self._compose(text, luma=True)
        self._last_luma = (text, luma)
        return luma

    def _forms(self) -> None:
        """The cells in the forms the bands are composed of, each made at its first use: with
        the frame's channels (numpy's maximum() is many times slower broadcasting one), and
        as luma."""
        self._mask_cells = _Cells(self._glyphs, partial(_in_channels, self._channels))
        self._luma_cells = _Cells(self._glyphs, _LUMA.__getitem__)

    def _compose(self, text: str, luma: bool) -> Image:
        """The band of *text*: made of the cells with the frame's channels, or of luma."""
        pad, line = self._pad, self._line
        lines = self._lines(text)  # (its characters rendered: the forms may start again)
        cells, background = (self._luma_cells, _LUMA[0]) if luma else (self._mask_cells, 0)
        width = max(map(self._measure, lines), default=0)
        height = _even(2 * pad + line * len(lines), self._height)
        shape = (height, _even(2 * pad + width, self._width))
        depth = (self._channels,) if self._channels and not luma else ()
        band = np.full(shape + depth, background, np.uint8)
        for i, chars in enumerate(lines):
            top = pad + i * line
            if chars and top < height:
                row = np.concatenate(list(map(cells.__getitem__, chars)), axis=1)
                row = row[: height - top, : shape[1] - pad]
                band[top : top + row.shape[0], pad : pad + row.shape[1]] = row
        return band

    def draw(self, image: Image, text: str) -> Image:
        """A copy of *image* with *text* drawn on it (valid until the next call)."""
        mask = self.mask(text)
        out = self._copy
        np.copyto(out, image)
        band = out[: mask.shape[0], : mask.shape[1]]
        np.right_shift(band, 2, out=band)  # a quarter of the scene's brightness
        np.maximum(band, mask, out=band)
        return out

    def draw_planes(self, frame: Any, text: str) -> None:
        """Draw *text* onto *frame*, a yuv420p ``av.VideoFrame`` of this video's frames
        converted (a buffer of the encoder's own, never the queue's), as :meth:`draw` would
        onto the frame before conversion: in limited-range YUV, a quarter of the scene's luma
        and chroma (``16 + (y - 16) / 4``, ``128 + (c - 128) / 4``), and the text's luma over
        it (its chroma stays the darkened scene's: a tint of at most a quarter)."""
        luma = self.luma(text)
        height, width = luma.shape
        y_plane, u_plane, v_plane = frame.planes
        band = _plane(y_plane, height, width)
        np.right_shift(band, 2, out=band)
        np.add(band, 12, out=band)
        np.maximum(band, luma, out=band)
        for plane in (u_plane, v_plane):  # one sample per 2x2 block: the band's sides are even
            band = _plane(plane, height // 2, width // 2)
            np.right_shift(band, 2, out=band)
            np.add(band, 96, out=band)

    def _lines(self, text: str) -> list[str]:
        """*text* broken into lines that fit the frame's width (each of its characters
        rendered); as many lines as the frame's height holds."""
        room = self._width - 2 * self._pad
        paragraphs = [p if p.isprintable() else _printable(p) for p in text.splitlines()]
        self._render(SEPARATOR + "".join(paragraphs))
        joint = self._measure(SEPARATOR)
        lines: list[str] = []
        for paragraph in paragraphs:
            if self._measure(paragraph) <= room:
                lines.append(paragraph)
                continue
            parts = paragraph.split(SEPARATOR)
            line, width = parts[0], self._measure(parts[0])
            for part in parts[1:]:
                more = self._measure(part)
                if width + joint + more <= room:
                    line, width = line + SEPARATOR + part, width + joint + more
                else:
                    lines.append(line)
                    line, width = part, more
            lines.append(line)
        return lines[: max(1, (self._height - 2 * self._pad) // self._line)]

    def _measure(self, text: str) -> int:
        """The width of *text* (its characters rendered) in pixels."""
        return sum(map(self._widths.__getitem__, text))

    def _render(self, text: str) -> None:
        """Render the characters of *text* not yet rendered."""
        glyphs = self._glyphs
        if glyphs.keys() >= set(text):
            return
        if len(glyphs) + len(text) > MAX_GLYPHS:  # texts of many characters: start again
            glyphs = self._glyphs = dict(self._face.glyphs)
            self._widths = dict(self._face.widths)
            self._forms()
        for char in set(text) - glyphs.keys():
            glyphs[char], self._widths[char] = self._face.render(char)


#: limited-range luma of each coverage 0..255: 16 (none) .. 235 (full).
_LUMA = (np.arange(256, dtype=np.uint16) * 219 // 255 + 16).astype(np.uint8)


def _in_channels(channels: int, cell: Image) -> Image:
    """*cell* (HxW) with *channels* equal channels (HxWxC), or as it is for 0 (gray)."""
    return np.repeat(cell[:, :, None], channels, axis=2) if channels else cell


class _Cells(dict[str, Image]):
    """The characters' cells in one form, each made from its ink cell at its first use."""

    def __init__(self, ink: dict[str, Image], form: Callable[[Image], Image]) -> None:
        super().__init__()
        self._ink, self._form = ink, form

    def __missing__(self, char: str) -> Image:
        cell = self[char] = self._form(self._ink[char])
        return cell


def _plane(plane: Any, height: int, width: int) -> Image:
    """The top-left *height* x *width* of a frame's *plane* (an ``av.VideoPlane``), writable."""
    rows = np.frombuffer(plane, np.uint8, count=height * plane.line_size)
    return rows.reshape(height, plane.line_size)[:, :width]


def _printable(text: str) -> str:
    """*text* with a space for each character that is not printable (a tab, say)."""
    return "".join(c if c.isprintable() else " " for c in text)


def _even(size: int, limit: int) -> int:
    """*size* rounded up to even, at most *limit* (an even frame side)."""
    return min(size + size % 2, limit)
