"""Frame validation on the caller's thread, so that bad input fails at the call that gave it."""

from __future__ import annotations

import math
import warnings
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

    Accepts HxW, HxWx1, HxWx3 and HxWx4 (alpha dropped) arrays, non-contiguous ones, anything
    with ``__array__`` (a CPU torch tensor) and nested lists. uint8 is taken as it is; other
    integers and floats as gymnasium's writer takes them, when that gives an image: values in
    0..255, floats truncated (converted here, a copy).

    Raises:
        TypeError: not array-like (or its conversion failed), not numbers (bool, object...),
            or a PIL image that is not RGB or gray (palette, CMYK...).
        ValueError: wrong number of dimensions or channels, an empty image, values outside
            0..255, or floats with fractions all in 0..1 (gymnasium's writer would save them
            black; all below 2: taken, with a warning).
    """
    if type(frame) is np.ndarray:
        arr: np.ndarray[Any, Any] = frame
    else:  # subclasses too (a masked array, a matrix): their plain ndarray view
        if frame is None or isinstance(frame, str | bytes | dict):
            raise TypeError(f"a frame must be an array, got {type(frame).__name__}")
        mode = getattr(frame, "mode", None)
        if type(frame).__module__.startswith("PIL.") and mode not in _PIL_MODES:
            # np.asarray gives palette indices (P) or other channels (CMYK, YCbCr): wrong colours
            raise TypeError(
                f"a PIL image in mode {mode!r} is not RGB or gray: pass image.convert('RGB')"
            )
        arr = as_array(frame, "a frame")
    convert = arr.dtype != np.uint8
    if convert and arr.dtype.kind not in "uif":
        if arr.dtype.kind == "b":
            raise TypeError(
                "frames must be images (uint8), got a bool array: use frame.astype(np.uint8) * 255"
            )
        raise TypeError(f"frames must have dtype uint8, got {arr.dtype}")
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
    return _to_uint8(arr) if convert else arr


#: PIL image modes whose array is gray or RGB(A) pixels (np.asarray of the others is not).
_PIL_MODES = frozenset({"RGB", "RGBA", "RGBX", "L", "I", "I;16", "F"})
#: float frames with fractions and every value below this may be images in 0..1: refused up
#: to 1, taken with a warning above.
_UNIT_SCALE_BELOW = 2.0


def as_array(obj: Any, what: str) -> np.ndarray[Any, Any]:
    """*obj* (array-like: ``__array__``, ``__dlpack__`` or nested lists) as an ndarray.

    Raises:
        TypeError: it does not convert (a torch tensor that requires grad, or on a GPU...);
            *what* names it in the message.
    """
    try:
        if hasattr(obj, "__dlpack__") and not hasattr(obj, "__array__"):
            return np.from_dlpack(obj)
        return np.asarray(obj)
    except MemoryError:
        raise
    except Exception as e:  # a torch tensor that requires grad raises RuntimeError
        hint = " (a torch tensor: .detach().cpu())" if hasattr(obj, "detach") else ""
        raise TypeError(f"{what} must be array-like, got {type(obj).__name__}: {e}{hint}") from e


def _to_uint8(arr: np.ndarray[Any, Any]) -> Image:
    """Integer or float pixel values in 0..255 as uint8, as gymnasium's writer converts them."""
    lo, hi = arr.min(), arr.max()
    if arr.dtype.kind != "f":
        if lo < 0 or hi > 255:
            raise ValueError(f"frame values must lie in 0..255, got {lo}..{hi}")
    elif not 0 <= lo <= hi <= 255:  # NaN fails too
        raise ValueError(
            f"float frames must have values in 0..255, got {lo:g}..{hi:g}; "
            "e.g. np.clip(frame, 0, 255)"
        )
    elif hi < _UNIT_SCALE_BELOW and np.any(arr % 1):
        if hi <= 1:  # gymnasium's writer truncates these to 0 and 1: a black video
            raise ValueError(
                "float frames must have values in 0..255, got fractions in 0..1: scale them, "
                "e.g. (frame * 255).astype(np.uint8)"
            )
        # An image in 0..1 with a little jitter above 1, or a dark 0..255 frame (a fade from
        # black): taken, and said once (the warnings module shows it once per place).
        warnings.warn(
            f"a float frame with fractions all in 0..{hi:g} is taken as 0..255 (nearly black); "
            "if it is an image in 0..1, scale it: (frame * 255).astype(np.uint8)",
            UserWarning,
            stacklevel=2,
        )
    # astype truncates floats, as moviepy (gymnasium's writer) does.
    return arr.astype(np.uint8)


#: the longest side (pixels, after padding to even) each codec's encoder takes, measured
#: with PyAV 18 here (libx264 16384; libvpx-vp9 65536; gif 65535, a 16-bit field).
_MAX_SIDE = {"h264": 16384, "h265": 16384, "av1": 16384, "vp9": 65536, "gif": 65535}
#: libsvtav1: 4..16384 pixels wide, 4..8704 high.
_SVT_MIN, _SVT_MAX_HEIGHT = 4, 8704
#: libx265: at least 16 pixels a side; with a side under 32 its coding units are too small
#: for the levels above 4.1, which longer sides need (measured: 4208 x 16 opens, 4210 x 16
#: does not; 4096 kept as the rule); at most level 7.2's 142,606,336 pixels.
_X265_MIN, _X265_NARROW, _X265_NARROW_MAX, _X265_MAX_AREA = 16, 32, 4096, 142_606_336
#: libx265 corrupts its heap (abort, or a segfault) on frames 34..48 pixels wide (33 is padded
#: to 34), at every height (measured with PyAV 18.1, FFmpeg 8.1: 32 and 50 are fine).
_X265_BAD_WIDTHS = range(33, 49)
#: FFmpeg opens no picture with ``(w + 128) * (h + 128) * 8 >= 2**31 - 1``
#: (``av_image_check_size``).
_FFMPEG_MAX_AREA = (2**31 - 1) // 8


def check_size(fmt: FrameFormat, codec: str) -> None:
    """Raise ValueError when the encoder of *codec* (its name) cannot take frames of *fmt*.

    Checked on the caller's thread at a clip's first frame: the encoder would fail only when
    it opens, in the background.
    """
    h, w = fmt.shape[0], fmt.shape[1]  # the padded frame the encoder gets
    given = f"frames of {fmt.width}x{fmt.height} (width x height)"
    if (w, h) != (fmt.width, fmt.height):
        given += f", padded to {w}x{h},"
    if max(w, h) > _MAX_SIDE[codec]:
        problem = f"at most {_MAX_SIDE[codec]} pixels a side"
    elif (w + 128) * (h + 128) > _FFMPEG_MAX_AREA:
        problem = f"(width + 128) * (height + 128) under {_FFMPEG_MAX_AREA} (FFmpeg's limit)"
    elif codec == "av1" and min(w, h) < _SVT_MIN:
        problem = f"at least {_SVT_MIN} pixels a side"
    elif codec == "av1" and h > _SVT_MAX_HEIGHT:
        problem = f"at most {_SVT_MAX_HEIGHT} pixels high"
    elif codec == "h265" and min(w, h) < _X265_MIN:
        problem = f"at least {_X265_MIN} pixels a side"
    elif codec == "h265" and min(w, h) < _X265_NARROW and max(w, h) > _X265_NARROW_MAX:
        problem = f"at most {_X265_NARROW_MAX} pixels a side when a side is under {_X265_NARROW}"
    elif codec == "h265" and w in _X265_BAD_WIDTHS:
        problem = (
            f"no width from {_X265_BAD_WIDTHS.start} to {_X265_BAD_WIDTHS.stop - 1} pixels "
            "(libx265 corrupts its memory there: pad or resize the frames, or use h264)"
        )
    elif codec == "h265" and w * h > _X265_MAX_AREA:
        problem = f"at most {_X265_MAX_AREA} pixels"
    else:
        return
    raise ValueError(f"{given} do not fit codec {codec!r}: it takes {problem}")


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
