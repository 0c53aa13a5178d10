"""``recorder.wrappers.vector.RecordVideo``: gymnasium's vector RecordVideo, in the background."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import logger as gym_logger
from gymnasium.core import ActType, ObsType, RenderFrame
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from recorder._base.info import Checked, Overlay
from recorder._base.kept import kept
from recorder._base.results import VideoInfo
from recorder._front.recorder import Recorder
from recorder.wrappers._clips import Track
from recorder.wrappers._common import RecordingWrapper, keeps, record_constructor_args
from recorder.wrappers._info import VectorReturns
from recorder.wrappers._per_env import EnvTracks, env_indices
from recorder.wrappers._tiling import Tiler, grid_shape

__all__ = ["RecordVideo", "grid_shape"]

Array = np.ndarray[Any, Any]


class RecordVideo(
    VectorWrapper[ObsType, ActType, ObsType, ActType, Array],
    gym.utils.RecordConstructorArgs,
    RecordingWrapper,
):
    """Records videos of a vector environment like gymnasium's vector RecordVideo, without blocking.

    A drop-in replacement for :class:`gymnasium.wrappers.vector.RecordVideo`: the frames of
    the sub-environments are tiled into one video frame whose aspect ratio is as close as
    possible to ``video_aspect_ratio`` (or only sub-environment 0 with
    ``record_first_only``); episodes are those of sub-environment 0, counted under each
    :class:`gymnasium.vector.AutoresetMode`; names, triggers, ``video_length`` and fps are
    as in :class:`recorder.wrappers.RecordVideo`. With same-step autoreset, the last frame
    of an episode is not in its video (the sub-environment has already reset).

    Beyond gymnasium:

    * ``per_env=True`` records each sub-environment's episodes as separate videos,
      ``{name_prefix}-env-{j}-episode-{i}.mp4`` where ``i`` counts sub-environment ``j``'s own
      episodes (right under next-step, same-step and disabled autoreset, and partial resets
      with ``options={"reset_mask": ...}``); a step trigger starts
      ``{name_prefix}-env-{j}-step-{s}.mp4`` for each. ``per_env=[0, 3]`` records only those
      sub-environments.
    * Tiling works for any number of sub-environments: where gymnasium can only make a
      1xN strip (N prime), the grid is padded with black tiles (e.g. 5 CartPoles at 1:1 make
      2x3 tiles). For other N the layout is gymnasium's.

    Tiling (a copy of each sub-frame into one reused buffer) runs on the caller's thread,
    when a clip needs the frame; encoding runs on the Recorder's workers. See
    :class:`recorder.wrappers.RecordVideo` for ``recorder``, ``recorder_kwargs``, ``on_saved``,
    ``recorded_frames``, ``gc_trigger`` and the private Recorder's lossless default.

    Args:
        env: the vector environment; its render mode must give images.
        video_folder: where the videos go.
        video_aspect_ratio: the desired (width, height) ratio of tiled frames.
        record_first_only: record sub-environment 0 only (no tiling).
        episode_trigger: ``episode_id -> bool``: record from this episode's reset.
        step_trigger: ``step_id -> bool``: record from this vector step.
        video_length: 0: clips end at the next reset; n > 0: clips of n + 1 frames.
        name_prefix: prefix of the file names.
        fps: frames per second; default ``env.metadata["render_fps"]``, else 30.
        disable_logger: kept for compatibility (no moviepy logger).
        gc_trigger: ``episode_id -> bool``: ``gc.collect()`` after a clip ends if True.
        per_env: False: tiled videos (gymnasium's); True: one video per sub-environment;
            indices: only those sub-environments, separately.
        recorder: a shared :class:`recorder.Recorder` (see :class:`recorder.wrappers.RecordVideo`).
        recorder_kwargs: settings of the private Recorder (defaults ``on_full="block"``,
            ``sidecars=False``).
        on_saved, overlay: as :class:`recorder.wrappers.RecordVideo`.
        record_info: as :class:`recorder.wrappers.RecordVideo`: the info of a tiled frame is
            sub-environment 0's (whose episodes the videos follow); with ``per_env``, each
            video's is its sub-environment's. ``step`` is the vector step (``step_id``).
        frame_stride: record every k-th frame of each clip (see
            :class:`recorder.wrappers.RecordVideo`).

    Raises:
        ValueError: the render mode gives no image, bad indices, ``per_env`` with
            ``record_first_only``, or another bad argument.
        TypeError: a bad argument.
    """

    def __init__(
        self,
        env: VectorEnv[ObsType, ActType, Array],
        video_folder: str,
        video_aspect_ratio: tuple[float, float] = (1, 1),
        record_first_only: bool = False,
        episode_trigger: Callable[[int], bool] | None = None,
        step_trigger: Callable[[int], bool] | None = None,
        video_length: int = 0,
        name_prefix: str = "rl-video",
        fps: float | None = None,
        disable_logger: bool = True,
        gc_trigger: Callable[[int], bool] | None = None,
        *,
        per_env: bool | Iterable[int] = False,
        recorder: Recorder | None = None,
        recorder_kwargs: Mapping[str, Any] | None = None,
        on_saved: Callable[[VideoInfo], object] | None = None,
        record_info: bool = True,
        overlay: Overlay = None,
        frame_stride: int | None = None,
    ) -> None:
        VectorWrapper.__init__(self, env)
        if isinstance(per_env, Iterable) and not isinstance(per_env, str | bytes):
            per_env = tuple(per_env)  # a generator is read once, and saved below as a tuple
        given = record_constructor_args(self, locals())  # before any other local
        if keeps(recorder, recorder_kwargs):
            raise ValueError(
                "keep is not supported by the vector RecordVideo yet: use the single-env "
                "RecordVideo on each env, or Recorder.episode()"
            )
        self._init_triggers(env.render_mode, **given)

        autoreset_mode = env.metadata.get("autoreset_mode", None)
        if autoreset_mode is not None:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        else:
            gym_logger.warn(
                "%s metadata doesn't specify its autoreset mode (%r), therefore, defaulting "
                "to next step.",
                env,
                env.metadata,
            )
            self.autoreset_mode = AutoresetMode.NEXT_STEP
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            gym_logger.warn(
                "Vector environment's autoreset mode is same-step "
                "(https://farama.org/Vector-Autoreset-Mode). Recorded episodes will not "
                "contain the last frame of the episode."
            )
        self.has_autoreset = False

        self.record_first_only = record_first_only
        self.video_aspect_ratio = video_aspect_ratio
        self._tiler = Tiler(video_aspect_ratio)
        self.frame_cols = -1
        self.frame_rows = -1
        self.per_env: tuple[int, ...] | None = env_indices(per_env, self.num_envs)
        if self.per_env is not None and record_first_only:
            raise ValueError("per_env and record_first_only exclude each other")

        self._init_clips(self.metadata, **given)
        # self._track is the tiled video (gymnasium's); these, per_env's.
        self._envs = EnvTracks(self.per_env or (), self.num_envs, self._sink)
        self._returns = VectorReturns(self.num_envs, self.autoreset_mode)

    # -- attributes ---------------------------------------------------------------------------

    def _tracks(self) -> Iterable[Track]:
        return (self._track,) if self.per_env is None else self._envs.tracks.values()

    @property
    def env_episode_ids(self) -> tuple[int, ...]:
        """With per_env: each sub-environment's current episode index (-1 before reset)."""
        return tuple(int(e) for e in self._envs.episodes)

    # -- the environment API --------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset the environments; start clips if episode_trigger says so."""
        # Read the mask now: SyncVectorEnv pops it from options.
        mask = None
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], dtype=bool)
        self._returns.reset(mask)
        if mask is None or mask[0]:
            self.episode_id += 1
            if self.per_env is None:
                self._episode_begins(
                    self._track, self.name_prefix, self.episode_id, self.stop_recording
                )
        reset_envs: list[int] = []
        if self.per_env is not None:
            reset_envs = self._envs.reset(mask)
            for j in reset_envs:
                self._new_episode(j)

        obs, info = super().reset(seed=seed, options=options)

        if self.per_env is None:
            if self.recording:
                self._capture_tiled()
        else:
            # A sub-environment left out of a partial reset did not move: no frame for it.
            self._capture_envs(reset_envs)
        self.has_autoreset = False
        return obs, info

    def step(self, actions: ActType) -> tuple[ObsType, Array, Array, Array, dict[str, Any]]:
        """Step the environments; capture frames for the clips recording."""
        obs, rewards, terminations, truncations, info = self.env.step(actions)
        self.step_id += 1
        if self._infos_wanted:
            self._returns.step(self.step_id, rewards, terminations, truncations, actions)

        # gymnasium's episode_id follows sub-environment 0.
        started0 = False
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            started0 = self.has_autoreset
            self.has_autoreset = bool(terminations[0] or truncations[0])
        elif self.autoreset_mode == AutoresetMode.SAME_STEP:
            started0 = bool(terminations[0] or truncations[0])
        if started0:
            self.episode_id += 1

        step_fires = bool(self.step_trigger and self.step_trigger(self.step_id))
        if self.per_env is None:
            if started0:
                self._episode_begins(
                    self._track, self.name_prefix, self.episode_id, self.stop_recording
                )
            if step_fires:
                self._step_begins(self.name_prefix, self.episode_id)
            if self.recording:
                self._capture_tiled()
        else:
            for j in self._envs.stepped(terminations, truncations, self.autoreset_mode):
                self._new_episode(j)
            if step_fires:
                for j in self._envs.tracks:
                    episode = int(self._envs.episodes[j])
                    self._step_begins(f"{self.name_prefix}-env-{j}", episode, j)
            self._capture_envs(self._envs.tracks)
        return obs, rewards, terminations, truncations, info

    def render(self) -> tuple[RenderFrame, ...] | None:
        """Render the sub-environments (the wrapped environment's frames, unchanged)."""
        # gymnasium's vector wrapper never fills render_history; the attribute is kept empty.
        return super().render()

    def close(self, **kwargs: Any) -> None:
        """Close the environments, then wait until this wrapper's videos are on disk.

        Raises:
            Exception: the error of a video that failed (an ExceptionGroup for several).
        """
        try:
            super().close(**kwargs)
        finally:
            try:
                if self.per_env is None:
                    if self._track.recording:
                        self.stop_recording()  # (its gc_trigger may raise)
                else:
                    for j, track in self._envs.tracks.items():
                        if track.recording:
                            self.stop_recording(env_index=j)
            finally:
                self._sink.close()

    def start_recording(self, video_name: str, env_index: int | None = None) -> None:
        """Start recording *video_name* (no extension), ending the current clip.

        Args:
            video_name: the file name without extension.
            env_index: with per_env, the sub-environment to record (required then).
        """
        track = self._track_of(env_index)
        if track.recording:  # as gymnasium does: a subclass's stop_recording sees it end
            if env_index is None:
                self.stop_recording()  # gymnasium's signature, which an override may keep
            else:
                self.stop_recording(env_index=env_index)
        self._start_track(track, video_name)

    def stop_recording(self, env_index: int | None = None) -> None:
        """End the current clip (with per_env: *env_index*'s, or every one when None)."""
        if self.per_env is not None and env_index is None:
            for track in self._envs.tracks.values():
                if track.recording:
                    track.stop()
        else:
            self._track_of(env_index).stop()
        self._collect_garbage()

    def __del__(self) -> None:
        """Warn when the wrapper goes away with a clip open (close() was not called)."""
        # Runs on half-built wrappers too: read attributes defensively, take no lock.
        envs, sink = getattr(self, "_envs", None), getattr(self, "_sink", None)
        try:
            tracks = [getattr(self, "_track", None), *(envs.tracks.values() if envs else ())]
            names = [t.name for t in kept(tracks, lambda t: t is not None and t.open)]
            if names:
                gym_logger.warn(
                    "RecordVideo was not closed: its last videos %s are finished in the "
                    "background (a shared Recorder's: when it closes). Did you call close()?",
                    names,
                )
        finally:  # the warning raises under -W error (pytest's filterwarnings = error)
            if sink is not None:
                sink.abandon()

    # -- internals ------------------------------------------------------------------------------

    def _track_of(self, env_index: int | None) -> Track:
        if self.per_env is None:
            if env_index is not None:
                raise ValueError("env_index is for per_env recording")
            return self._track
        if env_index not in self._envs.tracks:
            raise ValueError(f"env_index must be one of the recorded {self.per_env}")
        return self._envs.tracks[env_index]

    def _new_episode(self, j: int) -> None:
        self._episode_begins(
            self._envs.tracks[j],
            f"{self.name_prefix}-env-{j}",
            int(self._envs.episodes[j]),
            lambda: self.stop_recording(env_index=j),
            env_index=j,
        )

    def _render_all(self) -> Sequence[Any]:
        envs_frame = self.env.render()
        assert isinstance(envs_frame, Sequence), type(envs_frame)
        assert len(envs_frame) == self.num_envs
        return envs_frame

    def _capture_tiled(self) -> None:
        track = self._track
        assert track.recording, "Cannot capture a frame, recording wasn't started."
        track.offer(self._render_tiled, self._info_of_first)
        if track.frames > self.video_length:
            track.cut_by_length()
            self.stop_recording()

    def _info_of_first(self) -> Checked | None:
        return self._info_of(0)

    def _info_of(self, j: int) -> Checked | None:
        """The info of sub-environment *j*'s frame now, if frames get one."""
        return self._returns.info(j) if self._infos_wanted else None

    def _render_tiled(self) -> Any:
        envs_frame = self._render_all()
        if self.record_first_only:
            self.frame_rows = self.frame_cols = 1
            return envs_frame[0]
        if self.frame_rows == -1 or self.frame_cols == -1:
            self.frame_rows, self.frame_cols = self._tiler.grid(envs_frame)
        return self._tiler.tile(envs_frame, self.frame_rows, self.frame_cols)

    def _capture_envs(self, envs: Iterable[int]) -> None:
        self._envs.capture(
            envs,
            self._render_all,
            self.video_length,
            lambda j: self.stop_recording(env_index=j),
            self._info_of,
        )
