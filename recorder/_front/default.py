"""``save_video`` and ``flush``: gymnasium's function, on a shared default Recorder.

One default recorder per process serves every call, whatever its folder, prefix, triggers and
video_length: one worker pool and one memory budget, however many folders are used. It is
created on first use, closed (everything flushed) at interpreter exit like every live
Recorder, and forgotten in a forked child, which makes its own.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from recorder._base.frames import Image
from recorder._base.results import ClipHandle, RecorderClosedError, VideoInfo
from recorder._base.schedule import capped_cubic_video_schedule
from recorder._base.stride import check_frame_stride
from recorder._base.validate import (
    Trigger,
    check_fps,
    check_index,
    check_name_prefix,
    check_timeout,
    check_triggers,
    check_video_length,
    make_folder,
    validate_frames,
)
from recorder._front.episode import Episode
from recorder._front.recorder import Recorder
from recorder._service.service import ClipPlan

logger = logging.getLogger("recorder")

#: keywords of moviepy's ImageSequenceClip that save_video understands (gymnasium forwards
#: **kwargs there); anything else is a TypeError.
SUPPORTED_KWARGS = ("fps", "durations")

# How the default recorder is made. gymnasium saves every clip, so nothing is dropped: a full
# budget makes save_video wait instead. No sidecar files: the same files as gymnasium. Tests
# swap in a fake encoder here.
_options: dict[str, Any] = {
    "workers": 1,
    "max_queue_bytes": 256 * 2**20,
    "on_full": "block",
    "sidecars": False,
}

_default: Recorder | None = None
_default_lock = threading.Lock()
_exiting = False  # interpreter shutdown began: the default recorder is closed or closing


def save_video(
    frames: Sequence[Any] | np.ndarray[Any, Any],
    video_folder: str | os.PathLike[str],
    episode_trigger: Trigger | None = None,
    step_trigger: Trigger | None = None,
    video_length: int | None = None,
    name_prefix: str = "rl-video",
    episode_index: int = 0,
    step_starting_index: int = 0,
    save_logger: Any = None,
    *,
    frame_stride: int = 1,
    **kwargs: Any,
) -> list[ClipHandle]:
    """Save videos of an episode's frames, as :func:`gymnasium.utils.save_video.save_video`.

    The same files: ``{name_prefix}-episode-{episode_index}.mp4`` (the first video_length
    frames) when episode_trigger fires, and ``{name_prefix}-step-{i}.mp4`` (video_length
    frames from that step's) for every step ``i`` step_trigger fires on; frame 0 is the reset
    frame. With neither trigger, :func:`capped_cubic_video_schedule` picks episodes.

    Unlike gymnasium, it returns at once: the frames are copied and encoded in the background
    by the process's default Recorder. Call :func:`flush` to wait until the videos are on disk;
    they are also flushed at interpreter exit. Nothing is dropped: if the default recorder's
    memory budget (256 MiB of queued frames) is full, the call waits for room.

    Args:
        frames: the episode's frames (uint8 HxWx3, HxWx4 or HxW arrays), reset frame first.
        video_folder: where the videos go; created if missing.
        episode_trigger: ``episode_index -> bool``: save the episode clip.
        step_trigger: ``step_index -> bool``: save a clip starting at this step.
        video_length: frames per clip at most; ``None`` for the whole episode.
        name_prefix: prepended to the file names.
        episode_index: the index of this episode.
        step_starting_index: the step index of the first frame after the reset frame.
        save_logger: gymnasium's moviepy progress logger; when not ``None``, each saved (or
            failed) video is logged at INFO level on the ``recorder`` logger.
        frame_stride: keep every k-th frame of each clip, from its first, at ``fps / k``
            (not gymnasium's; see :class:`recorder.Recorder`).
        **kwargs: ``fps=`` (required, as moviepy requires it), or ``durations=`` (moviepy's
            per-frame durations in seconds; they must all be equal: a video has one frame rate).

    Returns:
        One handle per video, in the order the clips start (gymnasium returns ``None``).

    Raises:
        TypeError: an unsupported keyword, frames that are not a list of uint8 images, or an
            argument of the wrong type.
        ValueError: no fps, frames of different shapes, or an invalid argument.
        Exception: whatever a trigger raises (nothing is queued then).
    """
    unknown = sorted(set(kwargs) - set(SUPPORTED_KWARGS))
    if unknown:
        raise TypeError(
            f"save_video() got unsupported keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"supported: {', '.join(SUPPORTED_KWARGS)} and the named parameters"
        )
    check_triggers(episode_trigger, step_trigger)
    video_length = check_video_length(video_length)
    name_prefix = check_name_prefix(name_prefix)
    episode_index = check_index("episode_index", episode_index)
    step_starting_index = check_index("step_starting_index", step_starting_index)
    frame_stride = check_frame_stride(frame_stride)
    images = validate_frames(frames)
    fps = _fps_of(kwargs.get("fps"), kwargs.get("durations"), len(images))
    check_fps(fps / frame_stride)

    folder = make_folder(video_folder)
    if episode_trigger is None and step_trigger is None:
        episode_trigger = capped_cubic_video_schedule
    plan = ClipPlan(
        folder, name_prefix, episode_trigger, step_trigger, video_length, fps, frame_stride
    )
    args = (images, plan, episode_index, step_starting_index)
    handles: list[ClipHandle] | None = None
    rec = _get_default(folder)
    if rec is not None:
        try:
            handles = _submit(rec, *args)
        except RecorderClosedError:
            if not _exiting:
                raise
            # The default recorder was closed at exit while this call was queueing.
    if handles is None:
        # Interpreter shutdown began (a non-daemon thread still saving videos): a recorder
        # started now would never be closed, so encode here and return once saved.
        with Recorder(folder, **_options) as one_shot:
            handles = _submit(one_shot, *args)
    if save_logger is not None:
        for handle in handles:
            handle.add_done_callback(_log_outcome)
    return handles


def flush(timeout: float | None = None) -> None:
    """Wait until every video given to :func:`save_video` so far is on disk.

    Args:
        timeout: give up after this many seconds (``None``: wait as long as it takes).

    Raises:
        TimeoutError: *timeout* passed first.
        TypeError, ValueError: *timeout* is not a number >= 0.
        Exception: the error of a video that failed since the last flush, or an
            :class:`ExceptionGroup` of several.
    """
    timeout = check_timeout(timeout)
    with _default_lock:
        rec = _default if _usable(_default) else None
    if rec is not None:
        rec.flush(timeout)


def _fps_of(fps: object, durations: object, frames: int) -> float:
    # moviepy's rule: fps wins when given; else fps = frames / sum(durations).
    if fps is not None:
        return check_fps(fps)
    if durations is None:
        raise ValueError("save_video() needs fps= (or durations=), as moviepy does")
    if not isinstance(durations, Sequence | np.ndarray) or isinstance(durations, str | bytes):
        raise TypeError(f"durations must be a list of seconds per frame, got {durations!r}")
    try:
        values = [check_fps(d) for d in durations]  # each a finite number > 0
    except (TypeError, ValueError) as e:
        raise type(e)(f"durations must be seconds per frame, each > 0 ({e})") from None
    if len(values) != frames:
        raise ValueError(f"durations has {len(values)} entries for {frames} frames")
    if any(not math.isclose(v, values[0], rel_tol=1e-9) for v in values):
        raise ValueError(
            "durations must all be equal: a video has one frame rate (pass fps= instead)"
        )
    return check_fps(1 / values[0])


def _submit(
    rec: Recorder, images: list[Image], plan: ClipPlan, episode_index: int, step_starting_index: int
) -> list[ClipHandle]:
    """Record a whole episode's validated frames on *rec*, with save_video's own *plan*."""
    episode = Episode(rec._service, plan, episode_index, step_starting_index)
    return episode._record_all(images)


def _usable(rec: Recorder | None) -> bool:
    return rec is not None and not rec.closed and rec._service.in_this_process


def _get_default(folder: Path) -> Recorder | None:
    """The process's default recorder, made on first use; ``None`` once exit began."""
    global _default
    with _default_lock:
        if _exiting:
            return None
        if not _usable(_default):
            # Its own folder is only a default: every call's clips name their folder.
            _default = Recorder(folder, **_options)
        return _default


def _close_default(timeout: float | None = None, *, cancel: bool = False) -> None:
    """Close the default recorder (the next save_video makes a new one); for tests."""
    global _default
    with _default_lock:
        rec, _default = _default, None
    if rec is not None and rec._service.in_this_process:
        rec.close(timeout, cancel=cancel)


def _log_outcome(handle: Future[VideoInfo]) -> None:
    assert isinstance(handle, ClipHandle)
    if handle.cancelled():
        logger.info("did not save %s: its handle was cancelled", handle.path)
        return
    error = handle.exception()
    if error is None:
        info = handle.result()
        logger.info("saved %s (%d frames at %g fps)", info.path, info.frames, info.fps)
    else:
        logger.info("did not save %s: %s", handle.path, error)


def _at_exit() -> None:
    # Runs just before the core closes every live Recorder (threading's at-exit hooks run
    # in reverse order of registration, and the core registered first on import).
    global _exiting
    _exiting = True


def _forget_in_child() -> None:
    # The parent's recorder and its workers are the parent's; the child makes its own.
    global _default, _default_lock
    _default_lock = threading.Lock()
    _default = None


try:
    threading._register_atexit(_at_exit)  # type: ignore[attr-defined]
except RuntimeError:  # imported while the interpreter is already shutting down
    _exiting = True
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)

__all__ = ["flush", "save_video"]
