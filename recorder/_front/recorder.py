"""The public Recorder: its arguments checked, then everything asked of the ClipService port."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import numpy as np

from recorder._base.codec import Codec, EncoderFactory
from recorder._base.info import Overlay, check_infos, check_overlay
from recorder._base.results import ClipHandle, RecorderStats, VideoInfo
from recorder._base.schedule import capped_cubic_video_schedule
from recorder._base.stride import check_frame_stride
from recorder._base.validate import (
    Trigger,
    check_callable,
    check_fps,
    check_name_prefix,
    check_triggers,
    check_video_length,
    describe,
    is_int,
    make_folder,
    validate_frames,
)
from recorder._front.episode import Episode
from recorder._service.service import (
    ClipPlan,
    ClipService,
    EncodeIn,
    Keep,
    OnFull,
    Sink,
    note_close_error,
)

__all__ = ["Recorder"]


class Recorder:
    """Records videos of episodes in the background.

    Frames are validated and copied on the calling thread (microseconds); triggers decide which
    clips want them, exactly as :func:`gymnasium.utils.save_video.save_video` does; worker
    threads have them encoded with PyAV (in encoder processes by default, see *encode_in*) into
    a temporary file per video, renamed when complete. Leaving the ``with`` block (or
    :meth:`close`) waits until everything is on disk.

    Args:
        video_folder: where videos go; created if missing.
        fps: frames per second of the episodes; the videos play at ``fps / frame_stride``,
            which must be at least 1/1001 (gif 100/65535) and at most 100,000 (av1 240,
            vp9 1000, gif 100).
        episode_trigger: ``episode_index -> bool``: record this episode. With neither trigger,
            :func:`capped_cubic_video_schedule`.
        step_trigger: ``step_index -> bool``: start a clip at this step.
        video_length: ``None`` records whole episodes; ``n > 0`` clips of at most n frames.
        name_prefix: file names are ``{name_prefix}-episode-{i}`` / ``-step-{i}``.
        workers: encoder threads (with *encode_in* ``"process"``, up to as many encoder
            processes).
        max_queue_bytes: budget for frames waiting to be encoded: the size of the shared
            memory (the arena, ~3% more for alignment) that the frames are copied into once.
        on_full: when the budget is full: ``"drop"`` the clips that want the frame (never
            waits), ``"block"`` until there is room (lossless), or ``"raise"``
            :class:`QueueFullError` (the clips are dropped too).
        codec: ``"h264"`` (mp4), ``"h265"``, ``"vp9"`` (webm), ``"gif"`` or a :class:`Codec`.
        crf: quality, lower is better (codec default when ``None``).
        preset: encoder speed preset (codec default when ``None``).
        worker_nice: how much workers lower their own scheduling priority (Linux per-thread
            nice) so that the training loop wins a contended core; 0 leaves it.
        encode_in: ``"process"`` (default where the OS allows it: Linux) runs PyAV in up to
            *workers* child processes, started at the first video, which encode each frame
            where it lies in the arena (PyAV holds the GIL at moments that would stop the
            training loop). Idle ones are kept for the next Recorder (up to 2). Where none
            can be started, videos are encoded in the worker threads, with a warning;
            ``"thread"`` does that by choice. With processes, ``encode_seconds`` (stats,
            :class:`VideoInfo`) is the workers' time feeding them.
        encoder_factory: makes the encoder of each video (for tests); PyAV by default.
        on_saved: called on a worker thread with the :class:`VideoInfo` of each saved video;
            an exception it raises is reported like an encoding error.
        sidecars: write ``{name}.json`` beside each video (its :class:`VideoInfo` and the
            episode's metadata) and append a line to ``manifest.jsonl`` in the folder.
        sink: deliver each finished video to this sink (:func:`recorder.ray.start_sink`)
            instead of renaming it into *video_folder*, which then holds only the temporary
            files being written. A handle resolves once the video is on the sink's disk
            (``VideoInfo.path`` is the sink's path); the sink writes sidecar and manifest.
            Videos waiting for the sink's answer count against *max_queue_bytes*.
        keep: keep only the videos of the best and worst episodes, e.g.
            ``{"best": 5, "worst": 2, "by": "return"}`` (a :class:`Keep`): every episode is
            recorded (unless a trigger says otherwise) and, when it ends, scored by
            ``ep.metadata[by]``; the videos of episodes out of both rankings are deleted,
            and the manifest says which were kept and why. ``{"max_bytes": 2 * 2**30}``
            caps the size of the videos kept: the least valuable go first (see :class:`Keep`).
        health: look at each video's frames as they are encoded (off the training thread):
            a video whose frames are all blank, or one image repeated for most of it, is
            *suspect* (a headless render, a cached image): saved all the same, logged as a
            warning, counted in ``stats().videos_suspect``, and described in
            ``VideoInfo.health`` and the sidecar (:class:`VideoHealth`). False: not looked at.
        overlay: draw each frame's info (``ep.append(frame, info=...)``) onto the video, in
            the encoder process (or worker thread), never on the calling thread: the keys to
            show, e.g. ``("step", "reward", "return")``, ``True`` for all, or a callable
            ``info -> str`` (called on a worker thread with a read-only mapping). Light text
            on a darkened band in the top-left corner; the frames given are not changed.
            Needs Pillow (``pip install 'recorder[overlay]'``).
        frame_stride: record every k-th frame of each clip (its first frame, then every
            k-th: the reset frame first), at ``fps / k``: files about k times smaller, as
            long as the clip; the frames between are not rendered. ``video_length`` counts
            the frames a clip spans, of which it keeps ``ceil(video_length / k)``.

    Raises:
        TypeError, ValueError: for an invalid argument.
        ModuleNotFoundError: *overlay* without Pillow.
    """

    def __init__(
        self,
        video_folder: str | os.PathLike[str],
        fps: float = 30,
        episode_trigger: Trigger | None = None,
        step_trigger: Trigger | None = None,
        video_length: int | None = None,
        name_prefix: str = "rl-video",
        workers: int = 1,
        max_queue_bytes: int = 256 * 2**20,
        on_full: OnFull = "drop",
        *,
        codec: str | Codec = "h264",
        crf: int | None = None,
        preset: str | None = None,
        worker_nice: int = 10,
        encode_in: EncodeIn = "process",
        encoder_factory: EncoderFactory | None = None,
        on_saved: Callable[[VideoInfo], object] | None = None,
        sidecars: bool = True,
        sink: Sink | None = None,
        keep: Keep | Mapping[str, Any] | None = None,
        health: bool = True,
        overlay: Overlay = None,
        frame_stride: int = 1,
    ) -> None:
        self.fps = check_fps(fps)
        self.video_length = check_video_length(video_length)
        self.frame_stride = check_frame_stride(frame_stride)
        self.name_prefix = check_name_prefix(name_prefix)
        check_triggers(episode_trigger, step_trigger)
        keep = None if keep is None else Keep.of(keep)
        if sink is not None and not isinstance(sink, Sink):
            raise TypeError(f"sink must have an open() method (a recorder.ray sink), got {sink!r}")
        if keep is not None and sink is not None:
            raise ValueError("keep cannot be combined with a sink yet: the sink's folder is remote")
        if episode_trigger is None and step_trigger is None:
            # Ranked, every episode is a candidate; else gymnasium's default schedule.
            ranks = keep is not None and keep.ranks
            episode_trigger = _always if ranks else capped_cubic_video_schedule
        self.episode_trigger = episode_trigger
        self.step_trigger = step_trigger
        _check_service(workers, max_queue_bytes, on_full, worker_nice, encode_in)
        self.codec = _codec_of(codec, crf, preset)
        check_fps(fps / self.frame_stride, self.codec.name)
        check_callable("on_saved", on_saved)
        check_callable("encoder_factory", encoder_factory)
        self.on_saved = on_saved
        text_of = check_overlay(overlay)
        self.overlay = overlay
        self.sidecars = bool(sidecars)
        if not isinstance(health, bool):
            raise TypeError(f"health must be True or False, got {describe(health)}")
        self.health = health
        self.video_folder = make_folder(video_folder)
        self.workers = workers
        self.max_queue_bytes = max_queue_bytes
        self.on_full: OnFull = on_full
        plan = ClipPlan(
            self.video_folder,
            self.name_prefix,
            episode_trigger,
            step_trigger,
            self.video_length,
            self.fps,
            self.frame_stride,
        )
        made: list[ClipService] = []
        try:
            self._service = ClipService(
                plan,
                self.codec,
                workers=workers,
                max_queue_bytes=max_queue_bytes,
                on_full=on_full,
                worker_nice=worker_nice,
                encode_in=encode_in,
                encoder_factory=encoder_factory,
                on_saved=on_saved,
                sidecars=self.sidecars,
                sink=sink,
                keep=keep,
                health=health,
                overlay=text_of,
                made=made,
            )
            self.encode_in: EncodeIn = self._service.encode_in
        except BaseException:  # a Ctrl-C as the service was made: nobody else could close it
            for service in made:
                service.close(cancel=True)
            raise

    # -- the training thread's API ------------------------------------------------------------

    def episode(
        self,
        episode_index: int = 0,
        step_starting_index: int = 0,
        *,
        fps: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Episode:
        """Stream one episode frame by frame (a context manager; see :class:`Episode`).

        Args:
            episode_index: index of the episode (for episode_trigger and the file name).
            step_starting_index: step index of the first frame after the reset frame.
            fps: this episode's videos' fps, if not the recorder's.
            metadata: JSON-able facts about the episode (seed, policy checkpoint...) for the
                sidecars and :class:`VideoInfo`; more can be added to ``ep.metadata`` until the
                episode ends (its return, say).

        Raises:
            RecorderClosedError: the recorder is closed.
            Exception: whatever episode_trigger raises.
        """
        service = self._service
        service.check_usable()
        return Episode(service, service.plan_for(fps), episode_index, step_starting_index, metadata)

    def submit(
        self,
        frames: Sequence[Any] | np.ndarray[Any, Any],
        episode_index: int = 0,
        step_starting_index: int = 0,
        *,
        fps: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        infos: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[ClipHandle]:
        """Record a whole episode's frames; returns at once, one handle per clip.

        Produces the clips :func:`gymnasium.utils.save_video.save_video` would: the episode
        clip (``frames[:video_length]``) when episode_trigger fires, and a clip from each frame
        ``k >= 1`` whose step ``step_starting_index + k - 1`` fires step_trigger. Frame 0 is
        the reset frame. *infos*: one info (see :meth:`Episode.append`) or None per frame.

        Raises:
            TypeError, ValueError: bad frames, infos or indices, before anything is queued.
            QueueFullError: ``on_full="raise"`` and the budget is full.
        """
        service = self._service
        service.check_usable()
        images = validate_frames(frames)
        checked = check_infos(infos, len(images))
        plan = service.plan_for(fps)
        return Episode(service, plan, episode_index, step_starting_index, metadata)._record_all(
            images, checked
        )

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every video ended so far is on disk, and every frame given so far encoded.

        Raises:
            TimeoutError: *timeout* seconds passed first.
            TypeError, ValueError: *timeout* is not a number >= 0 (None, inf: no limit).
            Exception: the error of a video that failed since the last flush()/close(), or an
                :class:`ExceptionGroup` of them.
        """
        self._service.flush(timeout)

    def stats(self) -> RecorderStats:
        """A snapshot of the counters: queue bytes and peak, frames, videos, errors."""
        return self._service.stats()

    def close(self, timeout: float | None = None, *, cancel: bool = False) -> None:
        """Finish every clip, stop the workers and report errors. Idempotent, any thread.

        Open episodes are ended where they are. Then waits until every video is on disk, or,
        with ``cancel=True``, drops what is queued (no file is left half-written): the workers
        get a second to let go, then an encoder process that does not answer is killed. While
        another thread closes, waits for it (at most *timeout*).

        Args:
            timeout: after this many seconds, what is left is dropped and TimeoutError raised.
            cancel: drop queued frames instead of encoding them (fast shutdown).

        Raises:
            TimeoutError: *timeout* passed (the rest was dropped).
            TypeError, ValueError: *timeout* is not a number >= 0 (None, inf: no limit), or
                *cancel* not a bool; nothing is closed then.
            Exception: errors of failed videos not yet raised by flush(), one as itself,
                several as an :class:`ExceptionGroup`.
        """
        self._service.close(timeout, cancel=cancel)

    def __copy__(self) -> Self:
        return self  # a handle to this process's workers: a copy is the same Recorder

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self  # (e.g. gymnasium deep-copies a wrapper's spec, which names it)

    def __reduce__(self) -> Any:
        raise TypeError(
            "a Recorder cannot be pickled: it is a handle to this process's worker threads "
            "and encoder processes (make one in each process, or use a sink=)"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except BaseException as e:  # the block's exception goes first
            if not self._service.close_error(e):
                raise  # a Ctrl-C while closing
            note_close_error(exc, e)

    @property
    def closed(self) -> bool:
        """Whether close() has begun."""
        return self._service.closed


def _always(_episode: int) -> bool:
    return True


def _codec_of(codec: str | Codec, crf: int | None, preset: str | None) -> Codec:
    if isinstance(codec, Codec):
        if crf is not None or preset is not None:
            raise TypeError("give crf and preset inside the Codec, not beside it")
        return codec
    return Codec(codec, crf=crf, preset=preset)


def _check_service(
    workers: int, max_queue_bytes: int, on_full: str, nice: int, encode_in: str
) -> None:
    """Raise for an invalid argument of the Recorder's workers and queue."""
    if not is_int(workers) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if not is_int(max_queue_bytes) or max_queue_bytes <= 0:
        raise ValueError(f"max_queue_bytes must be an int > 0, got {max_queue_bytes!r}")
    if on_full not in ("drop", "block", "raise"):
        raise ValueError(f"on_full must be 'drop', 'block' or 'raise', got {on_full!r}")
    if not is_int(nice):
        raise TypeError(f"worker_nice must be an int, got {nice!r}")
    if encode_in not in ("process", "thread"):
        raise ValueError(f"encode_in must be 'process' or 'thread', got {encode_in!r}")
