"""``save_video`` and ``flush``: gymnasium's function, on a shared default Recorder.

One default recorder per process serves every call, whatever its folder, prefix, triggers and
video_length: one worker pool and one memory budget, however many folders are used. It is
created on first use, closed (everything flushed) at interpreter exit like every live
Recorder, and forgotten in a forked child, which makes its own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from recorder._frames import Image
from recorder._queue import Clip, Item
from recorder._recorder import (
    TMP_SUFFIX,
    Recorder,
    check_fps,
    check_index,
    check_name_prefix,
    check_video_length,
    validate_frames,
)
from recorder._results import ClipHandle, ClipKind, RecorderClosedError, VideoInfo
from recorder._schedule import capped_cubic_video_schedule

logger = logging.getLogger("recorder")

Trigger = Callable[[int], bool]

#: keywords of moviepy's ImageSequenceClip that save_video understands (gymnasium forwards
#: **kwargs there); anything else is a TypeError.
SUPPORTED_KWARGS = ("fps", "durations")

# How the default recorder is made. gymnasium saves every clip, so nothing is dropped: a full
# budget makes save_video wait instead. Tests swap in a fake encoder here.
_options: dict[str, Any] = {"workers": 1, "max_queue_bytes": 256 * 2**20, "on_full": "block"}

_default: _SharedRecorder | None = None
_default_lock = threading.Lock()
_exiting = False  # interpreter shutdown began: the default recorder is closed or closing


class _SharedRecorder(Recorder):
    """A Recorder whose clips may each go to their own folder, planned by the caller.

    The core names clips relative to one ``video_folder``; save_video's folder changes per
    call. Until the core takes a per-clip folder, the clip is built here with its own path,
    and its temporary file is put next to it (``os.replace`` must not cross file systems).
    """

    def __init__(self, **options: Any) -> None:
        # The folder given to the core is never written to: every clip names its own.
        super().__init__(tempfile.gettempdir(), **options)
        self._writing = threading.local()

    def record(
        self,
        images: list[Image],
        folder: Path,
        name_prefix: str,
        episode: int | None,
        steps: list[tuple[int, int]],
        video_length: int | None,
        fps: float,
    ) -> list[ClipHandle]:
        """Queue the clips of one save_video call; triggers were already evaluated.

        Args:
            images: the validated frames of the episode.
            folder: where the videos go (absolute, existing).
            name_prefix: file name prefix.
            episode: the episode index when the episode clip is wanted.
            steps: ``(frame index, step index)`` of every step clip, in frame order.
            video_length: frames per clip at most, ``None`` for all.
            fps: the videos' frame rate.
        """
        starts: dict[int, list[tuple[ClipKind, int]]] = {}
        if episode is not None:
            starts[0] = [("episode", episode)]
        for k, step in steps:
            starts.setdefault(k, []).append(("step", step))
        last_start = max(starts, default=-1)
        clips: list[Clip] = []
        open_clips: list[Clip] = []
        try:
            for k, image in enumerate(images):
                for kind, index in starts.get(k, ()):
                    clip = self._new_clip_in(folder, f"{name_prefix}-{kind}-{index}", kind, index)
                    clip.fps = fps
                    clip.limit = math.inf if video_length is None else video_length
                    clips.append(clip)
                    open_clips.append(clip)
                open_clips = [c for c in open_clips if c.accepting]
                if open_clips:
                    self._append_frame(open_clips, image)
                elif k >= last_start:
                    break  # no clip wants this frame or any later one
        except BaseException:
            # Never a truncated video: the clips of a call are queued whole or not at all.
            for clip in clips:
                self._queue.drop(clip, "save_video() was interrupted")
            raise
        for clip in clips:
            self._end_clip(clip)
        return [clip.handle for clip in clips]

    def _new_clip_in(self, folder: Path, name: str, kind: ClipKind, index: int) -> Clip:
        path = folder / f"{name}{self.codec.extension}"
        clip = Clip(
            name=name,
            path=path,
            kind=kind,
            index=index,
            fps=self.fps,
            handle=ClipHandle(name, path, kind, index),
            limit=math.inf,
        )
        self._queue.open_clip(clip)
        return clip

    def _write(self, clip: Clip, item: Item) -> bool:
        if clip.encoder is None:  # the core is about to make the temporary file
            self._writing.folder = clip.path.parent
        return super()._write(clip, item)

    def _temp_path(self, name: str) -> str:
        folder: Path = self._writing.folder
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=TMP_SUFFIX, dir=folder)
        os.close(fd)
        return path


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
        **kwargs: ``fps=`` (required, as moviepy requires it), or ``durations=`` (moviepy's
            per-frame durations in seconds; they must all be equal: a video has one frame rate).

    Returns:
        One handle per video, in file-name order of creation; gymnasium returns ``None``.

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
    for name, trigger in (("episode_trigger", episode_trigger), ("step_trigger", step_trigger)):
        if trigger is not None and not callable(trigger):
            raise TypeError(f"{name} must be callable or None, got {trigger!r}")
    video_length = check_video_length(video_length)
    name_prefix = check_name_prefix(name_prefix)
    episode_index = check_index("episode_index", episode_index)
    step_starting_index = check_index("step_starting_index", step_starting_index)
    images = validate_frames(frames)
    fps = _fps_of(kwargs.get("fps"), kwargs.get("durations"), len(images))

    folder = Path(os.path.abspath(os.fspath(video_folder)))
    folder.mkdir(parents=True, exist_ok=True)

    # Triggers first, in gymnasium's order, and once each: a trigger that raises leaves
    # nothing queued, and a retry below does not call them again.
    if episode_trigger is None and step_trigger is None:
        episode_trigger = capped_cubic_video_schedule
    episode = None
    if episode_trigger is not None and episode_trigger(episode_index):
        episode = episode_index
    steps: list[tuple[int, int]] = []
    if step_trigger is not None:
        for k in range(1, len(images)):
            step = step_starting_index + k - 1
            if step_trigger(step):
                steps.append((k, step))
    if episode is None and not steps:
        return []

    args = (images, folder, name_prefix, episode, steps, video_length, fps)
    handles: list[ClipHandle] | None = None
    rec = _get_default()
    if rec is not None:
        try:
            handles = rec.record(*args)
        except RecorderClosedError:
            if not _exiting:
                raise
            # The default recorder was closed at exit while this call was queueing.
    if handles is None:
        # Interpreter shutdown began (a non-daemon thread still saving videos): a recorder
        # started now would never be closed, so encode here and return once saved.
        with _SharedRecorder(**_options) as one_shot:
            handles = one_shot.record(*args)
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
        Exception: the error of a video that failed since the last flush, or an
            :class:`ExceptionGroup` of several.
    """
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
    values = [check_fps(d) for d in durations]  # each a finite number > 0
    if len(values) != frames:
        raise ValueError(f"durations has {len(values)} entries for {frames} frames")
    if any(not math.isclose(v, values[0], rel_tol=1e-9) for v in values):
        raise ValueError(
            "durations must all be equal: a video has one frame rate (pass fps= instead)"
        )
    return check_fps(1 / values[0])


def _usable(rec: _SharedRecorder | None) -> bool:
    return rec is not None and not rec.closed and rec._pid == os.getpid()


def _get_default() -> _SharedRecorder | None:
    """The process's default recorder, made on first use; ``None`` once exit began."""
    global _default
    with _default_lock:
        if _exiting:
            return None
        if not _usable(_default):
            _default = _SharedRecorder(**_options)
        return _default


def _close_default(timeout: float | None = None, *, cancel: bool = False) -> None:
    """Close the default recorder (the next save_video makes a new one); for tests."""
    global _default
    with _default_lock:
        rec, _default = _default, None
    if rec is not None and rec._pid == os.getpid():
        rec.close(timeout, cancel=cancel)


def _log_outcome(handle: Future[VideoInfo]) -> None:
    assert isinstance(handle, ClipHandle)
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

with contextlib.suppress(NameError):
    del Image  # only needed for annotations
