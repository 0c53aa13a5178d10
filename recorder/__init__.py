"""Record videos of reinforcement-learning environments in the background.

The training loop hands frames over in microseconds; triggers and file writing happen on
worker threads, encoding (PyAV) in encoder processes they feed; nothing submitted is lost at
shutdown.
"""

import importlib as _importlib
import typing as _typing

from recorder._base.codec import Codec, Encoder, EncoderFactory, VideoSpec
from recorder._base.results import (
    ClipDroppedError,
    ClipHandle,
    QueueFullError,
    RecorderClosedError,
    RecorderStats,
    VideoHealth,
    VideoInfo,
)
from recorder._base.schedule import capped_cubic_video_schedule
from recorder._folder.recover import Leftover, RecoveredVideo, RecoveryReport, recover
from recorder._front.default import flush, save_video
from recorder._front.episode import Episode
from recorder._front.recorder import Recorder
from recorder._front.signals import handle_sigterm
from recorder._service.keep import Keep

if _typing.TYPE_CHECKING:  # what __getattr__ loads, for type checkers and IDEs
    from recorder import integrations as integrations
    from recorder import ray as ray
    from recorder import wrappers as wrappers
    from recorder._front.aio import AsyncClipHandle, AsyncEpisode, AsyncRecorder

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
    "Keep",
    "Leftover",
    "QueueFullError",
    "Recorder",
    "RecorderClosedError",
    "RecorderStats",
    "RecoveredVideo",
    "RecoveryReport",
    "VideoHealth",
    "VideoInfo",
    "VideoSpec",
    "capped_cubic_video_schedule",
    "flush",
    "handle_sigterm",
    "recover",
    "save_video",
]


_ASYNC = frozenset({"AsyncClipHandle", "AsyncEpisode", "AsyncRecorder"})
_SUBMODULES = ("integrations", "ray", "wrappers")


def __dir__() -> list[str]:
    return sorted({*globals(), *_ASYNC, *_SUBMODULES})


def __getattr__(name: str) -> object:
    # Loaded on first use only: ``recorder.wrappers`` imports gymnasium's wrappers, the async
    # facade anyio (and every encoder process imports this package).
    if name in _SUBMODULES:
        return _importlib.import_module(f"recorder.{name}")
    if name in _ASYNC:
        value = getattr(_importlib.import_module("recorder._front.aio"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recorder' has no attribute {name!r}")
