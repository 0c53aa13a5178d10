"""Argument and frame validation shared by the Recorder, save_video and the wrappers."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np

from recorder._frames import FrameFormat, Image, as_image, format_of

Trigger = Callable[[int], bool]


def is_int(value: object) -> bool:
    """Whether *value* is an int (numpy's too), and not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def shape_of(fmt: FrameFormat) -> tuple[int, ...]:
    """The array shape the caller gave for frames of *fmt* (for error messages)."""
    return (fmt.height, fmt.width) if fmt.gray else (fmt.height, fmt.width, 3)


def shape_changed(where: str, known: FrameFormat, fmt: FrameFormat) -> ValueError:
    """The error for a frame of *fmt* among frames of *known* format, *where* (a clip...)."""
    return ValueError(f"frame shape changed within {where}: {shape_of(known)} then {shape_of(fmt)}")


def check_triggers(episode_trigger: object, step_trigger: object) -> None:
    """Raise TypeError for a trigger that is neither callable nor None."""
    for name, trigger in (("episode_trigger", episode_trigger), ("step_trigger", step_trigger)):
        if trigger is not None and not callable(trigger):
            raise TypeError(f"{name} must be callable or None, got {trigger!r}")


#: a gif stores each frame's delay in hundredths of a second.
MAX_GIF_FPS = 100


def frame_rate(fps: float) -> Fraction:
    """The frame rate an encoder is given for *fps* (mp4 and webm time bases are 1 / it)."""
    return Fraction(fps).limit_denominator(1001)


def check_fps(fps: object, codec: str | None = None) -> float:
    """Return fps as a float, or raise for a non-number, NaN, inf, fps <= 0, an fps the
    encoder's frame rate rounds to 0, or one that *codec* (its name) cannot store."""
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.integer | np.floating):
        raise TypeError(f"fps must be a number, got {fps!r}")
    value = float(fps)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    if frame_rate(value) == 0:
        raise ValueError(f"fps must be at least 1/1001 (a frame every 1001 s), got {fps!r}")
    if codec == "gif" and value > MAX_GIF_FPS:
        raise ValueError(
            f"a gif stores frame delays in hundredths of a second: fps must be at most "
            f"{MAX_GIF_FPS}, got {fps!r}"
        )
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


def check_index(name: str, value: object) -> int:
    """A non-negative int."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    assert isinstance(value, int | np.integer)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def check_name_prefix(prefix: object) -> str:
    """A prefix that keeps every file inside video_folder."""
    if not isinstance(prefix, str):
        raise TypeError(f"name_prefix must be a str, got {prefix!r}")
    bad = [s for s in ("/", "\\", os.sep, os.altsep or "/", "\0", "..") if s in prefix]
    if bad:
        raise ValueError(
            f"name_prefix must not contain {bad[0]!r}: files stay inside video_folder "
            f"(got {prefix!r})"
        )
    return prefix


def validate_frames(frames: object) -> list[Image]:
    """Validate a whole episode's frames; they must share one shape."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(
                "an array of frames must be NxHxWxC; "
                f"got shape {frames.shape} (pass a list for gray HxW frames)"
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
