"""The vector wrapper's ``per_env`` recording: a track and an episode count per sub-environment."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from recorder._base.info import Checked
from recorder.wrappers._clips import ClipSink, Track


class EnvTracks:
    """A :class:`Track` per recorded sub-environment, and every sub-environment's episode index.

    Args:
        indices: the sub-environments recorded.
        num_envs: how many sub-environments there are.
        sink: where the clips go.
    """

    def __init__(self, indices: Iterable[int], num_envs: int, sink: ClipSink) -> None:
        self.tracks: dict[int, Track] = {j: Track(sink) for j in indices}
        self.episodes = np.full(num_envs, -1, dtype=np.int64)
        # Under next-step autoreset: the sub-environments that reset at the next step.
        self._autoreset = np.zeros(num_envs, dtype=bool)

    def reset(self, mask: Any) -> list[int]:
        """Count a new episode where *mask* says (None: everywhere); the recorded ones reset."""
        reset = np.ones(len(self.episodes), dtype=bool) if mask is None else mask
        self.episodes[reset] += 1
        self._autoreset[reset] = False
        return [j for j in self.tracks if reset[j]]

    def stepped(self, terminations: Any, truncations: Any, mode: AutoresetMode) -> list[int]:
        """Count the episodes that start at this step; the recorded ones that start one."""
        if mode == AutoresetMode.DISABLED:
            return []  # episodes start in reset() only
        done = np.logical_or(np.asarray(terminations), np.asarray(truncations))
        if mode == AutoresetMode.NEXT_STEP:
            started, self._autoreset = self._autoreset, done
        else:
            started = done
        if not started.any():
            return []
        self.episodes[started] += 1
        return [j for j in np.flatnonzero(started).tolist() if j in self.tracks]

    def capture(
        self,
        envs: Iterable[int],
        render_all: Callable[[], Sequence[Any]],
        video_length: float,
        stop: Callable[[int], None],
        info_of: Callable[[int], Checked | None] | None = None,
    ) -> None:
        """Capture a frame for each of *envs* that is recording (one render for all), with
        its info ``info_of(j)``.

        A clip longer than *video_length* frames then ends (``stop(j)``).
        """
        recording = [(j, self.tracks[j]) for j in envs if self.tracks[j].recording]
        if not recording:
            return
        envs_frame = None
        for j, track in recording:
            if track.wants_frame:
                if envs_frame is None:
                    envs_frame = render_all()
                track.add(envs_frame[j], None if info_of is None else info_of(j))
            else:
                track.skip()
            if track.frames > video_length:
                track.cut_by_length()
                stop(j)


def env_indices(per_env: bool | Iterable[int], num_envs: int) -> tuple[int, ...] | None:
    """The sub-environments *per_env* names (True: all), sorted; None when False."""
    if per_env is True:
        return tuple(range(num_envs))
    if per_env is False or per_env is None:
        return None
    if isinstance(per_env, str | bytes) or not isinstance(per_env, Iterable):
        raise TypeError(f"per_env must be a bool or sub-environment indices, got {per_env!r}")
    indices = []
    for j in per_env:
        if isinstance(j, bool) or not isinstance(j, int | np.integer):
            raise TypeError(f"per_env indices must be ints, got {j!r}")
        if not 0 <= j < num_envs:
            raise ValueError(f"per_env index {j} is not a sub-environment (num_envs={num_envs})")
        indices.append(int(j))
    if not indices:
        raise ValueError("per_env is empty: give True or at least one index")
    return tuple(sorted(set(indices)))
