"""recorder.wrappers.RecordVideo against gymnasium.wrappers.RecordVideo as the oracle."""

from __future__ import annotations

import gc
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import av
import gymnasium as gym
import numpy as np
import pytest
from fakes import FakeEncoders
from gymnasium.wrappers import RenderCollection
from helpers import (
    AnsiOnly,
    Child,
    TinyEnv,
    abandoned,
    frame_counts,
    frame_rates,
    moviepy_frames,
    play_episodes,
    run_child,
    unraisable,
)

import recorder
from recorder import VideoSpec
from recorder._testing import MAX_ERRORS, threads_of, wrapper_held
from recorder.wrappers import RecordVideo

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

# gymnasium's wrapper warns when its folder exists; ours too. Each run gets a fresh folder, so
# any such warning is a real failure, except where a test expects it.


pytestmark = pytest.mark.usefixtures("no_worker_left")


class Oracle(gym.wrappers.RecordVideo):  # type: ignore[type-arg]
    """gymnasium's wrapper, noting how many frames (and which) each clip had before moviepy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clip_frames: dict[str, int] = {}
        self.clip_images: dict[str, list[np.ndarray]] = {}

    def stop_recording(self) -> None:
        if self.recorded_frames:
            self.clip_frames[f"{self._video_name}.mp4"] = len(self.recorded_frames)
            self.clip_images[f"{self._video_name}.mp4"] = [f.copy() for f in self.recorded_frames]
        super().stop_recording()


def cartpole(**kwargs: Any) -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1", render_mode="rgb_array", **kwargs)


def run(env: Any, steps: int, seed: int = 7) -> Any:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()
    return env


def compare(
    tmp_path: Path, steps: int, wrap: Any = None, seed: int = 7, **kwargs: Any
) -> tuple[Oracle, RecordVideo[Any, Any], dict[str, int]]:
    """Run gymnasium's wrapper and ours on the same seeded CartPole; assert the same videos."""
    wrap = wrap or (lambda make, env: make(env))
    gym_dir, our_dir = tmp_path / "gymnasium", tmp_path / "ours"
    oracle = run(wrap(lambda e: Oracle(e, str(gym_dir), **kwargs), cartpole()), steps, seed)
    ours = run(wrap(lambda e: RecordVideo(e, str(our_dir), **kwargs), cartpole()), steps, seed)
    oracle, ours = _innermost(oracle, Oracle), _innermost(ours, RecordVideo)
    gym_counts, our_counts = frame_counts(gym_dir), frame_counts(our_dir)
    assert set(our_counts) == set(gym_counts)
    fps = oracle.frames_per_sec
    for name, frames in oracle.clip_frames.items():
        assert our_counts[name] == frames, name  # every frame gymnasium captured
        assert gym_counts[name] == moviepy_frames(frames, fps), name  # minus moviepy's rounding
    assert (ours.episode_id, ours.step_id) == (oracle.episode_id, oracle.step_id)
    return oracle, ours, our_counts


def _innermost(env: Any, cls: type) -> Any:
    while not isinstance(env, cls):
        env = env.env
    return env


# -- the same clips as gymnasium ------------------------------------------------------------------


def test_episode_trigger_same_videos_and_frames(tmp_path: Path) -> None:
    oracle, _, counts = compare(tmp_path, 90, episode_trigger=lambda e: e in (0, 2))
    assert set(counts) == {"rl-video-episode-0.mp4", "rl-video-episode-2.mp4"}
    # The frames are the ones gymnasium captured, in order (decoded back, lossy).
    name = "rl-video-episode-2.mp4"
    raw = np.stack(oracle.clip_images[name]).astype(np.int16)
    with av.open(str(tmp_path / "ours" / name)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for i, frame in enumerate(decoded):
        errors = np.abs(raw - frame.astype(np.int16)).mean(axis=(1, 2, 3))
        assert errors[i] < 2.0
        assert errors[i] == errors.min()  # no other captured frame fits better


def test_step_trigger_with_video_length_spans_episodes(tmp_path: Path) -> None:
    _, ours, counts = compare(
        tmp_path, 120, step_trigger=lambda s: s % 40 == 3, video_length=30, name_prefix="clip"
    )
    assert set(counts) == {"clip-step-3.mp4", "clip-step-43.mp4", "clip-step-83.mp4"}
    # video_length=30: gymnasium stops once a clip holds more than 30 frames, across resets.
    assert set(counts.values()) == {31}
    assert ours.video_length == 30


def test_both_triggers_new_clip_ends_current(tmp_path: Path) -> None:
    _, _, counts = compare(
        tmp_path, 100, episode_trigger=lambda e: e in (0, 3), step_trigger=lambda s: s == 10
    )
    assert "rl-video-step-10.mp4" in counts
    assert "rl-video-episode-0.mp4" in counts


def test_default_schedule(tmp_path: Path) -> None:
    _, ours, counts = compare(tmp_path, 60)
    assert ours.episode_trigger is recorder.capped_cubic_video_schedule
    assert set(counts) == {
        f"rl-video-episode-{i}.mp4"
        for i in range(ours.episode_id + 1)
        if recorder.capped_cubic_video_schedule(i)
    }


def test_video_length_recording_attribute(tmp_path: Path) -> None:
    # gymnasium's own test: still recording after video_length steps, stopped one step later.
    env = RecordVideo(
        cartpole(), str(tmp_path / "v"), step_trigger=lambda s: s == 0, video_length=10
    )
    env.reset(seed=123)
    env.action_space.seed(123)
    for _ in range(10):
        env.step(env.action_space.sample())
    assert env.recording
    assert env.recorded_frames == 10
    env.step(env.action_space.sample())
    assert not env.recording
    assert env.recorded_frames == 0
    env.close()
    assert frame_counts(tmp_path / "v") == {"rl-video-step-0.mp4": 11}


def test_a_subclass_reads_the_video_name_in_stop_recording_as_with_gymnasium(
    tmp_path: Path,
) -> None:
    # A common pattern: a stop_recording override that names the file it will upload.
    import gymnasium

    def named(base: type) -> list[str | None]:
        seen: list[str | None] = []

        class Named(base):  # type: ignore[misc, valid-type]
            def stop_recording(self) -> None:
                seen.append(self._video_name)
                super().stop_recording()
                seen.append(self._video_name)

        env = Named(cartpole(), str(tmp_path / base.__module__), episode_trigger=lambda e: e < 2)
        assert env._video_name is None
        env.reset(seed=1)
        assert env._video_name == "rl-video-episode-0"
        for _ in range(3):
            env.reset()
        env.close()
        return seen

    theirs = named(gymnasium.wrappers.RecordVideo)
    assert named(RecordVideo) == theirs
    assert theirs == ["rl-video-episode-0", None, "rl-video-episode-1", None]


def test_a_subclass_names_its_clip_by_setting_the_video_name_as_with_gymnasium(
    tmp_path: Path,
) -> None:
    import gymnasium

    def files(base: type) -> set[str]:
        class Named(base):  # type: ignore[misc, valid-type]
            def start_recording(self, video_name: str) -> None:
                super().start_recording(video_name)
                self._video_name = f"{video_name}-run42"

        folder = tmp_path / base.__module__
        env = Named(cartpole(), str(folder), episode_trigger=lambda e: e == 0)
        env.reset(seed=1)
        env.step(0)
        env.reset()
        env.close()
        return {p.name for p in folder.glob("*.mp4")}

    ours = files(RecordVideo)
    assert ours == files(gymnasium.wrappers.RecordVideo)
    assert ours == {"rl-video-episode-0-run42.mp4"}


def test_long_clip_spans_episodes(tmp_path: Path) -> None:
    _, _, counts = compare(tmp_path, 80, episode_trigger=lambda e: e == 0, video_length=60)
    assert counts == {"rl-video-episode-0.mp4": 61}


@pytest.mark.parametrize("order", ["collection_below", "collection_above"])
def test_render_collection_both_orders(tmp_path: Path, order: str) -> None:
    def wrap(make: Any, env: Any) -> Any:
        if order == "collection_below":
            return make(RenderCollection(env))
        return RenderCollection(make(env))

    compare(tmp_path, 50, wrap=wrap, episode_trigger=lambda e: e in (0, 1))

    # gymnasium's own test: render() returns every frame since the last call, either way.
    n_steps = 10
    env = wrap(lambda e: RecordVideo(e, str(tmp_path / "render")), cartpole())
    env.reset(seed=123)
    env.action_space.seed(123)
    for _ in range(n_steps):
        env.step(env.action_space.sample())
    render_out = env.render()
    assert isinstance(render_out, list)
    assert len(render_out) == n_steps + 1
    assert all(isinstance(r, np.ndarray) and r.ndim == 3 for r in render_out)
    assert env.render() == []
    env.close()
    assert frame_counts(tmp_path / "render") == {"rl-video-episode-0.mp4": n_steps + 1}


def test_render_collection_without_pop_matches_gymnasium(tmp_path: Path) -> None:
    # gymnasium adds to the clip what render() returns while recording: replicated.
    def loop(env: Any) -> None:
        env.reset(seed=3)
        env.action_space.seed(3)
        for i in range(12):
            env.step(env.action_space.sample())
            if i == 5:
                env.render()
        env.close()

    oracle = Oracle(RenderCollection(cartpole(), pop_frames=False), str(tmp_path / "gymnasium"))
    ours = RecordVideo(RenderCollection(cartpole(), pop_frames=False), str(tmp_path / "ours"))
    loop(oracle)
    loop(ours)
    # The reset frame, 12 step frames, and the 7 frames render() returned after step 5.
    assert oracle.clip_frames == {"rl-video-episode-0.mp4": 1 + 12 + 7}
    assert frame_counts(tmp_path / "ours") == oracle.clip_frames


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [None, "human", "ansi"])
def test_incompatible_render_modes(tmp_path: Path, mode: str | None) -> None:
    env = gym.make("CartPole-v1", render_mode=mode) if mode != "ansi" else AnsiOnly()
    with pytest.raises(ValueError, match="incompatible with RecordVideo") as ours:
        RecordVideo(env, str(tmp_path / "ours"))
    with pytest.raises(ValueError, match="incompatible with RecordVideo") as theirs:
        gym.wrappers.RecordVideo(env, str(tmp_path / "gym"))
    assert str(ours.value) == str(theirs.value)
    assert not (tmp_path / "ours").exists()  # nothing created, no worker started
    env.close()


def test_half_built_wrapper_del_does_not_raise(tmp_path: Path) -> None:
    with unraisable() as errors:
        env = gym.make("CartPole-v1")
        with pytest.raises(ValueError, match="incompatible"):
            RecordVideo(env, str(tmp_path))
        with pytest.raises(TypeError, match="recorder_kwargs must not set fps"):
            RecordVideo(cartpole(), str(tmp_path / "x"), recorder_kwargs={"fps": 3})
        gc.collect()
    assert errors == []


def test_fps_rule(tmp_path: Path) -> None:
    def rate(env: Any, folder: str, **kwargs: Any) -> float:
        wrapped = RecordVideo(env, str(tmp_path / folder), **kwargs)
        run(wrapped, 3)
        (video,) = (tmp_path / folder).iterdir()
        with av.open(str(video)) as container:
            return float(container.streams.video[0].average_rate)

    assert rate(cartpole(), "metadata") == 50  # CartPole's render_fps
    assert rate(cartpole(), "given", fps=12) == 12
    assert rate(TinyEnv(), "default") == 30  # no render_fps: 30


@pytest.mark.parametrize("shared", [False, True])
def test_fps_and_folder_assigned_later_apply_as_in_gymnasium(tmp_path: Path, shared: bool) -> None:
    # highway-env's documented idiom, env.unwrapped.set_record_video_wrapper(env), sets
    # frames_per_sec on the wrapper after construction; gymnasium reads both at each clip.
    def play(make: Any, root: Path) -> None:
        env = make(TinyEnv(), str(root / "first"), episode_trigger=lambda e: e % 2 == 0)
        env.frames_per_sec = 10
        env.reset()
        for episode in range(3):  # TinyEnv's episodes: 5 steps
            for step in range(5):
                env.step(0)
                if episode == 1 and step == 2:  # no clip is recording: the next one is moved
                    (root / "later").mkdir()  # gymnasium creates its folder only in __init__
                    env.frames_per_sec = 5
                    env.video_folder = str(root / "later")
            env.reset()
        env.close()

    play(gym.wrappers.RecordVideo, tmp_path / "gymnasium")
    with recorder.Recorder(tmp_path / "shared") as rec:

        def ours(env: Any, folder: str, **kwargs: Any) -> RecordVideo[Any, Any]:
            return RecordVideo(env, folder, recorder=rec if shared else None, **kwargs)

        play(ours, tmp_path / "ours")
    expected = {"first/rl-video-episode-0.mp4": 10, "later/rl-video-episode-2.mp4": 5}
    assert frame_rates(tmp_path / "gymnasium") == expected
    assert frame_rates(tmp_path / "ours") == expected
    assert frame_counts(tmp_path / "ours" / "later") == {"rl-video-episode-2.mp4": 6}


def test_fps_and_folder_assigned_during_a_clip_apply_from_the_next(tmp_path: Path) -> None:
    # gymnasium would write the open clip with them (it reads them at the clip's end); its
    # frames are being encoded here already (docs/gymnasium.md).
    env = RecordVideo(TinyEnv(), str(tmp_path / "v"), episode_trigger=lambda e: True)
    env.reset()
    env.step(0)
    env.frames_per_sec = 12
    env.video_folder = str(tmp_path / "new" / "folder")  # created here, as gymnasium's __init__
    assert (tmp_path / "new" / "folder").is_dir()
    assert (env.frames_per_sec, env.video_folder) == (12, str(tmp_path / "new" / "folder"))
    env.step(0)
    env.reset()  # the next clip
    env.step(0)
    env.close()
    assert frame_rates(tmp_path) == {
        "v/rl-video-episode-0.mp4": 30,
        "new/folder/rl-video-episode-1.mp4": 12,
    }


def test_bad_fps_or_folder_assigned_fail_at_the_assignment(tmp_path: Path) -> None:
    env = RecordVideo(TinyEnv(), str(tmp_path / "v"), episode_trigger=lambda e: True, fps=8,
                      recorder_kwargs={"codec": "gif"})  # fmt: skip
    with pytest.raises(ValueError, match="fps must be a finite number > 0, got 0"):
        env.frames_per_sec = 0
    with pytest.raises(TypeError, match="fps must be a number, got '10'"):
        env.frames_per_sec = "10"  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"a gif .* at most 50, got 200"):
        env.frames_per_sec = 200
    with pytest.raises(TypeError, match=r"video_folder must be a str or os\.PathLike, got 3"):
        env.video_folder = 3  # type: ignore[assignment]
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        env.video_folder = str(tmp_path / "a-file")
    assert (env.frames_per_sec, env.video_folder) == (8, str(tmp_path / "v"))
    env.reset()  # the wrapper records on, with the settings it had
    env.step(0)
    env.close()
    (video,) = (tmp_path / "v").iterdir()
    assert video.name == "rl-video-episode-0.gif"
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 2


def test_existing_folder_warns_like_gymnasium(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Overwriting existing videos"):
        env = RecordVideo(cartpole(), str(tmp_path))
    env.close()


def test_argument_errors(tmp_path: Path) -> None:
    folder = str(tmp_path / "v")
    with pytest.raises(ValueError, match="video_length"):
        RecordVideo(cartpole(), folder, video_length=-1)
    with pytest.raises(TypeError, match="video_length must be an int"):
        RecordVideo(cartpole(), folder, video_length=100.5)
    with pytest.raises(ValueError, match="name_prefix"):
        RecordVideo(cartpole(), folder, name_prefix="../up")
    with pytest.raises(ValueError, match=r"name_prefix must not start with '\.'"):
        RecordVideo(cartpole(), folder, name_prefix=".eval")  # the recorder's temporary names
    env = RecordVideo(cartpole(), folder, video_length=100.0)  # gymnasium takes it too
    assert env.video_length == 100
    env.close()
    with (
        recorder.Recorder(tmp_path / "shared") as rec,
        pytest.raises(TypeError, match="not both"),
    ):
        RecordVideo(cartpole(), str(tmp_path / "shared"), recorder=rec, recorder_kwargs={"crf": 30})


# -- what the drop-in changes ------------------------------------------------------------------


def test_renders_only_frames_a_clip_needs_and_encodes_off_thread(tmp_path: Path) -> None:
    fake = FakeEncoders(real=True)
    base = TinyEnv()  # episodes of 5 steps
    env = RecordVideo(
        base,
        str(tmp_path / "v"),
        episode_trigger=lambda e: e == 1,
        recorder_kwargs={"encoder_factory": fake},
    )
    env.reset()
    for _ in range(4):  # episodes 0..3
        for _ in range(5):
            env.step(0)
        env.reset()
    env.close()
    assert base.renders == 6  # the reset frame and 5 steps of episode 1, nothing else
    assert frame_counts(tmp_path / "v") == {"rl-video-episode-1.mp4": 6}
    threads = {e.thread for e in fake.made} | {thread for _, thread in fake.writes}
    assert threads
    assert threading.main_thread().name not in threads


def test_recorded_frames_is_a_count(tmp_path: Path) -> None:
    env = RecordVideo(TinyEnv(), str(tmp_path / "v"), episode_trigger=lambda e: True)
    assert env.recorded_frames == 0
    env.reset()
    env.step(0)
    env.step(0)
    assert env.recorded_frames == 3
    assert env.recording
    env.close()
    assert not env.recording


def test_gc_trigger_is_honoured(tmp_path: Path) -> None:
    calls: list[int] = []
    env = RecordVideo(
        TinyEnv(),
        str(tmp_path / "v"),
        episode_trigger=lambda e: True,
        gc_trigger=lambda e: calls.append(e) is None,
    )
    run(env, 12)
    assert calls == [1, 2, 2]  # episode_id after each clip ended: two resets, then close()


def logged(base: type) -> Any:
    """*base* with its start_recording / stop_recording calls noted (a class's own list)."""

    class Logged(base):  # type: ignore[misc, valid-type]
        calls: list[tuple[str, object]] = []  # noqa: RUF012 - one list per made class

        def start_recording(self, video_name: str, *args: Any) -> None:
            self.calls.append(("start", video_name))
            super().start_recording(video_name, *args)

        def stop_recording(self, *args: Any) -> None:
            self.calls.append(("stop", self.episode_id))
            super().stop_recording(*args)

    return Logged


def test_start_and_stop_recording_see_every_clip_as_in_gymnasium(tmp_path: Path) -> None:
    # An override of them (to upload each finished video, say) and gc_trigger see the clips a
    # trigger starts and the ones it ends, as gymnasium's own wrapper has them called.
    seen = {}
    for name, base in (("gymnasium", gym.wrappers.RecordVideo), ("ours", RecordVideo)):
        collected: list[int] = []
        cls = logged(base)
        env = cls(
            TinyEnv(), str(tmp_path / name), episode_trigger=lambda e: True,
            step_trigger=lambda s: s == 2, video_length=20,
            gc_trigger=collected.append,  # None: no gc.collect()
        )  # fmt: skip
        for _ in range(3):
            env.reset()
            for _ in range(5):
                env.step(0)
        env.close()
        seen[name] = (cls.calls, collected)
    calls, collected = seen["ours"]
    assert seen["ours"] == seen["gymnasium"]
    assert calls[:3] == [("start", "rl-video-episode-0"), ("start", "rl-video-step-2"), ("stop", 0)]
    assert collected == [0, 1, 2, 2]  # after each clip that ended, close() included


def test_close_raises_when_a_video_failed(tmp_path: Path) -> None:
    class Boom(RuntimeError):
        pass

    def factory(spec: VideoSpec) -> Any:
        raise Boom("encoder broke")

    env = RecordVideo(
        TinyEnv(),
        str(tmp_path / "v"),
        episode_trigger=lambda e: e == 0,
        recorder_kwargs={"encoder_factory": factory},
    )
    env.reset()
    env.step(0)
    with pytest.raises(Boom):
        env.close()

    with recorder.Recorder(tmp_path / "shared", encoder_factory=factory) as rec:
        env = RecordVideo(
            TinyEnv(), str(tmp_path / "shared"), episode_trigger=lambda e: True, recorder=rec
        )
        env.reset()
        with pytest.raises(Boom):
            env.close()
        with pytest.raises(Boom):  # the shared recorder reports it too
            rec.flush()


def test_many_envs_share_one_recorder_budget(tmp_path: Path) -> None:
    frame_bytes = 400 * 600 * 3
    budget = 3 * frame_bytes
    with recorder.Recorder(tmp_path / "shared", max_queue_bytes=budget, on_full="block") as rec:
        # Each its own folder (the usual layout), or the Recorder's with its own prefix.
        folders = [tmp_path / f"env{i}" for i in range(4)] + [tmp_path / "shared"] * 4
        envs = [
            RecordVideo(
                cartpole(),
                str(folder),
                episode_trigger=lambda e: e == 0,
                name_prefix=f"env{i}",
                recorder=rec,
            )
            for i, folder in enumerate(folders)
        ]
        for i, env in enumerate(envs):
            env.reset(seed=i)
        for k in range(12):  # interleaved like 8 envs stepped in one loop
            for env in envs:
                _, _, terminated, truncated, _ = env.step(k % 2)
                assert not terminated
                assert not truncated
        for env, folder in zip(envs, folders, strict=True):
            env.close()
            assert (folder / f"{env.name_prefix}-episode-0.mp4").exists()  # on disk at close()
        assert not rec.closed  # a shared recorder stays open
        stats = rec.stats()
    assert stats.peak_queued_bytes <= budget
    assert stats.videos_saved == 8
    assert stats.videos_dropped == 0
    for i in range(4):
        assert frame_counts(tmp_path / f"env{i}") == {f"env{i}-episode-0.mp4": 13}
    assert frame_counts(tmp_path / "shared") == {f"env{i}-episode-0.mp4": 13 for i in range(4, 8)}


def test_unclosed_wrapper_warns_and_its_recorder_still_saves_the_clip(tmp_path: Path) -> None:
    with recorder.Recorder(tmp_path) as rec:
        env = RecordVideo(TinyEnv(), str(tmp_path), episode_trigger=lambda e: True, recorder=rec)
        env.reset()
        env.step(0)
        with pytest.warns(UserWarning, match="was not closed"):
            del env  # the last reference: CPython runs __del__ here
    assert frame_counts(tmp_path) == {"rl-video-episode-0.mp4": 2}


def test_a_wrapper_dropped_unclosed_closes_its_private_recorder_once_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A RecordVideo per evaluation, never closed: each must not keep a Recorder (its threads,
    # its shared memory) until the interpreter exits.
    closes = abandoned(monkeypatch)
    env = RecordVideo(TinyEnv(), str(tmp_path / "v"), episode_trigger=lambda e: True)
    rec = env.recorder
    env.reset()
    env.step(0)
    env.step(0)
    with pytest.warns(UserWarning, match="was not closed"):
        del env  # the last reference: CPython runs __del__ here
    assert closes.wait()
    assert rec.closed
    assert frame_counts(tmp_path / "v") == {"rl-video-episode-0.mp4": 3}  # its open clip, saved
    assert not [t for t in threads_of(rec) if t.is_alive()]


def test_a_wrapper_on_a_failing_shared_recorder_keeps_a_bounded_record(tmp_path: Path) -> None:
    # A full disk for a long run: every video fails. The wrapper kept every failed handle and
    # scanned them all at each new clip (18 ms a clip after 10,000 episodes).
    episodes = MAX_ERRORS + 30
    fake = FakeEncoders(fail_at=0)
    with recorder.Recorder(tmp_path, encoder_factory=fake) as rec:
        env = RecordVideo(TinyEnv(), str(tmp_path), episode_trigger=lambda e: True, recorder=rec)
        env.reset()
        for _ in range(episodes):
            for _ in range(TinyEnv.length):
                env.step(0)
            env.reset()
            with pytest.raises((OSError, ExceptionGroup)):
                rec.flush()  # (the Recorder reports each failure once, the wrapper too)
            assert wrapper_held(env) <= MAX_ERRORS + 1
        with pytest.raises(BaseExceptionGroup) as group:
            env.close()
    assert len(group.value.exceptions) == MAX_ERRORS
    assert f"{episodes + 1} videos failed (the first {MAX_ERRORS} here)" in str(group.value)


def test_an_unclosed_wrapper_still_closes_its_recorder_when_its_warning_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # -W error (pytest's filterwarnings = error): the warning in __del__ raised before the
    # private Recorder was told to close itself, which then lived until the interpreter exited.
    closes = abandoned(monkeypatch)
    env = RecordVideo(TinyEnv(), str(tmp_path / "v"), episode_trigger=lambda e: True)
    rec = env.recorder
    env.reset()
    env.step(0)
    with warnings.catch_warnings(), unraisable() as ignored:
        warnings.simplefilter("error")
        del env
    assert "was not closed" in str(ignored[0].exc_value)
    assert closes.wait()
    assert rec.closed
    assert frame_counts(tmp_path / "v") == {"rl-video-episode-0.mp4": 2}


def test_folder_holds_gymnasiums_files_only_and_infos_say_where_clips_start(
    tmp_path: Path,
) -> None:
    infos: list[recorder.VideoInfo] = []
    env = RecordVideo(
        TinyEnv(),  # episodes of 5 steps: steps 0-4, 5-9, ...
        str(tmp_path / "v"),
        episode_trigger=lambda e: e == 0,
        step_trigger=lambda s: s == 7,
        recorder_kwargs={"on_saved": infos.append},
    )
    run(env, 12)
    assert sorted(os.listdir(tmp_path / "v")) == ["rl-video-episode-0.mp4", "rl-video-step-7.mp4"]
    starts = {info.name: (info.kind, info.episode_index, info.first_step) for info in infos}
    assert starts == {
        "rl-video-episode-0": ("episode", 0, None),
        "rl-video-step-7": ("step", 1, 7),
    }


def test_env_used_again_after_close_records_like_gymnasium(tmp_path: Path) -> None:
    # gymnasium's wrapper keeps working after close(); its private Recorder is made anew.
    env = RecordVideo(cartpole(), str(tmp_path / "v"), episode_trigger=lambda e: True)
    env.reset(seed=1)
    for _ in range(3):
        env.step(0)
    env.close()
    env.reset(seed=2)
    for _ in range(4):
        env.step(1)
    env.close()
    assert frame_counts(tmp_path / "v") == {
        "rl-video-episode-0.mp4": 4,
        "rl-video-episode-1.mp4": 5,
    }


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_wrapper_built_before_fork_records_in_the_child(tmp_path: Path) -> None:
    # The parent's workers do not exist in a child: the clip open at fork() is the parent's
    # (the child skips its frames), and the child's next clips go to a Recorder of its own.
    env = RecordVideo(cartpole(), str(tmp_path / "v"), episode_trigger=lambda e: True)
    env.reset(seed=1)
    for _ in range(3):
        env.step(0)

    def child() -> None:
        for _ in range(2):
            env.step(0)  # episode 0 goes on: frames of the parent's clip, skipped
        env.reset(seed=2)
        for _ in range(5):
            env.step(1)
        env.close()

    with Child(child) as forked:
        env.close()  # the parent's clip: the 4 frames before fork()
        assert forked.wait() == 0
    assert frame_counts(tmp_path / "v") == {
        "rl-video-episode-0.mp4": 4,
        "rl-video-episode-1.mp4": 6,
    }


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
# The child's clip (its reset frame refused) has no frame: gymnasium's warning, as its own.
@pytest.mark.filterwarnings("ignore:.*Ignored saving a video as there were zero frames")
def test_a_wrapper_sharing_a_recorder_closes_at_once_in_a_forked_child(tmp_path: Path) -> None:
    # Its handles are the parent's videos: no thread in the child would ever finish them.
    with recorder.Recorder(tmp_path / "v") as rec:
        env = RecordVideo(
            cartpole(), str(tmp_path / "v"), episode_trigger=lambda e: True, recorder=rec
        )
        env.reset(seed=1)
        env.step(0)

        def child() -> None:
            with pytest.raises(recorder.RecorderClosedError, match="forked child"):
                env.reset(seed=2)  # a shared Recorder is the parent's: it says so
            env.close()  # returns (the parent's clip is the parent's)

        done = run_child(child, timeout=30)
        assert done.returncode == 0, done.stderr
        env.close()
    assert frame_counts(tmp_path / "v") == {"rl-video-episode-0.mp4": 2}


def test_on_saved_is_called_off_the_training_thread_for_each_video(tmp_path: Path) -> None:
    seen: list[tuple[str, int, bool]] = []
    main = threading.get_ident()

    def on_saved(info: Any) -> None:
        seen.append((info.path.name, info.frames, threading.get_ident() != main))

    env = RecordVideo(cartpole(), str(tmp_path / "v"), episode_trigger=lambda e: e < 2,
                      on_saved=on_saved)  # fmt: skip
    run(env, 30)
    assert sorted(seen) == sorted((n, f, True) for n, f in frame_counts(tmp_path / "v").items())
    assert len(seen) == 2


def test_on_saved_errors_reach_close_and_shared_recorders_refuse_it(tmp_path: Path) -> None:
    def on_saved(info: Any) -> None:
        raise RuntimeError(f"logging {info.name} failed")

    env = RecordVideo(cartpole(), str(tmp_path / "v"), episode_trigger=lambda e: True,
                      on_saved=on_saved)  # fmt: skip
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(RuntimeError, match="logging rl-video-episode-0 failed"):
        env.close()
    assert frame_counts(tmp_path / "v") == {"rl-video-episode-0.mp4": 2}  # the video is saved
    with recorder.Recorder(tmp_path / "shared") as rec:
        with pytest.raises(TypeError, match="shared Recorder"):
            RecordVideo(cartpole(), str(tmp_path / "shared"), recorder=rec, on_saved=print)
        with pytest.raises(TypeError, match="once"):
            RecordVideo(cartpole(), str(tmp_path / "x"), on_saved=print,
                        recorder_kwargs={"on_saved": print})  # fmt: skip


def test_episode_clips_carry_their_return(tmp_path: Path) -> None:
    # The gallery plots it; a step clip, which may span episodes, carries none. (The private
    # Recorder writes no sidecar by default: gymnasium's folder has only the videos.)
    env = RecordVideo(
        gym.make("CartPole-v1", render_mode="rgb_array"),
        str(tmp_path / "videos"),
        episode_trigger=lambda e: e != 1,
        recorder_kwargs={"sidecars": True},
    )
    returns = play_episodes(env, range(3))
    env.reset(seed=3)
    for _ in range(4):
        env.step(0)
    env.close()  # the last episode's clip ends here, with the return so far

    def meta(name: str, folder: str = "videos") -> dict[str, Any]:
        return dict(json.loads((tmp_path / folder / f"{name}.json").read_text())["metadata"])

    assert meta("rl-video-episode-0") == {"return": returns[0]}
    assert not (tmp_path / "videos" / "rl-video-episode-1.mp4").exists()
    assert meta("rl-video-episode-2") == {"return": returns[2]}
    assert meta("rl-video-episode-3") == {"return": 4.0}

    env = RecordVideo(
        gym.make("CartPole-v1", render_mode="rgb_array"),
        str(tmp_path / "cut"),
        episode_trigger=lambda e: e == 0,
        step_trigger=lambda s: s == 3,  # ends the episode clip (gymnasium's one recording)
        recorder_kwargs={"sidecars": True},
    )
    env.reset(seed=0)
    for _ in range(5):
        env.step(0)
    env.close()
    assert meta("rl-video-episode-0", "cut") == {}  # ended before its episode: no return
    assert meta("rl-video-step-3", "cut") == {}
