"""What both RecordVideo wrappers do: gymnasium's argument rules, and the clips' start and end."""

from __future__ import annotations

import copy
import gc
import math
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.core import RenderFrame

from recorder._base.info import Overlay
from recorder._base.results import VideoInfo
from recorder._base.schedule import capped_cubic_video_schedule
from recorder._base.validate import check_callable, check_fps, check_name_prefix
from recorder._front.recorder import Recorder
from recorder._service.service import Keep
from recorder.wrappers._clips import ClipSink, Track, copying


def check_render_mode(render_mode: str | None) -> None:
    """Raise gymnasium's ValueError for a render mode that gives no image."""
    if render_mode in {None, "human", "ansi"}:
        raise ValueError(
            f"Render mode is {render_mode}, which is incompatible with RecordVideo. "
            "Initialize your environment with a render_mode that returns an image, such as "
            "rgb_array."
        )


def resolve_fps(fps: float | None, metadata: Mapping[str, Any]) -> float:
    """gymnasium's rule: *fps*, else ``metadata["render_fps"]``, else 30."""
    if fps is None:
        fps = metadata.get("render_fps", 30)
        if fps is None:  # some envs declare the key without a value; gymnasium would crash later
            fps = 30
    check_fps(fps)
    return fps


def resolve_video_length(video_length: int) -> float:
    """gymnasium's ``video_length``: 0 means whole episodes (``inf``), n > 0 clips of n + 1 frames.

    gymnasium stops a clip once it holds *more* than video_length frames; so do we. A float
    that is a whole number (``100.0``, which gymnasium takes too) counts as that int.
    """
    if isinstance(video_length, float | np.floating) and float(video_length).is_integer():
        video_length = int(video_length)
    if isinstance(video_length, bool) or not isinstance(video_length, int | np.integer):
        raise TypeError(f"video_length must be an int (0: whole episodes), got {video_length!r}")
    if video_length < 0:
        raise ValueError(f"video_length must be >= 0 (0: whole episodes), got {video_length}")
    return int(video_length) if video_length != 0 else math.inf


def keeps(recorder: Recorder | None, recorder_kwargs: Mapping[str, Any] | None) -> bool:
    """Whether the wrapper's Recorder (shared, or private with these settings) has a keep
    policy that ranks episodes (best or worst; a byte quota alone ranks nothing)."""
    if recorder is not None:
        # Anything else is refused by ClipSink, with the error that names the argument.
        return isinstance(recorder, Recorder) and recorder._service.keeps
    keep = recorder_kwargs.get("keep") if recorder_kwargs else None
    if keep is None:
        return False
    try:
        return Keep.of(keep).ranks
    except (TypeError, ValueError):
        return True  # the Recorder says what is wrong with it


def record_constructor_args(wrapper: Any, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Save *wrapper*'s constructor arguments for gymnasium's ``RecordConstructorArgs``.

    Args:
        wrapper: the wrapper being built.
        arguments: its ``__init__``'s ``locals()`` on entry (``self`` and ``env`` are left out).

    Returns:
        The arguments, as given (not copied), for :meth:`RecordingWrapper._init_triggers`
        and :meth:`RecordingWrapper._init_clips`.
    """
    given = {k: v for k, v in arguments.items() if k not in ("self", "env", "__class__")}
    # A shared Recorder is saved by reference (it holds locks and threads), last; the rest is
    # deep-copied, as gymnasium does.
    recorder = given.pop("recorder")
    saved = _copied(given, {})  # (on_saved=trainer.log, a trainer holding a lock: as given)
    gym.utils.RecordConstructorArgs.__init__(
        wrapper, _disable_deepcopy=True, **saved, recorder=recorder
    )
    given["recorder"] = recorder
    return given


def _every_episode(_episode: int) -> bool:
    """The trigger under a keep policy: every episode is a candidate (a function, to pickle)."""
    return True


def _rebuilt(cls: Any, env: Any, kwargs: dict[str, Any], episode_id: int, step_id: int) -> Any:
    """A RecordVideo wrapper of *cls* rebuilt around *env* (a copy, or unpickled)."""
    token = copying.set(True)  # per thread: no global warnings filter to change
    try:
        wrapper = cls(env, **kwargs)
    finally:
        copying.reset(token)
    wrapper.episode_id, wrapper.step_id = episode_id, step_id
    return wrapper


def _copied(kwargs: dict[str, Any], memo: dict[int, Any]) -> dict[str, Any]:
    """*kwargs* deep-copied value by value; one that cannot be (an object holding a lock) is
    kept as it is, as the constructor keeps it."""
    copied = {}
    for key, value in kwargs.items():
        try:
            copied[key] = copy.deepcopy(value, memo)
        except Exception:
            copied[key] = value
    return copied


class RecordingWrapper:
    """The part of a RecordVideo wrapper that its env type does not change.

    The settings and counters gymnasium's wrappers expose, the Recorder behind them, and
    gymnasium's rules for where clips start and end. Subclasses pass the arguments that
    :func:`record_constructor_args` returns to :meth:`_init_triggers`, then to
    :meth:`_init_clips` (last: a wrapper that failed to build leaves no worker thread).
    """

    episode_trigger: Callable[[int], bool] | None
    step_trigger: Callable[[int], bool] | None
    disable_logger: bool
    gc_trigger: Callable[[int], bool] | None
    name_prefix: str
    video_length: float
    render_history: list[RenderFrame]
    record_info: bool
    step_id: int
    episode_id: int
    _sink: ClipSink
    _track: Track
    _starting: dict[str, Any] | None = None  # a trigger's clip starting (see _trigger_starts)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """A new wrapper around a copy of the env, of its arguments as they stand (see
        :meth:`_state`), with no clip open (a private Recorder of its own, or the same shared
        one)."""
        kwargs, episode_id, step_id = self._state()
        env = copy.deepcopy(self.env, memo)  # type: ignore[attr-defined]
        return _rebuilt(type(self), env, _copied(kwargs, memo), episode_id, step_id)

    def __reduce__(self) -> Any:
        """Pickled as :meth:`__deepcopy__` copies: a shared Recorder cannot be pickled."""
        return _rebuilt, (type(self), self.env, *self._state())  # type: ignore[attr-defined]

    def _state(self) -> tuple[dict[str, Any], int, int]:
        """The constructor's arguments as the wrapper stands now (gymnasium's attributes may
        be assigned after it was made), its episode and its step."""
        kwargs = dict(self._saved_kwargs)  # type: ignore[attr-defined]
        kwargs.update(
            video_folder=self.video_folder,
            episode_trigger=self.episode_trigger,
            step_trigger=self.step_trigger,
            video_length=0 if math.isinf(self.video_length) else int(self.video_length),
            name_prefix=self.name_prefix,
            fps=self.frames_per_sec,
            disable_logger=self.disable_logger,
            gc_trigger=self.gc_trigger,
            record_info=self.record_info,
        )
        return kwargs, self.episode_id, self.step_id

    def start_recording(self, video_name: str) -> None:
        """Start recording the clip *video_name* (each wrapper's own)."""
        raise NotImplementedError

    def _init_triggers(
        self,
        render_mode: str | None,
        *,
        episode_trigger: Callable[[int], bool] | None,
        step_trigger: Callable[[int], bool] | None,
        disable_logger: bool,
        gc_trigger: Callable[[int], bool] | None,
        recorder: Recorder | None = None,
        recorder_kwargs: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> None:
        """Check the render mode; set the triggers (gymnasium's default schedule)."""
        check_render_mode(render_mode)
        check_callable("gc_trigger", gc_trigger)  # else it fails at the first clip's end
        if episode_trigger is None and step_trigger is None:
            # With a keep policy every episode is a candidate, as for a Recorder.
            keep = keeps(recorder, recorder_kwargs)
            episode_trigger = _every_episode if keep else capped_cubic_video_schedule
        self.episode_trigger = episode_trigger
        self.step_trigger = step_trigger
        self.disable_logger = disable_logger
        self.gc_trigger = gc_trigger

    def _init_clips(
        self,
        metadata: Mapping[str, Any],
        *,
        video_folder: str,
        video_length: int,
        name_prefix: str,
        fps: float | None,
        recorder: Recorder | None,
        recorder_kwargs: Mapping[str, Any] | None,
        on_saved: Callable[[VideoInfo], object] | None,
        record_info: bool = True,
        overlay: Overlay = None,
        frame_stride: int | None = None,
        **_: Any,
    ) -> None:
        """Check the clip settings; open the Recorder (private or shared) and the track."""
        folder = os.path.abspath(video_folder)
        fps = resolve_fps(fps, metadata)
        self.name_prefix = check_name_prefix(name_prefix)
        self.video_length = resolve_video_length(video_length)
        self.render_history = []
        self.record_info = bool(record_info)
        self.step_id = -1
        self.episode_id = -1
        self._sink = ClipSink(
            folder, fps, recorder, recorder_kwargs, on_saved, overlay, frame_stride
        )
        self._track = Track(self._sink)

    # gymnasium reads these two when it writes a clip, at its end; a clip here is encoded as
    # its frames come, so they are read when it opens (docs/gymnasium.md).

    @property
    def frames_per_sec(self) -> float:
        """Frames per second; a value assigned applies from the next clip's first frame."""
        return self._sink.fps

    @frames_per_sec.setter
    def frames_per_sec(self, fps: float) -> None:
        self._sink.fps = fps

    @property
    def video_folder(self) -> str:
        """Where the videos go; a folder assigned is created now, used from the next clip's
        first frame."""
        return self._sink.folder

    @video_folder.setter
    def video_folder(self, folder: str) -> None:
        self._sink.folder = folder

    @property
    def recorder(self) -> Recorder:
        """The Recorder that encodes this wrapper's videos."""
        return self._sink.recorder

    @property
    def _infos_wanted(self) -> bool:
        """Whether frames get their info: record_info, and the Recorder writes or draws it."""
        return self.record_info and self._sink.recorder._service.keeps_info

    @property
    def recording(self) -> bool:
        """Whether a clip is being recorded (vector with per_env: any sub-environment's)."""
        return any(track.recording for track in self._tracks())

    @property
    def recorded_frames(self) -> int:
        """Frames captured into the current clip so far (vector with per_env: summed)."""
        return sum(track.frames for track in self._tracks())

    @property
    def _video_name(self) -> str | None:
        """The current clip's file name without extension, None when not recording (as
        gymnasium's, which subclasses read in ``stop_recording``, or set in
        ``start_recording`` to name the clip)."""
        track = self._recording_track()
        return None if track is None else track.name

    @_video_name.setter
    def _video_name(self, name: str | None) -> None:
        track = self._recording_track()
        if name is not None and track is not None:  # None: gymnasium's own reset at a stop
            track.rename(name)

    def _recording_track(self) -> Track | None:
        """The first of :meth:`_tracks` recording now, if any."""
        return next((track for track in self._tracks() if track.recording), None)

    def _tracks(self) -> Iterable[Track]:
        """The tracks that ``recording`` and ``recorded_frames`` speak of."""
        return (self._track,)

    def _episode_begins(
        self,
        track: Track,
        prefix: str,
        episode: int,
        stop: Callable[[], None],
        metadata: dict[str, Any] | None = None,
        env_index: int | None = None,
    ) -> None:
        """A new episode: a whole-episode clip ends (*stop*), the trigger may start one."""
        if track.recording and self.video_length == math.inf:
            stop()
        if self.episode_trigger and self.episode_trigger(episode):
            how = {"kind": "episode", "index": episode, "episode": episode, "metadata": metadata}
            self._trigger_starts(f"{prefix}-episode-{episode}", env_index, how)

    def _step_begins(self, prefix: str, episode: int, env_index: int | None = None) -> None:
        """The step trigger fired: a clip named after this step starts (*env_index*'s)."""
        step = self.step_id
        how = {"kind": "step", "index": step, "episode": max(episode, 0), "first_step": step}
        self._trigger_starts(f"{prefix}-step-{step}", env_index, how)

    def _trigger_starts(self, name: str, env_index: int | None, how: dict[str, Any]) -> None:
        """A trigger starts the clip *name*: through ``start_recording``, as gymnasium's
        triggers do, so a subclass's ``start_recording`` (and ``stop_recording``, for the clip
        it ends) sees every clip; *how* (kind, index...) rides along for it."""
        self._starting = how
        try:
            if env_index is None:
                self.start_recording(name)
            else:
                self.start_recording(name, env_index=env_index)  # type: ignore[call-arg]
        finally:
            self._starting = None

    def _start_track(self, track: Track, video_name: str) -> None:
        """``start_recording``'s own part: *track* starts *video_name* (as a trigger's clip
        when a trigger started it, else a clip named freely)."""
        how, self._starting = self._starting or {}, None
        track.start(video_name, **how)

    def _collect_garbage(self) -> None:
        """After a clip ends: ``gc.collect()`` if gc_trigger says so."""
        if self.gc_trigger and self.gc_trigger(self.episode_id):
            gc.collect()
