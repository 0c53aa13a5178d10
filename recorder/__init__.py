"""Record videos of reinforcement-learning environments in the background.

The training loop hands frames over in microseconds; triggers, encoding (PyAV) and file
writing happen on worker threads; nothing submitted is lost at shutdown.
"""

import importlib as _importlib

from recorder._async import AsyncClipHandle, AsyncEpisode, AsyncRecorder
from recorder._default import flush, save_video
from recorder._encoder import Codec, Encoder, EncoderFactory, VideoSpec
from recorder._recorder import Episode, Recorder
from recorder._results import (
    ClipDroppedError,
    ClipHandle,
    QueueFullError,
    RecorderClosedError,
    RecorderStats,
    VideoInfo,
)
from recorder._schedule import capped_cubic_video_schedule
from recorder._signals import handle_sigterm

__all__ = [
    "AsyncClipHandle",
    "AsyncEpisode",
    "AsyncRecorder",
    "ClipDroppedError",
    "ClipHandle",
    "Codec",
    "Encoder",
    "EncoderFactory",
    "Episode",
    "QueueFullError",
    "Recorder",
    "RecorderClosedError",
    "RecorderStats",
    "VideoInfo",
    "VideoSpec",
    "capped_cubic_video_schedule",
    "flush",
    "handle_sigterm",
    "save_video",
]


def __getattr__(name: str) -> object:
    # ``recorder.wrappers`` imports gymnasium's wrappers: load it on first use only.
    if name == "wrappers":
        return _importlib.import_module("recorder.wrappers")
    raise AttributeError(f"module 'recorder' has no attribute {name!r}")
