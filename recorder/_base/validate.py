"""Argument and frame validation shared by the Recorder, save_video and the wrappers."""

from __future__ import annotations

import errno
import math
import numbers
import os
import reprlib
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import cast

import numpy as np

from recorder._base.frames import FrameFormat, Image, as_array, as_image, format_of

Trigger = Callable[[int], bool]


#: the largest int stored in sidecars and timelines: one a float holds (their readers, the
#: gallery and keep's ranking, take numbers as floats).
MAX_INT = 2**1023


def huge_int(where: str, value: int) -> ValueError:
    """The error for an int beyond :data:`MAX_INT` at *where*."""
    return ValueError(
        f"{where} is an int of {value.bit_length()} bits: numbers are stored as JSON that "
        f"floats can read, ints from -2**1023 to 2**1023"
    )


def is_int(value: object) -> bool:
    """Whether *value* is an int (numpy's too), and not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def describe(value: object) -> str:
    """*value* for an error message, short: an array by its type, shape and dtype."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        return f"{type(value).__name__} of shape {shape} and dtype {dtype}"
    return f"{reprlib.repr(value)} ({type(value).__name__})"


def check_callable(name: str, value: object) -> None:
    """Raise TypeError for a *value* that is neither callable nor None."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {describe(value)}")


def check_timeout(timeout: object) -> float | None:
    """A timeout in seconds: ``None`` (or inf) waits for ever; NaN and negatives are refused."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float | np.integer | np.floating):
        raise TypeError(f"timeout must be a number of seconds or None, got {describe(timeout)}")
    value = float(timeout)
    if math.isnan(value) or value < 0:
        raise ValueError(f"timeout must be >= 0 seconds (None: no limit), got {timeout!r}")
    # The caller's own number (a message says "3 s", not "3.0 s").
    return None if math.isinf(value) else cast(float, timeout)


def check_cancel(cancel: object) -> bool:
    """``close()``'s *cancel*: a bool (a truthy string would drop every video)."""
    if not isinstance(cancel, bool | np.bool_):
        raise TypeError(f"cancel must be a bool, got {describe(cancel)}")
    return bool(cancel)


def make_folder(folder: object, name: str = "video_folder") -> Path:
    """Create the folder *folder* (a str or path) if missing; its absolute path.

    Raises:
        TypeError: not a str or ``os.PathLike``.
        ValueError: something other than a folder is there.
        OSError: the folder cannot be created; PermissionError: it is not writable
            (read-only, another user's: else every video would fail later, in a worker).
    """
    if not isinstance(folder, str | os.PathLike):
        raise TypeError(f"{name} must be a str or os.PathLike, got {describe(folder)}")
    path = Path(os.path.abspath(os.fsdecode(folder)))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # only when it is not a folder (exist_ok)
        raise ValueError(f"{name} {str(path)!r} exists and is not a folder") from None
    # access() tells read-only mounts, modes and ACLs apart without a file made (a folder
    # watcher, a synced bucket would see one per call).
    effective = os.access in os.supports_effective_ids
    if not os.access(path, os.W_OK | os.X_OK, effective_ids=effective):
        raise PermissionError(
            errno.EACCES, f"cannot write into {name} {str(path)!r}: it is not writable"
        )
    return path


def shape_of(fmt: FrameFormat) -> tuple[int, ...]:
    """The array shape the caller gave for frames of *fmt* (for error messages)."""
    return (fmt.height, fmt.width) if fmt.gray else (fmt.height, fmt.width, 3)


def shape_changed(where: str, known: FrameFormat, fmt: FrameFormat) -> ValueError:
    """The error for a frame of *fmt* among frames of *known* format, *where* (a clip...)."""
    return ValueError(f"frame shape changed within {where}: {shape_of(known)} then {shape_of(fmt)}")


def check_triggers(episode_trigger: object, step_trigger: object) -> None:
    """Raise TypeError for a trigger that is neither callable nor None."""
    check_callable("episode_trigger", episode_trigger)
    check_callable("step_trigger", step_trigger)


#: a gif stores each frame's delay in hundredths of a second, and browsers play a delay of
#: 0 or 1 as 10 (Chromium, Firefox): above 50 fps a gif would play several times too slowly.
MAX_GIF_FPS = 50
#: the highest fps: the frame rate (a fraction of denominator up to 1001) must fit libx265's
#: and libvpx's time bases (measured: 99,999.9991 works with every codec, 999,999.9991 not).
MAX_FPS = 100_000
#: codecs that take less: (the most, why).
_CODEC_MAX_FPS = {
    "gif": (
        MAX_GIF_FPS,
        (
            "a gif stores frame delays in hundredths of a second, and browsers play delays under "
            "2 as 10"
        ),
    ),
    "av1": (240, "SVT-AV1 takes at most 240 fps"),
    "vp9": (1000, "WebM stores timestamps in milliseconds"),  # more: frames share one
}
#: ... and that take more: a gif's frame delay is 16 bits of hundredths of a second (a longer
#: one wraps around, silently).
_CODEC_MIN_FPS = {"gif": (100 / 65535, "a gif stores frame delays up to 655.35 s")}


def frame_rate(fps: float) -> Fraction:
    """The frame rate an encoder is given for *fps* (mp4 and webm time bases are 1 / it)."""
    return Fraction(fps).limit_denominator(1001)


def check_fps(fps: object, codec: str | None = None) -> float:
    """Return fps as a float, or raise for a non-number, NaN, inf, fps <= 0, an fps the
    encoder's frame rate rounds to 0, or one that *codec* (its name) cannot store."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real):  # a Fraction too
        raise TypeError(f"fps must be a number, got {fps!r}")
    try:
        value = float(fps)
    except OverflowError:  # an int beyond a float's range
        raise ValueError(f"fps must be at most {MAX_FPS:,}, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    if value > MAX_FPS:
        raise ValueError(f"fps must be at most {MAX_FPS:,}, got {fps!r}")
    # 1/1001 itself, as a float, is a hair under the fraction: not refused.
    if frame_rate(value) == 0 or value * 1001 < 1 - 1e-9:
        raise ValueError(f"fps must be at least 1/1001 (a frame every 1001 s), got {fps!r}")
    most, why = _CODEC_MAX_FPS.get(codec or "", (MAX_FPS, ""))
    if value > most:
        raise ValueError(f"{why}: fps must be at most {most}, got {fps!r}")
    least, why = _CODEC_MIN_FPS.get(codec or "", (0.0, ""))
    if value < least:
        raise ValueError(f"{why}: fps must be at least {least:.6f}, got {fps!r}")
    return value


def check_video_length(video_length: object) -> int | None:
    """``None`` or an int > 0."""
    if video_length is None:
        return None
    if not is_int(video_length):
        raise TypeError(f"video_length must be an int or None, got {video_length!r}")
    assert isinstance(video_length, int | np.integer)
    if video_length <= 0:
        raise ValueError(f"video_length must be > 0 (None: whole episodes), got {video_length}")
    return int(video_length)


#: digits of the largest index a file name is made with (episode, step, sub-environment).
INDEX_DIGITS = 20
#: what the longest name adds to a prefix: ``-env-{j}-episode-{i}`` (vector wrappers).
_LONGEST_INDEXES = len("-env--episode-") + 2 * INDEX_DIGITS
#: what the longest file made from a video's name adds to it: ``recorder recover``'s
#: temporary ``.{name}-partial.webm.{8 random}.rec-recover`` (the recorder's own temporary
#: and fragment files, ``.{name}.{8 random}.mp4.rec-frag``, add 23).
_LONGEST_WRAPPING = len(".-partial.webm..rec-recover") + 8
#: the longest name a file system takes (NAME_MAX, in bytes, on Linux and macOS).
NAME_MAX = 255
#: the longest name_prefix (UTF-8 bytes) whose every file name fits NAME_MAX.
MAX_PREFIX_BYTES = NAME_MAX - _LONGEST_INDEXES - _LONGEST_WRAPPING
#: the longest whole video name (a wrapper's clip name, indices included) that fits NAME_MAX.
MAX_NAME_BYTES = NAME_MAX - _LONGEST_WRAPPING


def check_index(name: str, value: object) -> int:
    """A non-negative int of at most :data:`INDEX_DIGITS` digits."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    assert isinstance(value, int | np.integer)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if value >= 10**INDEX_DIGITS:
        raise ValueError(
            f"{name} must be < 10**{INDEX_DIGITS} (file names have room for "
            f"{INDEX_DIGITS} digits), got {value}"
        )
    return int(value)


def check_name_prefix(
    prefix: object, most: int = MAX_PREFIX_BYTES, what: str = "name_prefix"
) -> str:
    """A prefix that keeps every file inside video_folder, with names the file system takes
    (*most* bytes at most: a whole video's name, *what*, has no indices to add)."""
    if not isinstance(prefix, str):
        raise TypeError(f"{what} must be a str, got {describe(prefix)}")
    bad = [s for s in ("/", "\\", os.sep, os.altsep or "/", "\0", "..") if s in prefix]
    if bad:
        raise ValueError(
            f"{what} must not contain {bad[0]!r}: files stay inside video_folder (got {prefix!r})"
        )
    if prefix.startswith("."):
        raise ValueError(
            f"{what} must not start with '.' (got {prefix!r}): hidden names are the "
            "recorder's temporary files, which recover, the gallery and serve leave alone"
        )
    size = len(os.fsencode(prefix))
    if size > most:
        raise ValueError(
            f"{what} must be at most {most} bytes, got {size} "
            f"({reprlib.repr(prefix)}): a file name holds {NAME_MAX} bytes, and the recorder "
            f"adds up to {NAME_MAX - most} ("
            + (f"indices of {INDEX_DIGITS} digits, " if most == MAX_PREFIX_BYTES else "")
            + "its temporary names)"
        )
    return prefix


def validate_frames(frames: object) -> list[Image]:
    """Validate a whole episode's frames; they must share one shape."""
    if not isinstance(frames, np.ndarray | Sequence) and (
        hasattr(frames, "__array__") or hasattr(frames, "__dlpack__")
    ):
        frames = as_array(frames, "frames")  # an NxHxWxC tensor, say
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            hint = (
                "this looks like one HxWxC frame: pass [frame]"
                if frames.ndim == 3 and frames.shape[-1] in (1, 3, 4)
                else "pass a list for gray HxW frames"
            )
            raise ValueError(
                f"an array of frames must be NxHxWxC; got shape {frames.shape} ({hint})"
            )
    elif not isinstance(frames, Sequence) or isinstance(frames, str | bytes):
        raise TypeError(f"frames must be a list of frames, got {type(frames).__name__}")
    if len(frames) == 0:
        raise ValueError("frames is empty: an episode has at least its reset frame")
    images: list[Image] = []
    first: FrameFormat | None = None
    for i, frame in enumerate(frames):
        try:
            image = as_image(frame)
        except (TypeError, ValueError) as e:
            raise type(e)(f"frame {i}: {e}") from None
        fmt = format_of(image)
        if first is None:
            first = fmt
        elif fmt != first:
            raise ValueError(f"frame {i} has shape {shape_of(fmt)}, frame 0 {shape_of(first)}")
        images.append(image)
    return images
