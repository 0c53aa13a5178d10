"""recorder.wrappers.vector.RecordVideo against gymnasium's vector RecordVideo as the oracle."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorWrapper
from helpers import (
    TinyEnv,
    abandoned,
    decode,
    frame_counts,
    frame_rates,
    frame_sizes,
    moviepy_frames,
    unraisable,
)

import recorder
from recorder._testing import threads_of
from recorder.wrappers.vector import RecordVideo, grid_shape

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

SAME_STEP_WARNING = "autoreset mode is same-step"


pytestmark = pytest.mark.usefixtures("no_worker_left")


class Oracle(gym.wrappers.vector.RecordVideo):  # type: ignore[type-arg]
    """gymnasium's wrapper, noting each clip's frame count and frame size before moviepy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clips: dict[str, tuple[int, int, int]] = {}

    def stop_recording(self) -> None:
        if self.recorded_frames:
            h, w = self.recorded_frames[0].shape[:2]
            self.clips[f"{self._video_name}.mp4"] = (len(self.recorded_frames), w, h)
        super().stop_recording()


#: Sub-environment j's colour in :class:`Coloured` (apart after H.264's 4:2:0 chroma).
COLOURS = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (220, 220, 30), (220, 30, 220)]
TILE = (32, 48)  # Coloured's frames: height, width


class Coloured(TinyEnv):
    """Sub-environment *j*: TinyEnv's episodes, frames filled with ``COLOURS[j]``."""

    def __init__(self, j: int) -> None:
        super().__init__()
        self.colour = COLOURS[j]

    def render(self) -> Any:
        self.renders += 1
        return np.full((*TILE, 3), self.colour, np.uint8)


def coloured(n: int, mode: AutoresetMode = AutoresetMode.NEXT_STEP) -> Any:
    """A vector env of *n* :class:`Coloured` sub-environments."""
    return gym.vector.SyncVectorEnv(
        [lambda j=j: Coloured(j) for j in range(n)], autoreset_mode=mode
    )


def tile_colours(frame: np.ndarray, rows: int, cols: int) -> list[tuple[int, ...]]:
    """The mean colour of each tile of *frame* (row by row), away from the tiles' edges."""
    h, w = TILE
    assert frame.shape[:2] == (rows * h, cols * w)
    return [
        tuple(int(v) for v in frame[r * h + 6 : (r + 1) * h - 6, c * w + 6 : (c + 1) * w - 6]
              .reshape(-1, 3).mean(axis=0).round())
        for r in range(rows)
        for c in range(cols)
    ]  # fmt: skip


def near(got: list[tuple[int, ...]], expected: list[tuple[int, ...]]) -> bool:
    """Whether each colour of *got* is within H.264's error of the same one of *expected*."""
    return len(got) == len(expected) and all(
        max(abs(a - b) for a, b in zip(g, e, strict=True)) <= 12
        for g, e in zip(got, expected, strict=True)
    )


def make_vec(n: int, mode: AutoresetMode) -> Any:
    return gym.make_vec(
        "CartPole-v1",
        num_envs=n,
        vectorization_mode="sync",
        render_mode="rgb_array",
        vector_kwargs={"autoreset_mode": mode},
    )


def wrap(cls: Callable[..., Any], env: Any, folder: Path, **kwargs: Any) -> Any:
    if env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
        with pytest.warns(UserWarning, match=SAME_STEP_WARNING):
            return cls(env, str(folder), **kwargs)
    return cls(env, str(folder), **kwargs)


def run(env: Any, steps: int, seed: int = 5, on_step: Callable[..., None] | None = None) -> Any:
    """Step with seeded random actions; under DISABLED autoreset, reset the finished envs."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done = np.logical_or(terminated, truncated)
        if on_step is not None:
            on_step(done)
        if env.autoreset_mode == AutoresetMode.DISABLED and done.any():
            env.reset(options={"reset_mask": done})
            if on_step is not None:
                on_step(None, reset_mask=done)
    env.close()
    return env


def compare(
    tmp_path: Path, mode: AutoresetMode, n: int, steps: int, **kwargs: Any
) -> dict[str, tuple[int, int, int]]:
    """Same seeded loop under gymnasium's wrapper and ours: the same videos, frames and sizes."""
    oracle = run(wrap(Oracle, make_vec(n, mode), tmp_path / "gymnasium", **kwargs), steps)
    ours = run(wrap(RecordVideo, make_vec(n, mode), tmp_path / "ours", **kwargs), steps)
    theirs, mine = frame_sizes(tmp_path / "gymnasium"), frame_sizes(tmp_path / "ours")
    assert set(mine) == set(theirs) == set(oracle.clips)
    for name, (frames, width, height) in oracle.clips.items():
        assert mine[name] == (frames, width, height), name
        assert theirs[name] == (moviepy_frames(frames, oracle.frames_per_sec), width, height)
    assert (ours.episode_id, ours.step_id) == (oracle.episode_id, oracle.step_id)
    assert (ours.frame_rows, ours.frame_cols) == (oracle.frame_rows, oracle.frame_cols)
    return mine


def test_start_and_stop_recording_see_every_clip_as_in_gymnasium(tmp_path: Path) -> None:
    from test_wrappers import logged

    seen = {}
    for name, base in (("gymnasium", Oracle), ("ours", RecordVideo)):
        collected: list[int] = []
        cls = logged(base)
        env = cls(
            make_vec(2, AutoresetMode.NEXT_STEP), str(tmp_path / name),
            episode_trigger=lambda e: True, step_trigger=lambda s: s == 2, video_length=20,
            gc_trigger=collected.append,  # None: no gc.collect()
        )  # fmt: skip
        run(env, 30)
        seen[name] = (cls.calls, collected)
    assert seen["ours"] == seen["gymnasium"]
    assert ("stop", 0) in seen["ours"][0]  # the step trigger ended episode 0's clip


# -- gymnasium's behaviour ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_tiled_videos_match_gymnasium(tmp_path: Path, mode: AutoresetMode) -> None:
    videos = compare(
        tmp_path,
        mode,
        n=4,
        steps=45,
        episode_trigger=lambda e: e in (0, 2),
        step_trigger=lambda s: s == 30,
        name_prefix="tiles",
    )
    assert {"tiles-episode-0.mp4", "tiles-step-30.mp4"} <= set(videos)
    assert {v[1:] for v in videos.values()} == {(1200, 800)}  # 2x2 tiles of 600x400


def test_record_first_only_and_video_length_match_gymnasium(tmp_path: Path) -> None:
    videos = compare(
        tmp_path,
        AutoresetMode.NEXT_STEP,
        n=3,
        steps=56,
        record_first_only=True,
        step_trigger=lambda s: s % 20 == 0,
        video_length=15,
    )
    assert videos == {f"rl-video-step-{s}.mp4": (16, 600, 400) for s in (0, 20, 40)}


@pytest.mark.parametrize("ratio", [(4, 1), (1, 4)])
def test_aspect_ratio_matches_gymnasium(tmp_path: Path, ratio: tuple[int, int]) -> None:
    videos = compare(
        tmp_path,
        AutoresetMode.NEXT_STEP,
        n=4,
        steps=6,
        video_aspect_ratio=ratio,
        step_trigger=lambda s: s == 0,
        video_length=3,
    )
    size = (2400, 400) if ratio == (4, 1) else (1200, 800)  # gymnasium keeps rows <= cols
    assert videos == {"rl-video-step-0.mp4": (4, *size)}


def test_grid_shape_is_gymnasiums_except_for_prime_counts() -> None:
    class Shape:
        def __init__(self, ratio: tuple[int, int]) -> None:
            self.video_aspect_ratio = ratio

    def is_prime(n: int) -> bool:
        return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))

    for ratio in [(1, 1), (16, 9), (4, 1), (1, 3)]:
        for h, w in [(400, 600), (64, 64), (480, 270)]:
            for n in range(1, 40):
                reference = Shape(ratio)
                gym.wrappers.vector.RecordVideo._get_concat_frame_shape(reference, n, h, w)
                theirs = (reference.frame_rows, reference.frame_cols)
                rows, cols = grid_shape(n, h, w, ratio[0] / ratio[1])
                if not is_prime(n) or n == 2:
                    assert (rows, cols) == theirs, (n, h, w, ratio)
                    continue
                assert rows * cols >= n
                assert (rows - 1) * cols < n  # no blank row
                assert rows <= cols
                target = ratio[0] / ratio[1]
                ours_diff = abs(cols * w / (rows * h) - target)
                assert ours_diff <= abs(theirs[1] * w / (theirs[0] * h) - target)
    assert grid_shape(5, 400, 600, 1.0) == (2, 3)
    assert grid_shape(7, 400, 600, 1.0) == (3, 3)
    assert grid_shape(13, 64, 64, 1.0) == (4, 4)


def test_prime_count_is_padded_with_blank_tiles(tmp_path: Path) -> None:
    env = RecordVideo(
        make_vec(5, AutoresetMode.NEXT_STEP), str(tmp_path / "v"), step_trigger=lambda s: s == 0
    )
    env.reset(seed=1)
    for _ in range(3):
        env.step(env.action_space.sample())
    assert (env.frame_rows, env.frame_cols) == (2, 3)  # gymnasium: a 1x5 strip
    env.close()
    with av.open(str(tmp_path / "v" / "rl-video-step-0.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (800, 1800, 3)
    assert frame[400:, 1200:].mean() < 8  # the sixth tile is blank (black)
    assert frame[:400, :600].mean() > 200  # a CartPole tile is mostly white


@pytest.mark.parametrize(
    ("n", "ratio", "grid"), [(4, (1, 1), (2, 2)), (4, (4, 1), (1, 4)), (5, (1, 1), (2, 3))]
)
def test_each_sub_environment_lands_in_its_tile(
    tmp_path: Path, n: int, ratio: tuple[int, int], grid: tuple[int, int]
) -> None:
    # Row by row, as gymnasium tiles; a padded grid's last tiles are black.
    env = RecordVideo(coloured(n), str(tmp_path / "v"), video_aspect_ratio=ratio,
                      episode_trigger=lambda e: e == 0)  # fmt: skip
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    env.close()
    assert (env.frame_rows, env.frame_cols) == grid
    expected = COLOURS[:n] + [(0, 0, 0)] * (grid[0] * grid[1] - n)
    frames = decode(tmp_path / "v" / "rl-video-episode-0.mp4").frames
    assert len(frames) == 4
    for frame in frames:
        assert near(tile_colours(frame, *grid), expected), tile_colours(frame, *grid)


def test_per_env_and_first_only_videos_show_their_sub_environment(tmp_path: Path) -> None:
    def record(folder: str, **kwargs: Any) -> None:
        env = RecordVideo(coloured(5), str(tmp_path / folder), step_trigger=lambda s: s == 1,
                          video_length=2, **kwargs)  # fmt: skip
        env.reset(seed=0)
        for _ in range(4):
            env.step(env.action_space.sample())
        env.close()

    record("per-env", per_env=(4, 1, 2))
    record("first", record_first_only=True)
    for j in (1, 2, 4):
        frames = decode(tmp_path / "per-env" / f"rl-video-env-{j}-step-1.mp4").frames
        assert len(frames) == 3
        assert all(near(tile_colours(f, 1, 1), [COLOURS[j]]) for f in frames), j
    assert len(list((tmp_path / "per-env").iterdir())) == 3
    frames = decode(tmp_path / "first" / "rl-video-step-1.mp4").frames
    assert len(frames) == 3
    assert all(near(tile_colours(f, 1, 1), [COLOURS[0]]) for f in frames)


def test_fps_and_folder_assigned_later_apply_as_in_gymnasium(tmp_path: Path) -> None:
    # As for the single-env wrapper (test_wrappers.py): read by gymnasium as it writes a clip.
    def play(make: Any, root: Path, **kwargs: Any) -> None:
        env = make(coloured(2), str(root / "first"), episode_trigger=lambda e: e % 2 == 0,
                   **kwargs)  # fmt: skip
        env.frames_per_sec = 10
        env.reset(seed=0)
        for step in range(16):  # sub-env 0's episodes: steps 0-5, 6-11, 12-
            env.step(env.action_space.sample())
            if step == 8:  # episode 1: no clip is recording
                (root / "later").mkdir(exist_ok=True)  # gymnasium creates it only in __init__
                env.frames_per_sec = 5
                env.video_folder = str(root / "later")
        env.close()

    play(gym.wrappers.vector.RecordVideo, tmp_path / "gymnasium")
    play(RecordVideo, tmp_path / "ours")
    play(RecordVideo, tmp_path / "per-env", per_env=True)
    expected = {"first/rl-video-episode-0.mp4": 10, "later/rl-video-episode-2.mp4": 5}
    assert frame_rates(tmp_path / "gymnasium") == expected
    assert frame_rates(tmp_path / "ours") == expected
    assert frame_rates(tmp_path / "per-env") == {
        f"{folder}/rl-video-env-{j}-episode-{e}.mp4": fps
        for folder, e, fps in [("first", 0, 10), ("later", 2, 5)]
        for j in (0, 1)
    }


def test_a_bad_shared_recorder_is_refused_with_a_type_error(tmp_path: Path) -> None:
    envs = coloured(2)
    with pytest.raises(TypeError, match=r"recorder must be a recorder\.Recorder, got 'shared'"):
        RecordVideo(envs, str(tmp_path / "v"), recorder="shared")  # type: ignore[arg-type]
    envs.close()


@pytest.mark.parametrize("mode", [None, "human"])
def test_incompatible_render_modes(tmp_path: Path, mode: str | None) -> None:
    envs = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync", render_mode=mode)
    with pytest.raises(ValueError, match="incompatible with RecordVideo") as ours:
        RecordVideo(envs, str(tmp_path / "ours"))
    with pytest.raises(ValueError, match="incompatible with RecordVideo") as theirs:
        gym.wrappers.vector.RecordVideo(envs, str(tmp_path / "gym"))
    assert str(ours.value) == str(theirs.value)
    envs.close()


def test_half_built_wrapper_del_does_not_raise(tmp_path: Path) -> None:
    with unraisable() as errors:
        envs = make_vec(2, AutoresetMode.NEXT_STEP)
        with pytest.raises(ValueError, match="exclude each other"):
            RecordVideo(envs, str(tmp_path), record_first_only=True, per_env=True)
        with pytest.raises(ValueError, match="not a sub-environment"):
            RecordVideo(envs, str(tmp_path), per_env=[2])
        gc.collect()
        envs.close()
    assert errors == []


def test_a_vector_wrapper_dropped_unclosed_saves_its_clips_and_frees_its_recorder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closes = abandoned(monkeypatch)
    envs = make_vec(2, AutoresetMode.NEXT_STEP)
    env = RecordVideo(envs, str(tmp_path / "v"), per_env=True, episode_trigger=lambda e: True)
    rec = env.recorder
    env.reset(seed=3)
    for _ in range(4):
        env.step(env.action_space.sample())
    with pytest.warns(UserWarning, match="was not closed"):
        del env  # the last reference: CPython runs __del__ here
    assert closes.wait()
    assert not [t for t in threads_of(rec) if t.is_alive()]
    counts = frame_counts(tmp_path / "v")
    assert list(counts.values()) == [5, 5]  # each sub-env's open clip, saved
    envs.close()


def test_missing_autoreset_mode_warns_like_gymnasium(tmp_path: Path) -> None:
    envs = VectorWrapper(make_vec(2, AutoresetMode.NEXT_STEP))
    envs.metadata = {k: v for k, v in envs.env.metadata.items() if k != "autoreset_mode"}
    with pytest.warns(UserWarning, match="doesn't specify its autoreset mode"):
        env = RecordVideo(envs, str(tmp_path / "v"))
    assert env.autoreset_mode == AutoresetMode.NEXT_STEP
    env.close()


# -- one video per sub-environment ----------------------------------------------------------------


class EpisodeModel:
    """Independent model of per-env videos: an episode is its reset frame plus one frame per step
    (without the last one under same-step autoreset, where the env has already reset)."""

    def __init__(self, n: int, mode: AutoresetMode, trigger: Callable[[int], bool]) -> None:
        self.mode, self.trigger = mode, trigger
        self.episode = [0] * n
        self.frames = [1] * n  # the first reset's frame
        self.pending = [False] * n
        self.videos: dict[str, int] = {}

    def _new_episode(self, j: int) -> None:
        self.finish(j)
        self.episode[j] += 1
        self.frames[j] = 1

    def finish(self, j: int) -> None:
        if self.trigger(self.episode[j]):
            self.videos[f"rl-video-env-{j}-episode-{self.episode[j]}.mp4"] = self.frames[j]

    def __call__(self, done: Any, reset_mask: Any = None) -> None:
        if reset_mask is not None:
            for j in np.flatnonzero(reset_mask):
                self._new_episode(j)
            return
        for j, d in enumerate(done):
            if (self.mode == AutoresetMode.NEXT_STEP and self.pending[j]) or (
                self.mode == AutoresetMode.SAME_STEP and d
            ):
                self._new_episode(j)
            else:
                self.frames[j] += 1
            self.pending[j] = bool(d)


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_per_env_videos(tmp_path: Path, mode: AutoresetMode) -> None:
    def trigger(e: int) -> bool:
        return e % 2 == 0

    n = 3
    model = EpisodeModel(n, mode, trigger)
    env = wrap(
        RecordVideo, make_vec(n, mode), tmp_path / "per-env", episode_trigger=trigger, per_env=True
    )
    run(env, 70, on_step=model)
    for j in range(n):
        model.finish(j)
    videos = frame_counts(tmp_path / "per-env")
    assert videos == model.videos
    assert {f"rl-video-env-{j}-episode-0.mp4" for j in range(n)} <= set(videos)
    assert len(videos) > n  # later episodes too
    assert env.env_episode_ids == tuple(model.episode)
    assert env.episode_id == model.episode[0]  # gymnasium's counter follows env 0

    if mode != AutoresetMode.DISABLED:
        # env 0's videos are gymnasium's record_first_only videos, named with the env index.
        oracle = run(
            wrap(
                Oracle,
                make_vec(n, mode),
                tmp_path / "gymnasium",
                episode_trigger=trigger,
                record_first_only=True,
            ),
            70,
        )
        env0 = {
            name.replace("-env-0", ""): frames
            for name, frames in videos.items()
            if "-env-0-" in name
        }
        assert env0 == {name: v[0] for name, v in oracle.clips.items()}


def test_per_env_subset_step_clips_render_only_when_needed(tmp_path: Path) -> None:
    class CountRender(VectorWrapper):  # type: ignore[type-arg]
        renders = 0

        def render(self) -> Any:
            self.renders += 1
            return super().render()

    counted = CountRender(make_vec(4, AutoresetMode.NEXT_STEP))
    env = RecordVideo(
        counted,
        str(tmp_path / "v"),
        step_trigger=lambda s: s in (3, 40),
        video_length=5,
        per_env=(j for j in (3, 1)),
    )
    assert env.per_env == (1, 3)
    run(env, 50)
    assert frame_sizes(tmp_path / "v") == {
        f"rl-video-env-{j}-step-{s}.mp4": (6, 600, 400) for j in (1, 3) for s in (3, 40)
    }
    assert counted.renders == 12  # one render per captured step, shared by both envs


def test_shared_recorder_keeps_one_budget(tmp_path: Path) -> None:
    budget = 4 * 1200 * 800 * 3
    with recorder.Recorder(tmp_path, max_queue_bytes=budget, on_full="block") as rec:
        envs = [
            RecordVideo(
                make_vec(4, AutoresetMode.NEXT_STEP),
                str(tmp_path),
                episode_trigger=lambda e: e == 0,
                name_prefix=f"vec{i}",
                recorder=rec,
            )
            for i in range(3)
        ]
        for env in envs:
            run(env, 8)
        assert rec.stats().peak_queued_bytes <= budget
    assert frame_sizes(tmp_path) == {f"vec{i}-episode-0.mp4": (9, 1200, 800) for i in range(3)}


def test_on_saved_reports_every_per_env_video(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    env = RecordVideo(make_vec(2, AutoresetMode.NEXT_STEP), str(tmp_path / "v"),
                      episode_trigger=lambda e: e == 0, per_env=True,
                      on_saved=lambda info: seen.append((info.path.name, info.frames)))  # fmt: skip
    run(env, 60)
    videos = frame_counts(tmp_path / "v")
    assert dict(seen) == videos
    assert set(videos) == {"rl-video-env-0-episode-0.mp4", "rl-video-env-1-episode-0.mp4"}
