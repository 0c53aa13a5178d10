"""Frame validation on the caller's thread, so that bad input fails at the call that gave it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """The geometry of the frames of one stream, before and after padding to even sizes."""

    height: int
    width: int
    gray: bool
    #: shape of the (padded) buffer that holds one frame for the encoder.
    shape: tuple[int, ...] = field(init=False, compare=False)
    #: bytes of one padded frame buffer.
    nbytes: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once: the training thread reads them for every frame.
        h, w = self.height + self.height % 2, self.width + self.width % 2
        shape = (h, w) if self.gray else (h, w, 3)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "nbytes", math.prod(shape))

    @property
    def pix_fmt(self) -> str:
        """PyAV pixel format of the buffer."""
        return "gray" if self.gray else "rgb24"


def as_image(frame: Any) -> Image:
    """Return *frame* as a uint8 HxW (gray) or HxWx3 (RGB) view, without copying when possible.

    Accepts uint8 HxW, HxWx1, HxWx3 and HxWx4 (alpha dropped) arrays, non-contiguous ones,
    anything with ``__array__`` (a CPU torch tensor) and nested lists of ints in 0..255.

    Raises:
        TypeError: not array-like, or a dtype other than uint8.
        ValueError: wrong number of dimensions or channels, or an empty image.
    """
    if isinstance(frame, np.ndarray):
        arr: np.ndarray[Any, Any] = frame
    else:
        if frame is None or isinstance(frame, str | bytes | dict):
            raise TypeError(f"a frame must be an array, got {type(frame).__name__}")
        try:
            arr = np.asarray(frame)
        except (TypeError, ValueError) as e:
            raise TypeError(f"a frame must be an array, got {type(frame).__name__}: {e}") from e
        # Nested lists carry no dtype of their own: ints that fit are pixel values.
        if not hasattr(frame, "dtype") and arr.dtype.kind in "iu" and arr.size:
            if arr.min() < 0 or arr.max() > 255:
                raise ValueError("frame values must lie in 0..255")
            arr = arr.astype(np.uint8)
    if arr.dtype != np.uint8:
        raise TypeError(
            f"frames must have dtype uint8, got {arr.dtype}"
            + (" (scale floats with (x * 255).astype(np.uint8))" if arr.dtype.kind == "f" else "")
        )
    if arr.ndim == 3:
        channels = arr.shape[2]
        if channels == 1:
            arr = arr[:, :, 0]
        elif channels == 4:
            arr = arr[:, :, :3]
        elif channels != 3:
            raise ValueError(
                f"frames must have 1, 3 or 4 channels (gray, RGB, RGBA), got shape {arr.shape}"
            )
    elif arr.ndim != 2:
        raise ValueError(f"frames must be HxW, HxWx1, HxWx3 or HxWx4 arrays, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"frames must not be empty, got shape {arr.shape}")
    return arr


def format_of(image: Image) -> FrameFormat:
    """The :class:`FrameFormat` of an image returned by :func:`as_image`."""
    fmt = _formats.get(image.shape)
    if fmt is None:
        fmt = FrameFormat(int(image.shape[0]), int(image.shape[1]), image.ndim == 2)
        if len(_formats) < 256:
            _formats[image.shape] = fmt
    return fmt


# One FrameFormat per shape seen: the hot path compares them by identity first.
_formats: dict[tuple[int, ...], FrameFormat] = {}


_U8 = np.dtype(np.uint8)


def image_and_format(frame: Any) -> tuple[Image, FrameFormat]:
    """:func:`as_image` and :func:`format_of` of *frame*; cheap for a shape seen before.

    The training thread's path: only shapes that :func:`as_image` returned are keys of the
    format cache, so a uint8 ndarray of such a shape needs no more checks.
    """
    if type(frame) is np.ndarray and frame.dtype is _U8:
        fmt = _formats.get(frame.shape)
        if fmt is not None:
            return frame, fmt
    image = as_image(frame)
    return image, format_of(image)


def copy_into(dst: Image, src: Image) -> None:
    """Copy *src* into the (possibly one row/column larger) buffer *dst*, repeating the edge."""
    h, w = src.shape[0], src.shape[1]
    if dst.shape == src.shape and src.flags.c_contiguous:
        # A memoryview copy keeps the GIL: numpy would release it for the memcpy, and getting
        # it back can wait for an encoder thread's Python work.
        dst.data.cast("B")[:] = src.data.cast("B")
        return
    dst[:h, :w] = src
    if dst.shape[1] > w:
        dst[:h, w] = src[:, w - 1]
    if dst.shape[0] > h:
        dst[h] = dst[h - 1]
