"""Keep best/worst: the streaming ranking against a brute-force oracle, then real recorders."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fakes import budget, gated
from helpers import TinyEnv, decode, flat, painted, play_episodes
from hypothesis import given, settings
from hypothesis import strategies as st

import recorder
from recorder._testing import Keep, Ranking


def oracle(scores: list[float], best: int, worst: int) -> set[int]:
    """The episodes kept: the *best* highest and *worst* lowest scores, ties to the earlier."""
    order = range(len(scores))
    top = sorted(order, key=lambda i: (-scores[i], i))[:best]
    bottom = sorted(order, key=lambda i: (scores[i], i))[:worst]
    return set(top) | set(bottom)


@given(
    st.lists(st.integers(-5, 5).map(float) | st.floats(-1e6, 1e6), max_size=40),
    st.integers(0, 6),
    st.integers(0, 6),
)
def test_ranking_keeps_what_sorting_everything_keeps(
    scores: list[float], best: int, worst: int
) -> None:
    ranking = Ranking(best, worst)
    out: set[int] = set()
    for seq, score in enumerate(scores):
        gone = ranking.add(seq, score)
        assert not (set(gone) & out), "an episode left twice"
        out |= set(gone)
        # After each episode: exactly what the oracle keeps of those seen so far.
        assert ranking.kept() == oracle(scores[: seq + 1], best, worst)
        assert ranking.kept() | out == set(range(seq + 1))


FRAMES = [painted(i) for i in range(6)]


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix == ".mp4"}


@settings(deadline=None, max_examples=25)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=12), st.integers(0, 3), st.integers(0, 3))
def test_recorder_keeps_the_oracles_episodes(tmp_path_factory, scores, best, worst) -> None:  # type: ignore[no-untyped-def]
    if best + worst == 0:
        return
    folder = tmp_path_factory.mktemp("keep")
    with recorder.Recorder(folder, keep={"best": best, "worst": worst}, encode_in="thread") as rec:
        for i, score in enumerate(scores):
            with rec.episode(i) as ep:
                for f in FRAMES[:3]:
                    ep.offer(lambda f=f: f)
                ep.metadata["return"] = score
    kept = oracle([float(s) for s in scores], best, worst)
    assert files(folder) == {f"rl-video-episode-{i}.mp4" for i in kept}
    assert {p.name for p in folder.glob("*.json")} == {f"rl-video-episode-{i}.json" for i in kept}
    events = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    decisions = {e["episode_index"]: e for e in events if e.get("event") == "keep"}
    assert sorted(decisions) == list(range(len(scores)))
    deleted = {e["file"] for e in events if e.get("event") == "deleted"}
    assert deleted == {f"rl-video-episode-{i}.mp4" for i in range(len(scores))} - files(folder)


def test_step_clips_go_with_their_episode_and_the_survivors_decode(tmp_path: Path) -> None:
    with recorder.Recorder(
        tmp_path, step_trigger=lambda s: s % 2 == 0, video_length=2, keep=recorder.Keep(best=1)
    ) as rec:
        for i, score in enumerate([1.0, 9.0, 3.0]):
            with rec.episode(i, step_starting_index=10 * i) as ep:
                for f in FRAMES:
                    ep.offer(lambda f=f: f)
                ep.metadata["return"] = score
    assert files(tmp_path) == {
        "rl-video-step-10.mp4",
        "rl-video-step-12.mp4",
        "rl-video-step-14.mp4",
    }
    lengths = {f: len(decode(tmp_path / f).frames) for f in files(tmp_path)}
    assert lengths == {
        "rl-video-step-10.mp4": 2,
        "rl-video-step-12.mp4": 2,
        "rl-video-step-14.mp4": 1,
    }


def test_unscored_episodes_are_kept_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="recorder"),
        recorder.Recorder(tmp_path, keep={"best": 1}) as rec,
    ):
        for i in range(3):
            rec.submit(FRAMES, episode_index=i)  # no "return" in the metadata
        rec.submit(FRAMES, episode_index=3, metadata={"return": 5})
        rec.submit(FRAMES, episode_index=4, metadata={"return": 7})
    assert files(tmp_path) == {f"rl-video-episode-{i}.mp4" for i in (0, 1, 2, 4)}
    warnings = [r for r in caplog.records if "without a numeric" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("keep", "error"),
    [
        ({"best": 0, "worst": 0}, ValueError),
        ({"best": -1}, ValueError),
        ({"best": 1.5}, ValueError),
        ({"best": 1, "by": ""}, ValueError),
        ({"top": 3}, ValueError),
        ("best", TypeError),
    ],
)
def test_bad_keep_fails_at_the_recorder(tmp_path: Path, keep: object, error: type) -> None:
    with pytest.raises(error):
        recorder.Recorder(tmp_path, keep=keep)  # type: ignore[arg-type]


def test_keep_records_every_episode_by_default(tmp_path: Path) -> None:
    with recorder.Recorder(tmp_path, keep=Keep(best=10)) as rec:
        for i in range(6):  # capped_cubic_video_schedule would record 0, 1 and 8 only
            rec.submit(FRAMES[:2], episode_index=i, metadata={"return": i})
    assert files(tmp_path) == {f"rl-video-episode-{i}.mp4" for i in range(6)}


def test_the_wrapper_keeps_the_best_returns(tmp_path: Path) -> None:
    import gymnasium as gym

    from recorder.wrappers import RecordVideo

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    tmp_path = tmp_path / "videos"
    env = RecordVideo(env, str(tmp_path), recorder_kwargs={"keep": {"best": 2, "worst": 1}})
    returns = play_episodes(env, range(6))
    env.close()
    assert files(tmp_path) == {f"rl-video-episode-{i}.mp4" for i in oracle(returns, 2, 1)}


def test_the_vector_wrapper_refuses_keep_rather_than_ignore_it(tmp_path: Path) -> None:
    import gymnasium as gym

    from recorder.wrappers.vector import RecordVideo

    envs = gym.make_vec("CartPole-v1", num_envs=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="keep is not supported"):
        RecordVideo(envs, str(tmp_path), recorder_kwargs={"keep": {"best": 1}})
    envs.close()


def test_cli_keep_best_and_worst(tmp_path: Path) -> None:
    from recorder.__main__ import main

    out = tmp_path / "videos"
    args = ["record", "CartPole-v1", "--episodes", "7", "--keep-best", "2", "--keep-worst", "1"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    events = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    scores = [
        e["score"]
        for e in sorted(
            (e for e in events if e.get("event") == "keep"), key=lambda e: e["episode_index"]
        )
    ]
    assert len(scores) == 7
    assert files(out) == {f"rl-video-episode-{i}.mp4" for i in oracle(scores, 2, 1)}


def test_an_episode_whose_video_was_dropped_takes_no_keep_slot(tmp_path: Path) -> None:
    fake = gated()
    with recorder.Recorder(tmp_path, keep=Keep(best=1), **budget(3, fake, "drop")) as rec:
        try:
            with rec.episode(0, metadata={"return": 1.0}) as ep:
                for k in range(2):
                    ep.append(flat(k))
            with rec.episode(1, metadata={"return": 9.0}) as ep:
                for k in range(4):  # more than the budget holds while the encoder waits
                    ep.append(flat(k))
            [dropped] = ep.handles
        finally:
            fake.gate.set()
    with pytest.raises(recorder.ClipDroppedError):
        dropped.result(timeout=10)
    # Ranked, the dropped episode would be "the best" and episode 0's video deleted: nothing.
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}


def test_the_wrapper_does_not_rank_an_episode_whose_video_was_dropped(tmp_path: Path) -> None:
    from recorder.wrappers import RecordVideo

    class Rewarding(TinyEnv):
        def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
            obs, _, terminated, truncated, info = super().step(action)
            return obs, 1.0, terminated, truncated, info

    fake = gated()
    frame_bytes = 16 * 24 * 3
    rec = recorder.Recorder(
        tmp_path,
        keep=Keep(best=1),
        **budget(1, fake, "drop") | {"max_queue_bytes": 3 * frame_bytes},
    )
    inner = Rewarding()
    # No per-frame info: the budget holds 3 frames exactly.
    env = RecordVideo(
        inner, str(tmp_path), episode_trigger=lambda e: True, recorder=rec, record_info=False
    )
    try:
        for length in (2, 6):  # returns 2 and 6; the second episode's 7 frames do not fit
            inner.length = length
            env.reset()
            done = False
            while not done:
                _, _, done, _, _ = env.step(0)
        fake.gate.set()
        env.close()
    finally:
        fake.gate.set()
        rec.close()
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}
