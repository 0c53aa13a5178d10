"""A wrapper's clips: the Recorder they go to (``ClipSink``) and one recording slot (``Track``)."""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gymnasium import logger as gym_logger

from recorder._base.info import Checked, Overlay
from recorder._base.results import ClipDroppedError, ClipHandle, ClipKind, VideoInfo
from recorder._base.stride import check_frame_stride
from recorder._base.validate import (
    MAX_NAME_BYTES,
    check_callable,
    check_fps,
    check_name_prefix,
    make_folder,
)
from recorder._front.recorder import Recorder
from recorder._service.service import MAX_ERRORS, Clip

#: Recorder arguments that the wrapper decides itself (clips are named and cut by the wrapper).
WRAPPER_OWNED = (
    "video_folder",
    "fps",
    "episode_trigger",
    "step_trigger",
    "video_length",
    "name_prefix",
    "frame_stride",
)

#: Defaults of a wrapper's private Recorder: lossless, so that every triggered clip is saved,
#: and no sidecar files, so that the folder holds gymnasium's files and nothing else.
PRIVATE_DEFAULTS: Mapping[str, Any] = {"on_full": "block", "sidecars": False}


class ClipSink:
    """A wrapper's Recorder (private or shared) and the handles of the clips it started.

    Clips go to :attr:`folder` at :attr:`fps`, both read when a clip opens (its first frame):
    assigned meanwhile, they apply from the next clip.

    Args:
        video_folder: the wrapper's folder.
        fps: frames per second of the clips.
        recorder: a shared Recorder, not closed by :meth:`close`; clips still go to
            *video_folder*.
        recorder_kwargs: settings of the private Recorder (when *recorder* is None).
        on_saved, overlay: the private Recorder's ``on_saved`` and ``overlay`` (a shared one
            has its own).
        frame_stride: record every k-th frame of each clip, at ``fps / k``; None: the
            shared Recorder's (1 for a private one).
    """

    def __init__(
        self,
        video_folder: str,
        fps: float,
        recorder: Recorder | None,
        recorder_kwargs: Mapping[str, Any] | None,
        on_saved: Callable[[VideoInfo], object] | None = None,
        overlay: Overlay = None,
        frame_stride: int | None = None,
    ) -> None:
        # A shared Recorder's videos of this wrapper not known done, oldest first, and the
        # errors of those that failed (the first MAX_ERRORS; the rest counted): close() raises
        # them. Pruned from the front as clips start: O(1) a clip, however long the run.
        self._pending: collections.deque[ClipHandle] = collections.deque()
        self._errors: list[BaseException] = []
        self._more_errors = 0
        if frame_stride is not None:
            frame_stride = check_frame_stride(frame_stride)
        check_callable("on_saved", on_saved)
        if recorder is not None:
            if recorder_kwargs:
                raise TypeError("give either recorder or recorder_kwargs, not both")
            for name, value in (("on_saved", on_saved), ("overlay", overlay)):
                if value is not None:
                    raise TypeError(
                        f"{name} belongs to the shared Recorder: Recorder(..., {name}=...)"
                    )
            if not isinstance(recorder, Recorder):
                raise TypeError(f"recorder must be a recorder.Recorder, got {recorder!r}")
            recorder._service.check_usable()
            if Path(video_folder) != recorder.video_folder:
                _warn_existing(video_folder)
            self.recorder = recorder
            self.owned = False
        else:
            kwargs = dict(PRIVATE_DEFAULTS)
            if recorder_kwargs:
                clash = sorted(k for k in recorder_kwargs if k in WRAPPER_OWNED)
                if clash:
                    raise TypeError(
                        f"recorder_kwargs must not set {', '.join(clash)}: the wrapper's own "
                        "arguments decide them"
                    )
                kwargs.update(recorder_kwargs)
            for name, value in (("on_saved", on_saved), ("overlay", overlay)):
                if value is not None:
                    if recorder_kwargs and name in recorder_kwargs:
                        raise TypeError(f"give {name} once, not in recorder_kwargs too")
                    kwargs[name] = value
            if kwargs.get("sink") is None:  # with a sink the folder is a spool: nothing stays
                _warn_existing(video_folder)
            self._kwargs = kwargs
            self.recorder = Recorder(video_folder, **kwargs)
            self.owned = True
        #: every k-th frame of a clip is recorded (recorder._base.stride)
        self.stride = frame_stride or self.recorder.frame_stride
        try:
            self.fps = fps
            self.folder = video_folder
        except BaseException:
            if self.owned:
                self.recorder.close()
            raise

    @property
    def fps(self) -> float:
        """Frames per second of the next clip, as given."""
        return self._fps

    @fps.setter
    def fps(self, fps: float) -> None:
        check_fps(fps)  # here, not in a worker
        check_fps(float(fps) / self.stride, self.recorder.codec.name)  # the videos': a gif's limit
        self._fps = fps

    @property
    def folder(self) -> str:
        """Where the next clip goes (absolute)."""
        return self._folder

    @folder.setter
    def folder(self, folder: str) -> None:
        # Made at the call, as gymnasium's __init__ does.
        self._folder = os.fspath(make_folder(folder))

    @property
    def stale(self) -> bool:
        """Whether the Recorder is closed, or the parent's in a forked child."""
        return not self.recorder._service.usable

    def open(
        self,
        name: str,
        kind: ClipKind,
        index: int | None,
        episode_index: int | None,
        first_step: int | None,
        metadata: dict[str, Any] | None = None,
        source: object = None,
    ) -> Clip:
        """Start a clip of unlimited length (the wrapper ends it); *source* numbers its
        episode (see :meth:`ClipService.new_clip`)."""
        if self.owned and self.stale:
            # Used again after env.close(), as gymnasium allows, or in a forked child (whose
            # parent's workers are gone): a private Recorder of the same settings takes over.
            self.recorder = Recorder(self._folder, **self._kwargs)
        clip = self.recorder._service.new_clip(
            name,
            kind,
            index,
            float(self._fps) / self.stride,
            folder=Path(self._folder),
            length=None,
            episode_index=episode_index,
            first_step=first_step,
            metadata=metadata,
            source=source,
        )
        if not self.owned:  # (a private Recorder's close() raises the errors itself)
            pending = self._pending
            while pending and pending[0].done():
                self._note(pending.popleft())
            pending.append(clip.handle)
        return clip

    def _note(self, handle: ClipHandle) -> None:
        """Keep the error of *handle*, done, for close() if it failed."""
        error = _failed(handle)
        if error is None:
            return
        if len(self._errors) < MAX_ERRORS:
            self._errors.append(error)
        else:
            self._more_errors += 1

    def abandon(self) -> None:
        """The wrapper went away without close(): a private Recorder closes itself once idle
        (its open clip is saved). Takes no lock: called by ``__del__``."""
        if self.owned:
            self.recorder._service.abandon()

    def close(self) -> None:
        """Wait until this wrapper's videos are on disk; raise the error of any that failed.

        A private Recorder is closed; a shared one is left open (its other users go on).
        """
        if self.owned:
            if not self.recorder._service.forked:  # the parent's to close
                self.recorder.close()
            return
        handles, self._pending = list(self._pending), collections.deque()
        if self.recorder._service.forked:
            return  # the parent's videos: no thread here would ever finish them
        concurrent.futures.wait(handles)
        for handle in handles:
            self._note(handle)
        errors, more, self._errors, self._more_errors = self._errors, self._more_errors, [], 0
        if len(errors) == 1:
            raise errors[0]
        if errors:
            failed = f"{len(errors) + more} videos failed"
            raise BaseExceptionGroup(
                failed + (f" (the first {len(errors)} here)" if more else ""), errors
            )


#: set while a wrapper is rebuilt as a copy: the wrapper it copies warned already.
copying: contextvars.ContextVar[bool] = contextvars.ContextVar("copying", default=False)


def _warn_existing(video_folder: str) -> None:
    if os.path.isdir(video_folder) and not copying.get():
        gym_logger.warn(
            "Overwriting existing videos at %s folder (try specifying a different "
            "`video_folder` for the `RecordVideo` wrapper if this is not desired)",
            video_folder,
        )


def _failed(handle: ClipHandle) -> BaseException | None:
    """The error of a finished clip that failed (a dropped clip did not fail)."""
    if not handle.done() or handle.cancelled():
        return None
    error = handle.exception()
    return None if isinstance(error, ClipDroppedError) else error


class Track:
    """One recording slot: gymnasium's ``recording`` / ``recorded_frames`` / ``_video_name``.

    The Recorder's clip is opened at the first frame, so a recording that captures nothing
    leaves no file, as in gymnasium.
    """

    __slots__ = (
        "_clip",
        "_episode",
        "_first_step",
        "_index",
        "_kind",
        "_metadata",
        "frames",
        "name",
        "recording",
        "sink",
    )

    def __init__(self, sink: ClipSink) -> None:
        self.sink = sink
        self.recording = False
        self.name: str | None = None
        self.frames = 0
        self._kind: ClipKind = "clip"
        self._index: int | None = None
        self._episode: int | None = None
        self._first_step: int | None = None
        self._metadata: dict[str, Any] | None = None
        self._clip: Clip | None = None

    def start(
        self,
        name: str,
        kind: ClipKind = "clip",
        index: int | None = None,
        *,
        episode: int | None = None,
        first_step: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Start recording *name*, ending the current recording first.

        Args:
            name: the file name without extension.
            kind, index: what the name says (``"episode"``/``"step"`` and its index).
            episode, first_step: where the clip starts, for the Recorder's VideoInfo.
            metadata: the clip's sidecar metadata, read when the clip ends (the wrapper adds
                the episode's return to it).
        """
        if self.recording:
            self.stop()
        check_name_prefix(name, MAX_NAME_BYTES, "a clip name")
        self.recording = True
        self.name = name
        self._kind = kind
        self._index = index
        self._episode = episode
        self._first_step = first_step
        self._metadata = metadata

    def rename(self, name: str) -> None:
        """Name the current recording *name* instead (gymnasium's ``_video_name`` assigned),
        if no frame of it is queued yet; else it keeps its name, with a warning."""
        check_name_prefix(name, MAX_NAME_BYTES, "a clip name")
        if self._clip is not None:
            gym_logger.warn(
                f"_video_name set to {name!r} once the clip {self.name!r} had frames: its file "
                "keeps its name (set it in start_recording, before the first frame)"
            )
            return
        self.name = name

    def cut_by_length(self) -> None:
        """The clip ends now because of video_length, not with its episode (see Clip)."""
        if self._clip is not None:
            self._clip.cut_by_length = True

    def stop(self) -> None:
        """End the current recording; its video is finished in the background."""
        assert self.recording, "stop_recording was called, but no recording was started"
        if self.frames == 0:
            gym_logger.warn("Ignored saving a video as there were zero frames to save.")
        if self._clip is not None:
            self.sink.recorder._service.end_clip(self._clip)
        self._clip = None
        self.frames = 0
        self.recording = False
        self.name = None

    @property
    def wants_frame(self) -> bool:
        """Whether the clip needs a rendered frame (False once the Recorder dropped it).

        A clip open when the process forked is the parent's: a child skips its frames.
        """
        clip = self._clip
        if self.frames % self.sink.stride:
            return False  # between the frames a frame stride records
        return self.recording and (clip is None or (clip.accepting and not self.sink.stale))

    @property
    def clip(self) -> Clip | None:
        """The Recorder's clip of the current recording, once it has a frame."""
        return self._clip

    @property
    def open(self) -> bool:
        """Whether a clip with frames is open."""
        return self._clip is not None

    def add(self, frame: Any, info: Checked | None = None) -> None:
        """Capture *frame* (validated and copied now) and its *info* (as ``check_info`` returns
        it) into the current clip."""
        assert self.recording, "Cannot capture a frame, recording wasn't started."
        if (self._clip is not None and self.sink.stale) or self.frames % self.sink.stride:
            self.frames += 1  # the parent's clip (see wants_frame), or one a stride passes
            return
        if self._clip is None:
            assert self.name is not None
            self._clip = self.sink.open(
                self.name,
                self._kind,
                self._index,
                self._episode,
                self._first_step,
                self._metadata,
                source=self,  # the slot numbers its episodes: the keep policy's key
            )
        self.sink.recorder._service.append_frame([self._clip], frame, info)
        self.frames += 1

    def skip(self) -> None:
        """Count a frame the clip does not want (a stride passes it, or the clip was dropped):
        the clip cut stays put."""
        self.frames += 1

    def offer(
        self,
        render: Callable[[], Any],
        info: Callable[[], Checked | None] | None = None,
    ) -> bool:
        """Capture ``render()`` (with the info ``info()``) if the clip wants a frame, else
        :meth:`skip`; True if rendered."""
        if not self.wants_frame:
            self.skip()  # dropped by the Recorder, or between strided frames: no render
            return False
        self.add(render(), None if info is None else info())
        return True
