"""The health of each video (issue 29): a video whose frames are all blank, or one image
repeated for most of it, is suspect (saved all the same, logged, counted, in its sidecar and
manifest line); a first frame that repeats the previous episode's last frame is noted. The
frames are looked at where they are encoded (a worker thread or an encoder process)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from fakes import FakeEncoders
from helpers import TinyEnv, always, decode, play_episodes, require_processes

import recorder
from recorder import Recorder, VideoHealth, VideoInfo
from recorder._testing import FROZEN_MIN, VERIFY_RUN, Probe, read_manifest
from recorder.wrappers import RecordVideo

CLASSIC = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1")


@pytest.fixture(params=["process", "thread"])
def encode_in(request: pytest.FixtureRequest) -> str:
    if request.param == "process":
        require_processes()
    mode: str = request.param
    return mode


def episode_frames(env_id: str = "CartPole-v1", seed: int = 0) -> list[np.ndarray]:
    """The renders of one random-policy episode of *env_id*: its reset frame, then each step's."""
    env = gym.make(env_id, render_mode="rgb_array")
    try:
        env.reset(seed=seed)
        env.action_space.seed(seed)
        frames = [env.render()]
        done = False
        while not done:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            frames.append(env.render())
            done = terminated or truncated
    finally:
        env.close()
    return frames


def renders(count: int) -> list[np.ndarray]:
    """*count* CartPole renders of a seeded random policy, episode after episode."""
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.action_space.seed(0)
    try:
        env.reset(seed=0)
        frames = []
        while len(frames) < count:
            frames.append(env.render())
            if any(env.step(env.action_space.sample())[2:4]):
                env.reset()
    finally:
        env.close()
    return frames


class CachedRender(gym.Wrapper[Any, Any, Any, Any]):
    """A render that returns the image it rendered first, whatever the env does since."""

    def render(self) -> Any:
        if not hasattr(self, "image"):
            self.image = self.env.render()
        return self.image


class StaleReset(gym.Wrapper[Any, Any, Any, Any]):
    """The first render after ``reset()`` returns the image rendered before it."""

    last: Any = None
    stale = False

    def reset(self, **kwargs: Any) -> Any:
        self.stale = self.last is not None
        return self.env.reset(**kwargs)

    def render(self) -> Any:
        if self.stale:
            self.stale = False
            return self.last
        self.last = self.env.render()
        return self.last


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "recorder" and r.levelno >= logging.WARNING
    ]


def written_health(info: VideoInfo) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The ``"health"`` of *info*'s sidecar and of its manifest line (None where absent)."""
    sidecar = json.loads(info.path.with_suffix(".json").read_text())
    (line,) = [r for r in read_manifest(info.path.parent) if r["name"] == info.name]
    return sidecar.get("health"), line.get("health")


def test_blank_and_frozen_videos_are_suspect_and_saved_real_frames_are_not(
    tmp_path: Path, encode_in: str, caplog: pytest.LogCaptureFixture
) -> None:
    real = episode_frames()
    h, w, _ = real[0].shape
    black = np.zeros((30, h, w, 3), np.uint8)
    white = np.full((20, h, w, 3), 255, np.uint8)
    frozen = np.stack([real[3]] * 40)
    with Recorder(tmp_path, episode_trigger=always, encode_in=encode_in) as rec:
        handles = [rec.submit(frames, episode_index=i)[0] for i, frames in
                   ((0, real), (5, black), (6, white), (7, frozen))]  # fmt: skip
        rec.flush()
        stats = rec.stats()
    infos = [h.result() for h in handles]
    healths = [info.health for info in infos]
    assert healths[0] is not None
    assert not healths[0].suspect
    assert healths[0].why is None
    assert (healths[0].frames, healths[0].blank_frames) == (len(real), 0)
    assert healths[0].longest_frozen < FROZEN_MIN
    assert healths[0].stale_first_frame is None  # no episode before it
    black_why = "all 30 frames are blank (flat black): a headless render"
    white_why = "all 20 frames are blank (flat white)"
    frozen_why = "40 of 40 frames are one image repeated: a render that returns a cached image"
    for health, frames, blank, why in (
        (healths[1], 30, 30, black_why),
        (healths[2], 20, 20, white_why),
        (healths[3], 40, 0, frozen_why),
    ):
        assert health is not None
        assert health.suspect
        assert health.why is not None
        assert health.why.startswith(why)
        assert (health.frames, health.blank_frames, health.longest_frozen) == (
            frames,
            blank,
            frames,
        )
    assert "MUJOCO_GL=egl" in (healths[1].why or "")
    # Saved all the same, whole; counted; one warning each, naming the file and the cause.
    assert [len(decode(info.path).frames) for info in infos] == [len(real), 30, 20, 40]
    assert (stats.videos_saved, stats.videos_suspect, stats.videos_failed) == (4, 3, 0)
    assert stats.videos_stale_first_frame == 0
    warned = warnings_of(caplog)
    assert len(warned) == 3
    for info in infos[1:]:
        (message,) = [m for m in warned if str(info.path) in m]
        assert info.health is not None
        assert info.health.why is not None
        assert info.health.why in message
        assert "health=False" in message
    # The sidecar and the manifest line hold the same record as VideoInfo.health.
    for info in infos:
        assert info.health is not None
        record = dataclasses.asdict(info.health)
        assert set(record) == {"suspect", "why", "frames", "blank_frames", "longest_frozen",
                               "stale_first_frame"}  # fmt: skip
        assert written_health(info) == (record, record)


def test_a_frozen_render_recorded_through_record_video_is_suspect(
    tmp_path: Path, encode_in: str, caplog: pytest.LogCaptureFixture
) -> None:
    infos: list[VideoInfo] = []
    env = RecordVideo(
        CachedRender(gym.make("CartPole-v1", render_mode="rgb_array")),
        str(tmp_path / "videos"),
        recorder_kwargs={"encode_in": encode_in},
        on_saved=infos.append,
    )
    play_episodes(env, [0])
    env.close()
    (info,) = infos
    assert info.health is not None
    assert info.health.suspect
    assert info.health.longest_frozen == info.frames >= FROZEN_MIN
    assert info.health.why == (
        f"{info.frames} of {info.frames} frames are one image repeated: a render that returns a "
        "cached image, or an env not stepped between renders?"
    )
    assert info.path.exists()
    (message,) = warnings_of(caplog)
    assert str(info.path) in message


class StillStart(TinyEnv):
    """Episodes of 6 steps whose first frames do not change (as many Atari games begin)."""

    length = 6

    def render(self) -> np.ndarray:
        image = np.indices((48, 64)).sum(axis=0).astype(np.uint8)[..., None].repeat(3, -1)
        image[:4, :4] = 40 * max(self.t - 3, 0)  # the scene moves from step 4 on
        return image


@pytest.mark.parametrize("per_env", [None, False, True])
def test_a_wrappers_clip_cut_by_video_length_is_not_taken_for_its_episodes_end(
    tmp_path: Path, per_env: bool | None
) -> None:
    # Cut after 3 steps, the clip's last frame is mid-episode: that the next episode starts
    # with the same image says nothing of a render before reset().
    folder = tmp_path / "videos"
    with Recorder(folder) as rec:
        if per_env is None:
            env: Any = RecordVideo(
                StillStart(), str(folder), episode_trigger=always, video_length=3, recorder=rec
            )
            play_episodes(env, [0, 1, 2])
        else:
            from recorder.wrappers.vector import RecordVideo as VectorRecordVideo

            env = VectorRecordVideo(
                gym.vector.SyncVectorEnv([StillStart]), str(folder), episode_trigger=always,
                video_length=3, recorder=rec, per_env=per_env,
            )  # fmt: skip
            env.reset(seed=0)
            for _ in range(20):
                env.step(np.zeros(1, np.int64))
        env.close()
    names = sorted(p.stem for p in folder.glob("*episode-*.mp4"))
    assert len(names) >= 3
    stale = [json.loads((folder / f"{n}.json").read_text())["health"] for n in names]
    assert [h["stale_first_frame"] for h in stale] == [None] * len(names)
    assert rec.stats().videos_stale_first_frame == 0


def test_a_first_frame_rendered_before_reset_took_effect_is_noted(
    tmp_path: Path, encode_in: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="recorder")
    with Recorder(tmp_path / "videos", encode_in=encode_in) as rec:
        env = RecordVideo(
            StaleReset(gym.make("CartPole-v1", render_mode="rgb_array")),
            str(tmp_path / "videos"),
            episode_trigger=always,
            recorder=rec,
        )
        play_episodes(env, [0, 1, 2])
        env.close()
        stats = rec.stats()
    healths = [
        json.loads((tmp_path / "videos" / f"rl-video-episode-{i}.json").read_text())["health"]
        for i in range(3)
    ]
    assert [h["stale_first_frame"] for h in healths] == [None, True, True]
    assert not any(h["suspect"] for h in healths)  # one stale frame: noted, not suspect
    assert stats.videos_stale_first_frame == 2
    assert stats.videos_suspect == 0
    stale = [r for r in caplog.records if "repeats the last frame" in r.getMessage()]
    assert [r.levelno for r in stale] == [logging.WARNING, logging.DEBUG]
    assert str(tmp_path / "videos" / "rl-video-episode-1.mp4") in stale[0].getMessage()


@pytest.mark.parametrize("env_id", CLASSIC)
def test_no_false_alarm_on_classic_control_with_the_defaults(
    tmp_path: Path, env_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    infos: list[VideoInfo] = []
    env = RecordVideo(
        gym.make(env_id, render_mode="rgb_array"), str(tmp_path / "videos"), on_saved=infos.append
    )
    env.action_space.seed(0)
    play_episodes(env, [0, 1])  # the default schedule records both
    env.close()
    assert [i.episode_index for i in infos] == [0, 1]
    for info in infos:
        health = info.health
        assert health is not None
        assert not health.suspect, health.why
        assert (health.frames, health.blank_frames) == (info.frames, 0)
        assert health.longest_frozen < FROZEN_MIN
    # Episode 1's first frame (after reset) is compared with episode 0's last: not the same.
    assert [i.health.stale_first_frame for i in infos if i.health] == [None, False]
    assert warnings_of(caplog) == []


def test_health_false_looks_at_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    black = np.zeros((12, 32, 48, 3), np.uint8)
    with Recorder(tmp_path / "off", episode_trigger=always, health=False) as rec:
        (handle,) = rec.submit(black)
        rec.flush()
        stats = rec.stats()
    info = handle.result()
    assert info.health is None
    assert written_health(info) == (None, None)
    assert stats.videos_suspect == 0
    assert warnings_of(caplog) == []
    # The wrappers' private Recorder takes it through recorder_kwargs.
    infos: list[VideoInfo] = []
    env = RecordVideo(
        CachedRender(gym.make("CartPole-v1", render_mode="rgb_array")),
        str(tmp_path / "wrapper"),
        recorder_kwargs={"health": False},
        on_saved=infos.append,
    )
    play_episodes(env, [0])
    env.close()
    assert [i.health for i in infos] == [None]
    assert warnings_of(caplog) == []


def test_health_must_be_a_bool(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"health must be True or False, got 'yes' \(str\)"):
        Recorder(tmp_path / "videos", health="yes")  # type: ignore[arg-type]
    assert not (tmp_path / "videos").exists()  # refused before anything was made


def test_what_makes_a_video_suspect(tmp_path: Path) -> None:
    real = renders(24)
    black = np.zeros_like(real[0])
    still = [real[0]] * (FROZEN_MIN - 1)
    half = [real[0]] * 12 + real[12:]
    most = [real[0]] * 13 + real[13:]
    gray = np.zeros((FROZEN_MIN, 20, 30), np.uint8)
    cases = [
        ("a short still clip", still, False, 0, FROZEN_MIN - 1),
        ("half blank", [black] * 12 + real[12:], False, 12, 12),
        ("frozen for half", half, False, 0, 12),
        ("frozen for most", most, True, 0, 13),
        ("gray and black", list(gray), True, FROZEN_MIN, FROZEN_MIN),
        ("one blank frame", [black], True, 1, 1),
    ]
    with Recorder(tmp_path, episode_trigger=always, encode_in="thread") as rec:
        handles = [rec.submit(frames, episode_index=i)[0] for i, (_, frames, *_) in
                   enumerate(cases)]  # fmt: skip
    for (what, frames, suspect, blank, frozen), handle in zip(cases, handles, strict=True):
        health = handle.result().health
        assert health is not None
        assert health.suspect is suspect, what
        assert (health.frames, health.blank_frames, health.longest_frozen) == (
            len(frames),
            blank,
            frozen,
        ), what
    gray_why = handles[4].result().health
    assert gray_why is not None
    assert gray_why.why is not None
    assert gray_why.why.startswith(f"all {FROZEN_MIN} frames are blank (flat black)")


@pytest.mark.parametrize("shape", [(64, 64, 3), (400, 600, 3), (84, 84), (1080, 1920, 3)])
def test_a_probe_sees_every_pixel_of_a_frame_that_looks_blank_or_unchanged(
    shape: tuple[int, ...],
) -> None:
    # A large frame is read by rows; one pixel off them (a thin ball, a pole) still counts.
    base = np.full(shape, 255, np.uint8)
    probe = Probe(shape)
    frames = [base, base]
    for row in (0, shape[0] // 2 + 1, shape[0] - 1, 1):
        frame = base.copy()
        frame[row, -1] = 0  # one pixel, at the end of the row
        frames.append(frame)
    for frame in frames:
        probe.see(frame)
    seen = probe.seen()
    assert seen.frames == 6
    assert seen.blank_frames == 2  # the flat ones only
    assert seen.longest_frozen == 2  # each frame with its pixel differs from the one before


def test_a_thin_thing_moving_is_neither_blank_nor_frozen(tmp_path: Path) -> None:
    # A 2-pixel ball (Atari-sized frame) and a 3-pixel box (CartPole-sized), between the rows
    # the probe reads: on a flat background, then on a still picture.
    rng = np.random.default_rng(0)
    with Recorder(tmp_path, episode_trigger=always) as rec:
        handles = []
        for height, width, y, tall in [(210, 160, 100, 2), (400, 600, 5, 3)]:
            for background in (np.zeros((height, width, 3), np.uint8),
                               rng.integers(0, 256, (height, width, 3), np.uint8)):  # fmt: skip
                frames = []
                for i in range(2 * FROZEN_MIN):
                    frame = background.copy()
                    frame[y : y + tall, 4 * i : 4 * i + 6] = 255
                    frames.append(frame)
                handles += rec.submit(frames, episode_index=len(handles))
    for handle in handles:
        health = handle.result().health
        assert health is not None
        assert (health.suspect, health.blank_frames) == (False, 0)
        # A run's first VERIFY_RUN frames are judged by their rows, then pixel by pixel.
        assert health.longest_frozen <= VERIFY_RUN


def test_the_previous_episode_is_compared_only_when_it_is_the_one_before(tmp_path: Path) -> None:
    real = episode_frames(seed=2)
    with Recorder(tmp_path, episode_trigger=always, encode_in="thread") as rec:
        first = rec.submit(real, episode_index=0)[0]
        rec.flush()  # saved before the next is judged
        gap = rec.submit(real[-1:] + real, episode_index=2)[0]  # episode 1 was not recorded
        rec.flush()
        repeats = rec.submit(real[-1:] + real[:5], episode_index=3)[0]
        rec.flush()
    with Recorder(tmp_path / "cut", episode_trigger=always, video_length=5) as rec:
        cut = rec.submit(real, episode_index=0)[0]
        rec.flush()
        after_cut = rec.submit(real[4:], episode_index=1)[0]  # starts where the cut ended
    stale = [h.result().health for h in (first, gap, repeats, cut, after_cut)]
    assert [h.stale_first_frame if h else "none" for h in stale] == [
        None,  # no episode before
        None,  # episode 1 was not recorded
        True,  # episode 2's video ended with this image
        None,
        None,  # episode 0's video was cut by video_length: its end is not the episode's
    ]


@pytest.mark.parametrize("health", [True, False])
def test_encoders_are_asked_to_look_unless_health_is_off(tmp_path: Path, health: bool) -> None:
    fake = FakeEncoders()  # asked through VideoSpec.health; it does not look (no `seen`)
    with Recorder(tmp_path, episode_trigger=always, encoder_factory=fake, health=health) as rec:
        (handle,) = rec.submit(np.zeros((3, 8, 8, 3), np.uint8))
    assert [encoder.spec.health for encoder in fake.made] == [health]
    assert handle.result().health is None
    assert rec.stats().videos_suspect == 0


def test_video_health_is_public() -> None:
    assert recorder.VideoHealth is VideoHealth
    assert "VideoHealth" in recorder.__all__
    assert VideoInfo.__dataclass_fields__["health"].default is None


@pytest.mark.parametrize("encode_in", ["process", "thread"])
def test_an_overlay_does_not_hide_a_frozen_render(tmp_path: Path, encode_in: Any) -> None:
    # The overlay's step counter changes every frame; the scene does not: still suspect.
    if encode_in == "process":
        require_processes()
    frame = np.full((64, 64, 3), 90, np.uint8)
    frame[20:40, 20:40] = 200
    with Recorder(tmp_path, episode_trigger=always, overlay=("step",), encode_in=encode_in) as rec:
        (handle,) = rec.submit([frame] * 30, infos=[{"step": i} for i in range(30)])
    health = handle.result().health
    assert health is not None
    assert health.suspect
    assert health.longest_frozen == 30
    decoded = decode(handle.result().path).frames
    assert not np.array_equal(decoded[0], decoded[-1])  # the text is on the video
