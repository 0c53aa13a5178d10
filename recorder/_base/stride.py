"""``frame_stride=k``: record every k-th frame of a clip, at 1/k of the frame rate.

A clip keeps the frames at offsets 0, k, 2k, ... from its own first frame (an episode's clip:
its reset frame first; a step clip: the frame of the step that started it), so every clip
starts with the frame that started it, and the video plays at ``fps / k``: as long as the
clip lasted. ``video_length`` still counts the frames the clip spans (of the environment), of
which the video holds ``ceil(video_length / k)``. The frames between are never rendered.
"""

from __future__ import annotations

import math

import numpy as np

from recorder._base.validate import describe, is_int


def check_frame_stride(frame_stride: object) -> int:
    """*frame_stride* as an int >= 1, or a TypeError/ValueError naming it."""
    if not isinstance(frame_stride, int | np.integer) or not is_int(frame_stride):
        raise TypeError(f"frame_stride must be an int >= 1, got {describe(frame_stride)}")
    stride = int(frame_stride)
    if stride < 1:
        raise ValueError(f"frame_stride must be >= 1 (1: every frame), got {stride}")
    return stride


def kept(span: int | None, stride: int) -> int | None:
    """How many of a clip's *span* frames (None: no end) a video at *stride* holds."""
    return None if span is None else math.ceil(span / stride)
