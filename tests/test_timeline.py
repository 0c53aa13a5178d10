"""Per-frame info (issue 31): checked at the call, charged to the budget, and written beside
each video as ``{name}.timeline.json`` and ``{name}.vtt``, whose frame i is the video's decoded
frame i, for every way in and every trigger combination."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import anyio
import gymnasium as gym
import numpy as np
import pytest
from fakes import gated
from helpers import FRAME, TinyEnv, always, decode, flat, gymnasium_clips, painted
from hypothesis import given
from hypothesis import strategies as st

import recorder
from recorder import QueueFullError, Recorder
from recorder._testing import MAX_INFO_BYTES, check_info, step_info
from recorder.wrappers import RecordVideo
from recorder.wrappers import vector as vector_wrappers


def timeline(folder: Path, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / f"{name}.timeline.json").read_text())
    return doc


def sidecar(folder: Path, name: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((folder / f"{name}.json").read_text())
    return record


_STAMP = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"


def cues(path: Path) -> list[tuple[Fraction, Fraction, str]]:
    """(start s, end s, text) of each cue of a WebVTT file, which must start with WEBVTT."""
    blocks = path.read_text(encoding="utf-8").split("\n\n")
    assert blocks[0] == "WEBVTT"
    found = []
    for block in filter(None, blocks[1:]):
        timing, text = block.strip("\n").split("\n")  # one line of text per cue
        m = re.fullmatch(f"{_STAMP} --> {_STAMP}", timing)
        assert m, timing
        h, mi, s, ms, h2, mi2, s2, ms2 = map(int, m.groups())
        start = Fraction((h * 60 + mi) * 60 + s) + Fraction(ms, 1000)
        end = Fraction((h2 * 60 + mi2) * 60 + s2) + Fraction(ms2, 1000)
        found.append((start, end, text))
    return found


# -- checked at the call -------------------------------------------------------------------------

BAD = {
    "not a mapping": ([("a", 1)], TypeError, r"info must be a mapping of str keys"),
    "a key not a str": ({1: 2}, TypeError, r"info has the key 1 \(int\): keys are str"),
    "an empty key": ({"": 1}, ValueError, r"keys are 1 to 32 characters"),
    "a long string": ({"s": "x" * 65}, ValueError, r"info\['s'\] is a string of 65 characters"),
    "a long vector": ({"v": list(range(33))}, ValueError, r"info\['v'\] has 33 items"),
    "a nested mapping": ({"d": {"a": 1}}, TypeError, r"info\['d'\] is \{'a': 1\} \(dict\)"),
    "an image": ({"img": np.zeros((2, 2))}, TypeError, r"info\['img'\] is ndarray of shape"),
    "a vector of strings": ({"v": ["a"]}, TypeError, r"info\['v'\] holds 'a' \(str\)"),
    # JSON would write it, but neither the gallery's plot nor a float could read it back.
    "an int beyond a float": ({"n": 10**400}, ValueError, r"info\['n'\] is an int of 1329 bits"),
    "such an int in a vector": ({"v": [1, -(2**1024)]}, ValueError, r"info\['v'\] is an int of"),
    "too many bytes": (
        {f"k{i}": "x" * 60 for i in range(16)},
        ValueError,
        rf"info holds about \d+ bytes, more than the {MAX_INFO_BYTES}",
    ),
}


@pytest.mark.parametrize(("info", "error", "match"), BAD.values(), ids=BAD)
def test_bad_info_is_refused_at_the_call_and_the_recorder_stays_usable(
    tmp_path: Path, info: Any, error: type[Exception], match: str
) -> None:
    renders: list[int] = []

    def render() -> np.ndarray:
        renders.append(1)
        return painted(1)

    with Recorder(tmp_path, episode_trigger=always) as rec:
        with rec.episode(0) as ep:
            ep.append(painted(0), info={"i": 0})
            with pytest.raises(error, match=match):
                ep.append(painted(1), info=info)
            with pytest.raises(error, match=match):
                ep.offer(render, info=info)
            assert renders == []  # refused before rendering: the episode is where it was
            assert ep.frames_seen == 1
            ep.offer(render, info={"i": 1})
        with pytest.raises(error, match=match.replace(r"info", r"infos\[1\]", 1)):
            rec.submit([painted(0), painted(1)], episode_index=1, infos=[None, info])
        assert rec.stats().videos_started == 1  # nothing of episode 1 was queued
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == [0, 1]
    assert timeline(tmp_path, "rl-video-episode-0")["columns"] == {"i": [0, 1]}


def test_infos_must_be_one_per_frame(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=always) as rec:
        with pytest.raises(ValueError, match=r"infos has 1 items for 2 frames: give one per frame"):
            rec.submit([painted(0), painted(1)], infos=[{"i": 0}])
        with pytest.raises(TypeError, match=r"infos must be a sequence of one info .* per frame"):
            rec.submit([painted(0)], infos={"i": 0})  # type: ignore[arg-type]
        assert rec.stats().videos_started == 0


def test_info_is_stored_as_plain_json_values_and_copied_at_the_call(tmp_path: Path) -> None:
    info: dict[str, Any] = {
        "f32": np.float32(0.5),
        "i64": np.int64(3),
        "nan": float("nan"),
        "inf": -np.inf,
        "b": np.bool_(True),
        "vec": np.array([1.5, np.nan]),
        "ints": (1, 2),
        "zero_d": np.array(2.0),
        "s": "hi",
        "none": None,
    }
    with Recorder(tmp_path, episode_trigger=always) as rec, rec.episode(0) as ep:
        ep.append(painted(0), info=info)
        info["s"] = "changed after the call"
    assert timeline(tmp_path, "rl-video-episode-0")["columns"] == {
        "f32": [0.5],
        "i64": [3],
        "nan": [None],
        "inf": [None],
        "b": [True],
        "vec": [[1.5, None]],
        "ints": [[1, 2]],
        "zero_d": [2.0],
        "s": ["hi"],
        "none": [None],
    }


_floats = st.floats() | st.sampled_from([float("nan"), float("inf"), -float("inf")])
_actions = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    _floats,
    st.booleans(),
    st.integers(0, 5).map(np.int64),
    st.floats(width=32).map(np.float32),
    st.lists(_floats, max_size=40).map(np.array),
    st.lists(st.integers(-9, 9), max_size=40).map(tuple),
    st.just({"not": "a number"}),
    st.just("left"),
    st.just(np.zeros((2, 2))),
)


@given(st.none() | st.integers(0, 2**40), st.none() | _floats, _floats, _actions)
def test_the_wrappers_info_is_what_check_info_makes_of_it(
    step: int | None, reward: float | None, ret: float, action: Any
) -> None:
    # The wrappers skip check_info on the training thread: their info must need none.
    info, size = step_info(step, reward, ret, action)
    assert check_info(info) == (info, size)
    assert set(info) == {"step", "reward", "return", "action"}


def test_info_bytes_count_against_the_budget(tmp_path: Path) -> None:
    fake = gated()  # the frames stay in the budget until the test opens the gate
    info = {"reward": 1.0, "note": "ok"}
    size = check_info(info)[1]  # type: ignore[index]
    assert 0 < size <= MAX_INFO_BYTES
    with Recorder(
        tmp_path,
        episode_trigger=always,
        max_queue_bytes=3 * FRAME,
        on_full="raise",
        encoder_factory=fake,
    ) as rec:
        try:
            with rec.episode(0) as ep:
                ep.append(flat(1), info=info)
                assert rec.stats().queued_bytes == FRAME + size
                ep.append(flat(2))
                assert rec.stats().queued_bytes == 2 * FRAME + size
                # A third frame fits the budget; with its info it does not.
                with pytest.raises(QueueFullError, match=f"frame of {FRAME + size}"):
                    ep.append(flat(3), info=info)
        finally:
            fake.gate.set()
        rec.flush()
        assert rec.stats().queued_bytes == 0
        assert rec.stats().peak_queued_bytes == 2 * FRAME + size


# -- frame i of the timeline is frame i of the video ---------------------------------------------

TRIGGERS: dict[str, dict[str, Any]] = {
    "whole episode": {"episode_trigger": always},
    "video_length cuts": {"episode_trigger": always, "video_length": 4},
    "step clips start mid-episode": {"step_trigger": lambda s: s % 5 == 2, "video_length": 3},
    "a step clip to the episode's end": {"step_trigger": lambda s: s == 6},
    "overlapping clips share frames": {
        "episode_trigger": always,
        "step_trigger": lambda s: s in (3, 9),
        "video_length": 8,
    },
}


@pytest.mark.parametrize("how", ["submit", "append", "offer", "thread"])
@pytest.mark.parametrize("triggers", TRIGGERS.values(), ids=TRIGGERS)
def test_timeline_frame_i_is_the_decoded_frame_i_for_every_trigger_combination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, triggers: dict[str, Any], how: str
) -> None:
    frames = [painted(i) for i in range(14)]
    infos = [{"i": i, "label": f"frame {i}"} for i in range(14)]
    infos[5] = None  # type: ignore[call-overload]  # a frame without info: nulls
    kwargs = {"encode_in": "thread"} if how == "thread" else {}
    with Recorder(tmp_path / "v", fps=10, **triggers, **kwargs) as rec:
        if how in ("submit", "thread"):
            rec.submit(frames, infos=infos)
        else:
            with rec.episode(0) as ep:
                for frame, info in zip(frames, infos, strict=True):
                    if how == "offer":
                        ep.offer(lambda frame=frame: frame, info=info)
                    elif ep.wants_frame:
                        ep.append(frame, info=info)
    expected = gymnasium_clips(monkeypatch, frames, tmp_path / "v", 10, **triggers)
    assert sorted(expected) == sorted(p.name for p in (tmp_path / "v").glob("*.mp4"))
    for file, indices in expected.items():
        name = file.removesuffix(".mp4")
        assert decode(tmp_path / "v" / file).indices == indices
        doc = timeline(tmp_path / "v", name)
        assert doc == {
            "version": 1,
            "name": name,
            "fps": 10.0,
            "frames": len(indices),
            "columns": {
                "i": [None if i == 5 else i for i in indices],
                "label": [None if i == 5 else f"frame {i}" for i in indices],
            },
        }
        assert sidecar(tmp_path / "v", name) | {
            "timeline": f"{name}.timeline.json",
            "captions": f"{name}.vtt",
        } == sidecar(tmp_path / "v", name)
        # The cue shown while frame k plays says frame k's info.
        shown = cues(tmp_path / "v" / f"{name}.vtt")
        for k, i in enumerate(indices):
            mid = (k + Fraction(1, 2)) / 10
            texts = [text for start, end, text in shown if start <= mid < end]
            assert texts == ([] if i == 5 else [f"i {i} · label frame {i}"]), (name, k)


# -- the files ---------------------------------------------------------------------------------


def test_captions_merge_runs_of_the_same_text_and_stay_text(tmp_path: Path) -> None:
    infos: list[dict[str, Any] | None] = [{"r": 1.0}] * 3 + [None] + [{"r": 2, "s": "<b>&-->"}] * 2
    with Recorder(tmp_path, episode_trigger=always, fps=10) as rec:
        rec.submit([painted(i) for i in range(6)], infos=infos)
    assert (tmp_path / "rl-video-episode-0.vtt").read_text(encoding="utf-8") == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:00.300\nr 1.0\n\n"
        "00:00:00.400 --> 00:00:00.600\nr 2 · s &lt;b&gt;&amp;--&gt;\n"
    )


def test_above_1000_fps_captions_shorter_than_a_millisecond_are_left_out(
    tmp_path: Path,
) -> None:
    # WebVTT counts milliseconds: a cue from 00:00:00.000 to 00:00:00.000 is not a cue.
    with Recorder(tmp_path, episode_trigger=always, fps=5000) as rec:
        rec.submit([painted(i) for i in range(12)], infos=[{"i": i} for i in range(12)])
    lines = (tmp_path / "rl-video-episode-0.vtt").read_text(encoding="utf-8").splitlines()
    cues = [line.split(" --> ") for line in lines if " --> " in line]
    assert cues
    assert all(start < end for start, end in cues)


def test_no_info_no_timeline_and_sidecars_false_writes_none(tmp_path: Path) -> None:
    with Recorder(tmp_path / "a", episode_trigger=always) as rec:
        rec.submit([painted(0), painted(1)])
        rec.submit([painted(0)], episode_index=1, infos=[None])
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "manifest.jsonl",
        "rl-video-episode-0.json",
        "rl-video-episode-0.mp4",
        "rl-video-episode-1.json",
        "rl-video-episode-1.mp4",
    ]
    assert "timeline" not in sidecar(tmp_path / "a", "rl-video-episode-0")
    with Recorder(tmp_path / "b", episode_trigger=always, sidecars=False) as rec:
        rec.submit([painted(0)], infos=[{"i": 0}])
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["rl-video-episode-0.mp4"]


def test_manifest_names_the_timeline_and_keep_deletes_it_with_its_video(tmp_path: Path) -> None:
    with Recorder(tmp_path, keep={"best": 1}) as rec:
        for episode, ret in enumerate((1.0, 5.0)):
            with rec.episode(episode, metadata={"return": ret}) as ep:
                ep.append(painted(0), info={"return": ret})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "manifest.jsonl",
        "rl-video-episode-1.json",
        "rl-video-episode-1.mp4",
        "rl-video-episode-1.timeline.json",
        "rl-video-episode-1.vtt",
    ]
    saved = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    episode_1 = next(r for r in saved if r.get("name") == "rl-video-episode-1")
    assert episode_1["timeline"] == "rl-video-episode-1.timeline.json"
    assert episode_1["captions"] == "rl-video-episode-1.vtt"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_async_episodes_and_submit_take_info(tmp_path: Path) -> None:
    async with recorder.AsyncRecorder(tmp_path, episode_trigger=always) as rec:
        async with rec.episode(0) as ep:
            await ep.append(painted(0), info={"i": 0})
            await ep.offer(lambda: painted(1), info={"i": 1})
            ep.append_nowait(painted(2), info={"i": 2})
            with pytest.raises(TypeError, match="info must be a mapping"):
                await ep.append(painted(3), info=3)  # type: ignore[arg-type]
        await rec.submit([painted(0), painted(1)], episode_index=1, infos=[{"i": 0}, None])
        with pytest.raises(ValueError, match="infos has 1 items for 2 frames"):
            await rec.submit([painted(0), painted(1)], episode_index=2, infos=[{"i": 0}])
    await anyio.lowlevel.checkpoint()
    assert timeline(tmp_path, "rl-video-episode-0")["columns"] == {"i": [0, 1, 2]}
    assert timeline(tmp_path, "rl-video-episode-1")["columns"] == {"i": [0, None]}
    assert not (tmp_path / "rl-video-episode-2.mp4").exists()


# -- the wrappers --------------------------------------------------------------------------------


class Counting(gym.Env[int, int]):
    """Episodes of *length* steps whose rewards vary; frame k after a reset shows the number of
    steps taken since the env was made (painted), so a frame tells its step."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012
    action_space = gym.spaces.Discrete(3)
    observation_space = gym.spaces.Discrete(1000)

    def __init__(self, length: int = 4, render_mode: str | None = "rgb_array") -> None:
        self.render_mode = render_mode
        self.length = length
        self.steps = 0  # every step, all episodes
        self.t = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.t += 1
        self.steps += 1
        reward = 0.1 * self.t + 0.01 * action  # not a multiple of anything: sums tell apart
        return self.t, reward, self.t >= self.length, False, {}

    def render(self) -> np.ndarray:
        return painted(self.steps)


def returns_of(env: Any, episodes: int, actions: Callable[[int], Any]) -> list[float]:
    """Run *episodes* episodes of the single env *env* (RecordEpisodeStatistics outermost);
    gymnasium's returns."""
    found = []
    env.reset(seed=0)
    step = 0
    while len(found) < episodes:
        _, _, terminated, truncated, info = env.step(actions(step))
        step += 1
        if terminated or truncated:
            found.append(float(info["episode"]["r"]))
            env.reset()
    env.close()
    return found


WRAPPER_TRIGGERS: dict[str, dict[str, Any]] = {
    "every episode": {"episode_trigger": always},
    "step clips across episodes": {"step_trigger": lambda s: s in (2, 9), "video_length": 6},
    "video_length cuts": {"episode_trigger": lambda e: e % 2 == 1, "video_length": 2},
}


@pytest.mark.parametrize("triggers", WRAPPER_TRIGGERS.values(), ids=WRAPPER_TRIGGERS)
def test_record_video_timelines_match_the_frames_and_record_episode_statistics(
    tmp_path: Path, triggers: dict[str, Any]
) -> None:
    folder = tmp_path / "v"
    wrapped = RecordVideo(
        Counting(length=4), str(folder), **triggers, recorder_kwargs={"sidecars": True}
    )
    stats = gym.wrappers.RecordEpisodeStatistics(wrapped)
    returns = returns_of(stats, 5, lambda step: step % 3)
    videos = sorted(folder.glob("*.mp4"))
    assert videos
    for video in videos:
        indices = decode(video).indices
        doc = timeline(folder, video.stem)
        columns = doc["columns"]
        assert doc["frames"] == len(indices) == len(columns["step"])
        assert list(columns) == ["step", "reward", "return", "action"]
        total = None
        for k, (step, reward, ret, action) in enumerate(
            zip(
                columns["step"],
                columns["reward"],
                columns["return"],
                columns["action"],
                strict=True,
            )
        ):
            if step is None:  # a reset frame: the episode's return starts again
                assert (reward, ret, action) == (None, 0.0, None)
                total = 0.0
            else:
                assert indices[k] == step + 1  # the frame the env rendered after step `step`
                assert action == step % 3
                if total is not None:
                    total += reward
                    assert ret == pytest.approx(total)
    # Each whole-episode clip ends with gymnasium's return of that episode, exactly.
    if triggers.get("episode_trigger") is always:
        for episode, ret in enumerate(returns):
            assert timeline(folder, f"rl-video-episode-{episode}")["columns"]["return"][-1] == ret


def test_record_info_false_and_an_unused_info_record_nothing(tmp_path: Path) -> None:
    for folder, kwargs in (
        ("off", {"record_info": False, "recorder_kwargs": {"sidecars": True}}),
        ("default", {}),  # sidecars off (gymnasium's files only) and no overlay: no info made
    ):
        env = RecordVideo(Counting(), str(tmp_path / folder), episode_trigger=always, **kwargs)
        env.reset()
        env.step(0)
        env.close()
        assert not list((tmp_path / folder).glob("*.timeline.json"))
    with Recorder(tmp_path / "shared") as rec:
        env = RecordVideo(
            Counting(), str(tmp_path / "shared"), episode_trigger=always, recorder=rec
        )
        env.reset()
        env.step(2)
        env.close()
    assert timeline(tmp_path / "shared", "rl-video-episode-0")["columns"] == {
        "step": [None, 0],
        "reward": [None, pytest.approx(0.12)],
        "return": [0.0, pytest.approx(0.12)],
        "action": [None, 2],
    }


def vector_env(n: int, mode: gym.vector.AutoresetMode) -> gym.vector.SyncVectorEnv:
    lengths = [3, 4, 5]
    return gym.vector.SyncVectorEnv(
        [lambda k=k: Counting(lengths[k]) for k in range(n)], autoreset_mode=mode
    )


def vector_returns(env: Any, steps: int) -> dict[int, list[float]]:
    """Step the vector *env* (RecordEpisodeStatistics outermost); each sub-env's returns."""
    found: dict[int, list[float]] = {}
    env.reset(seed=0)
    for step in range(steps):
        actions = np.array([(step + j) % 3 for j in range(env.num_envs)])
        _, _, _, _, info = env.step(actions)
        if "episode" in info:
            for j in np.flatnonzero(info["_episode"]):
                found.setdefault(int(j), []).append(float(info["episode"]["r"][j]))
    env.close()
    return found


@pytest.mark.parametrize("per_env", [True, False])
def test_vector_timelines_match_record_episode_statistics(tmp_path: Path, per_env: bool) -> None:
    folder = tmp_path / "v"
    wrapped = vector_wrappers.RecordVideo(
        vector_env(3, gym.vector.AutoresetMode.NEXT_STEP),
        str(folder),
        episode_trigger=always,
        per_env=per_env,
        recorder_kwargs={"sidecars": True},
    )
    stats = gym.wrappers.vector.RecordEpisodeStatistics(wrapped)
    returns = vector_returns(stats, 20)
    prefixes = {j: f"rl-video-env-{j}" for j in range(3)} if per_env else {0: "rl-video"}
    for j, prefix in prefixes.items():
        assert len(returns[j]) >= 3
        for episode, ret in enumerate(returns[j]):
            name = f"{prefix}-episode-{episode}"
            columns = timeline(folder, name)["columns"]
            assert len(columns["step"]) == len(decode(folder / f"{name}.mp4").indices)
            assert columns["return"][-1] == ret, name
            # The episode's first frame starts its return; the rest add their rewards.
            assert columns["return"][0] == 0.0
            assert columns["return"][1:] == pytest.approx(np.cumsum(columns["reward"][1:]))
            assert columns["action"][1:] == [(s + j) % 3 for s in columns["step"][1:]]


def test_vector_same_step_autoreset_starts_episodes_without_a_reward(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="autoreset mode is same-step"):
        env = vector_wrappers.RecordVideo(
            vector_env(2, gym.vector.AutoresetMode.SAME_STEP),
            str(tmp_path / "v"),
            episode_trigger=always,
            per_env=True,
            recorder_kwargs={"sidecars": True},
        )
    env.reset(seed=0)
    for step in range(12):
        env.step(np.array([step % 3, step % 3]))
    env.close()
    # Sub-env 0's episodes are 3 steps: the second starts with the step that ended the first.
    columns = timeline(tmp_path / "v", "rl-video-env-0-episode-1")["columns"]
    assert columns["step"][0] == 2
    assert (columns["reward"][0], columns["return"][0]) == (None, 0.0)
    assert columns["return"][1:] == pytest.approx(np.cumsum(columns["reward"][1:]))


class Rewarding(TinyEnv):
    """TinyEnv whose rewards are whatever *reward* makes of the step (a vector: multi-objective)."""

    def __init__(self, reward: Callable[[int], Any]) -> None:
        super().__init__()
        self.reward = reward

    def step(self, action: int) -> tuple[int, Any, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = super().step(action)
        return obs, self.reward(self.t), terminated, truncated, info


@pytest.mark.parametrize("record_info", [True, False])
def test_a_reward_that_is_not_one_number_passes_through_and_is_recorded_as_null(
    tmp_path: Path, record_info: bool
) -> None:
    # mo-gymnasium's rewards are vectors: gymnasium's RecordVideo passes them through.
    env = RecordVideo(
        Rewarding(lambda t: np.array([t, -t], dtype=np.float32)), str(tmp_path / "v"),
        episode_trigger=always, record_info=record_info, recorder_kwargs={"sidecars": True},
    )  # fmt: skip
    env.reset(seed=0)
    _, reward, *_ = env.step(0)
    assert reward.tolist() == [1.0, -1.0]  # the env's own, untouched
    for _ in range(4):
        env.step(0)
    env.close()
    assert sidecar(tmp_path / "v", "rl-video-episode-0")["metadata"]["return"] is None
    if record_info:
        columns = timeline(tmp_path / "v", "rl-video-episode-0")["columns"]
        assert columns["reward"] == [None] * 6
        assert columns["return"] == [0.0] + [None] * 5  # from the first vector reward on
        assert columns["step"] == [None, 0, 1, 2, 3, 4]


def test_a_reward_of_one_number_in_an_array_counts(tmp_path: Path) -> None:
    # numpy 2.4 refuses float() of a 1-element vector: the wrapper takes its one number.
    env = RecordVideo(
        Rewarding(lambda t: np.array([float(t)])), str(tmp_path / "v"), episode_trigger=always,
        recorder_kwargs={"sidecars": True},
    )  # fmt: skip
    env.reset(seed=0)
    for _ in range(5):
        env.step(0)
    env.close()
    columns = timeline(tmp_path / "v", "rl-video-episode-0")["columns"]
    assert columns["reward"] == [None, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert columns["return"] == [0.0, 1.0, 3.0, 6.0, 10.0, 15.0]
    assert sidecar(tmp_path / "v", "rl-video-episode-0")["metadata"]["return"] == 15.0


@pytest.mark.parametrize("per_env", [True, False])
def test_vector_rewards_that_are_not_one_number_each_are_recorded_as_null(
    tmp_path: Path, per_env: bool
) -> None:
    class TwoObjectives(gym.vector.VectorWrapper):
        def step(self, actions: Any) -> Any:
            obs, rewards, terminations, truncations, info = self.env.step(actions)
            return obs, np.stack([rewards, -rewards], axis=1), terminations, truncations, info

    envs = gym.vector.SyncVectorEnv([lambda: Counting(3), lambda: Counting(4)])
    wrapped = vector_wrappers.RecordVideo(
        TwoObjectives(envs), str(tmp_path / "v"), episode_trigger=always, per_env=per_env,
        recorder_kwargs={"sidecars": True},
    )  # fmt: skip
    wrapped.reset(seed=0)
    for step in range(3):
        _, rewards, *_ = wrapped.step(np.array([step % 3, step % 3]))
        assert rewards.shape == (2, 2)
    wrapped.close()
    name = "rl-video-env-0-episode-0" if per_env else "rl-video-episode-0"
    columns = timeline(tmp_path / "v", name)["columns"]
    assert columns["reward"][1:] == [None] * 3
    assert columns["return"][1:] == [None] * 3
