"""``recorder.wrappers.RecordVideo``: gymnasium's RecordVideo, encoding in the background."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import logger as gym_logger
from gymnasium.core import ActType, ObsType, RenderFrame

from recorder._base.info import Checked, Overlay, reward_of
from recorder._base.results import VideoInfo
from recorder._front.recorder import Recorder
from recorder.wrappers._common import RecordingWrapper, record_constructor_args
from recorder.wrappers._info import step_info


class RecordVideo(
    gym.Wrapper[ObsType, ActType, ObsType, ActType],
    Generic[ObsType, ActType],
    gym.utils.RecordConstructorArgs,
    RecordingWrapper,
):
    """Records videos of episodes, like :class:`gymnasium.wrappers.RecordVideo`, without blocking.

    A drop-in replacement: the same arguments, attributes, clips and file names
    (``{name_prefix}-episode-{i}.mp4``, ``{name_prefix}-step-{i}.mp4``). ``episode_trigger``
    starts a clip at a reset, ``step_trigger`` after a step (step indices count over all
    episodes); with neither, :func:`recorder.capped_cubic_video_schedule`. With
    ``video_length=0`` a clip ends at the next reset; with ``n > 0`` it ends once it holds
    ``n + 1`` frames (gymnasium's rule), spanning episodes if need be. A new trigger ends the
    current clip.

    The difference: ``step()`` and ``reset()`` only render the frame a clip needs (never when
    no clip is recording) and hand it to a :class:`recorder.Recorder`, which copies it and
    encodes it on a worker thread. ``close()`` returns once this wrapper's videos are on disk
    and raises the error of one that failed. moviepy is not needed.

    By default the wrapper has a private Recorder with ``on_full="block"``: when its
    ``max_queue_bytes`` are full, ``step()`` waits for the encoder rather than dropping a clip,
    so every triggered clip is saved, as with gymnasium. Pass ``recorder=`` to share one
    Recorder (one memory budget, one set of workers) between many wrapped environments; its
    own ``on_full`` then applies (its default ``"drop"`` may drop clips when the budget is
    full; pass ``on_full="block"`` to it to keep every clip).

    Differences from gymnasium, by design:

    * ``recorded_frames`` is the number of frames captured into the current clip (an int):
      the frames are in the Recorder's queue or already encoded, not in a list.
    * ``gc_trigger`` defaults to None: no frames are held, so there is nothing for
      ``gc.collect()`` to free. A trigger given is honoured as gymnasium does (after a clip).
    * ``disable_logger`` is kept as an attribute; there is no moviepy logger.
    * ``frames_per_sec`` and ``video_folder`` assigned later are read when a clip captures its
      first frame (gymnasium: when it writes the clip, at its end), since frames are encoded
      as they come: assigned while a clip records, they apply from the next one.
    * gymnasium's files lose their last frame for many clip lengths (moviepy writes
      ``int(n * (1 / fps) * fps)`` frames, rounding the float sum down); ours have every
      frame captured.

    Args:
        env: the environment; its render mode must give images (``rgb_array``...).
        video_folder: where the videos go.
        episode_trigger: ``episode_id -> bool``: record from this episode's reset.
        step_trigger: ``step_id -> bool``: record from this step.
        video_length: 0: clips end at the next reset; n > 0: clips of n + 1 frames.
        name_prefix: file names are ``{name_prefix}-episode-{i}`` / ``-step-{i}``.
        fps: frames per second; default ``env.metadata["render_fps"]``, else 30.
        disable_logger: kept for compatibility (no moviepy logger).
        gc_trigger: ``episode_id -> bool``: ``gc.collect()`` after a clip ends if True.
        recorder: a shared :class:`recorder.Recorder`; the videos still go to *video_folder*;
            ``close()`` then waits for this wrapper's clips only and leaves the Recorder open.
        recorder_kwargs: settings of the private Recorder (``workers``, ``max_queue_bytes``,
            ``on_full``, ``codec``, ``crf``, ``preset``, ``on_saved``, ``sidecars``...);
            defaults ``on_full="block"`` and ``sidecars=False`` (gymnasium's files only).
        on_saved: called on a worker thread with the :class:`recorder.VideoInfo` of each
            video this wrapper saves (to log it to TensorBoard or W&B, say); an exception it
            raises is reported like an encoding error, by ``close()``. With a shared
            ``recorder``, give it to that Recorder instead.
        record_info: give each recorded frame its info: ``step`` (``step_id``; None for a
            reset frame), ``reward``, ``return`` (the episode's so far, as
            ``RecordEpisodeStatistics`` counts it) and ``action`` (when a number or a vector of
            at most 32). The Recorder writes it beside each video as ``{name}.timeline.json``
            and ``{name}.vtt`` when it writes sidecars (a shared Recorder's default; for the
            private one, ``recorder_kwargs={"sidecars": True}``), and draws it with
            *overlay*; otherwise no info is made. False: none.
        overlay: draw the frames' info onto the videos (the private Recorder's ``overlay``,
            e.g. ``("step", "reward", "return")``; see :class:`recorder.Recorder`). With a
            shared ``recorder``, give it to that Recorder instead.
        frame_stride: record every k-th frame of each clip (its first, then every k-th: the
            reset frame first), at ``fps / k``: the frames between are not rendered, and
            ``video_length`` still counts the steps a clip spans. None: a shared
            ``recorder``'s own ``frame_stride`` (1 for the private Recorder).

    Raises:
        ValueError: the render mode gives no image (None, ``"human"``, ``"ansi"``), or a bad
            argument.
        TypeError: a bad argument.
    """

    def __init__(
        self,
        env: gym.Env[ObsType, ActType],
        video_folder: str,
        episode_trigger: Callable[[int], bool] | None = None,
        step_trigger: Callable[[int], bool] | None = None,
        video_length: int = 0,
        name_prefix: str = "rl-video",
        fps: float | None = None,
        disable_logger: bool = True,
        gc_trigger: Callable[[int], bool] | None = None,
        *,
        recorder: Recorder | None = None,
        recorder_kwargs: Mapping[str, Any] | None = None,
        on_saved: Callable[[VideoInfo], object] | None = None,
        record_info: bool = True,
        overlay: Overlay = None,
        frame_stride: int | None = None,
    ) -> None:
        given = record_constructor_args(self, locals())  # before any other local
        gym.Wrapper.__init__(self, env)
        self._init_triggers(env.render_mode, **given)
        self._init_clips(self.metadata, **given)
        # The episode's return, for a keep policy (Recorder(keep=...)): reported at its end.
        self._return = 0.0
        self._episode_recorded = False
        # The sidecar metadata of the episode's clip: its return lands there at the episode's
        # end when the clip is still open then (a whole-episode clip ends at the next reset).
        self._episode_metadata: dict[str, Any] = {}
        # The last step's index, reward and action, for the next frame's info (None: a reset).
        self._last_step: tuple[int | None, float | None, Any] = (None, None, None)

    def _capture_frame(self) -> None:
        assert self.recording, "Cannot capture a frame, recording wasn't started."
        track = self._track
        if not track.wants_frame:
            track.skip()  # the Recorder dropped this clip: do not render for it
            return
        frame = self.env.render()
        if isinstance(frame, list):
            if len(frame) == 0:
                gym_logger.warn(
                    "Trying to capture render frame but 'env.render()' has just been called. "
                    "The frame cannot be captured."
                )
                return
            self.render_history += frame
            frame = frame[-1]
        if isinstance(frame, np.ndarray):
            track.add(frame, self._frame_info())
        else:
            self.stop_recording()
            gym_logger.warn(
                "Recording stopped: expected type of frame returned by render to be a numpy "
                "array, got instead %s.",
                type(frame),
            )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset the environment; start a clip if episode_trigger says so."""
        obs, info = super().reset(seed=seed, options=options)
        self._episode_over()
        self._last_step = (None, None, None)
        self.episode_id += 1
        before = self._track.name if self.recording else None  # a clip going on from before
        self._episode_metadata = {}
        self._episode_begins(
            self._track,
            self.name_prefix,
            self.episode_id,
            self.stop_recording,
            self._episode_metadata,
        )
        self._episode_recorded = self.recording and self._track.name != before
        if self.recording:
            self._capture_frame()
            if self.recorded_frames > self.video_length:
                self._track.cut_by_length()
                self.stop_recording()
        return obs, info

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the environment; capture a frame if a clip is recording."""
        obs, rew, terminated, truncated, info = self.env.step(action)
        self.step_id += 1
        reward = reward_of(rew)  # NaN for a vector reward: the return is not a number then
        self._return += reward
        self._last_step = (self.step_id, reward, action)
        if self.step_trigger and self.step_trigger(self.step_id):
            self._step_begins(self.name_prefix, self.episode_id)
            self._episode_recorded = True
        if self.recording:
            self._capture_frame()
            if self.recorded_frames > self.video_length:
                self._track.cut_by_length()
                self.stop_recording()
        return obs, rew, terminated, truncated, info

    def render(self) -> RenderFrame | list[RenderFrame] | None:
        """Render the environment; frames collected since the last call come first.

        As in gymnasium: when the environment renders lists (``RenderCollection`` below this
        wrapper), the frames this wrapper took for its clips are returned too, and a list
        rendered while recording is added to the clip.
        """
        render_out = super().render()
        if self.recording and isinstance(render_out, list):
            for frame in render_out:
                self._track.add(frame)
        if len(self.render_history) > 0:
            tmp_history = self.render_history
            self.render_history = []
            if isinstance(render_out, list):
                return tmp_history + render_out
            return tmp_history if render_out is None else [*tmp_history, render_out]
        return render_out

    def close(self) -> None:
        """Close the environment, then wait until this wrapper's videos are on disk.

        Raises:
            Exception: the error of a video that failed (an ExceptionGroup for several).
        """
        try:
            super().close()
        finally:
            try:
                self._episode_over()  # first, as at a reset: the open clip tells if dropped
                if self.recording:
                    self.stop_recording()  # (its gc_trigger may raise)
            finally:
                self._sink.close()

    def _frame_info(self) -> Checked | None:
        """The info of the frame captured now, if frames get one."""
        if not self._infos_wanted:
            return None
        step, reward, action = self._last_step
        return step_info(step, reward, self._return, action)

    def _episode_over(self) -> None:
        """The episode that made clips is over: its return scores it (for keep)."""
        self._episode_metadata["return"] = self._return
        clip = self._track.clip
        dropped = clip is not None and clip.dropped  # no video: not ranked
        if self._episode_recorded and not self._sink.stale and not dropped:
            self._sink.recorder._service.episode_ended(
                self.episode_id, {"return": self._return}, self._track
            )
        self._episode_recorded = False
        self._return = 0.0

    def start_recording(self, video_name: str) -> None:
        """Start recording the clip *video_name* (no extension), ending the current one."""
        if self.recording:  # as gymnasium does: a subclass's stop_recording sees it end
            self.stop_recording()
        self._start_track(self._track, video_name)

    def stop_recording(self) -> None:
        """End the current clip: it is finished in the background."""
        self._track.stop()
        self._collect_garbage()

    def __del__(self) -> None:
        """Warn when the wrapper goes away with a clip open (close() was not called)."""
        # Runs on half-built wrappers too (when __init__ raised): read attributes defensively.
        # No lock is taken here: __del__ may run on any thread, inside any critical section.
        track, sink = getattr(self, "_track", None), getattr(self, "_sink", None)
        try:
            if track is not None and track.open:
                gym_logger.warn(
                    "RecordVideo was not closed: its last video %s is finished in the "
                    "background (a shared Recorder's: when it closes). Did you call close()?",
                    track.name,
                )
        finally:  # the warning raises under -W error (pytest's filterwarnings = error)
            if sink is not None:
                sink.abandon()
