"""A clip cut short is marked ``"partial": true`` in its sidecar (``VideoInfo.partial``).

Cut short: ended while its episode was still going, by a close (the episode's, a wrapper's or
the Recorder's) as Ctrl-C unwinds, or by the Recorder's close while its episode was open. A clip
ended by its episode's end or its video_length is whole, even if Ctrl-C comes later.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import gymnasium as gym
import pytest
from helpers import always, decode, painted, run_child

import recorder
from recorder.wrappers import RecordVideo


def sidecar(folder: Path, name: str) -> dict[str, object]:
    return dict(json.loads((folder / f"{name}.json").read_text()))


def ctrl_c_in_episode(rec: recorder.Recorder, index: int, frames: int) -> None:
    """Stream *frames* frames of episode *index*, then Ctrl-C inside its ``with`` block."""
    with rec.episode(index) as ep:
        for k in range(frames):
            ep.append(painted(k))
        raise KeyboardInterrupt


def test_an_episode_left_by_ctrl_c_is_partial_the_others_whole(tmp_path: Path) -> None:
    with recorder.Recorder(tmp_path, episode_trigger=always, video_length=3) as rec:
        with rec.episode(0) as ep:  # ended by its end
            for k in range(2):
                ep.append(painted(k))
        with pytest.raises(KeyboardInterrupt):
            ctrl_c_in_episode(rec, 1, frames=2)  # mid-episode
        with pytest.raises(KeyboardInterrupt):
            ctrl_c_in_episode(rec, 2, frames=4)  # its clip was complete at 3 (video_length)
    assert ep.handles[0].result().partial is False
    partial = {e: sidecar(tmp_path, f"rl-video-episode-{e}")["partial"] for e in range(3)}
    assert partial == {0: False, 1: True, 2: False}
    assert len(decode(tmp_path / "rl-video-episode-1.mp4").frames) == 2  # saved as it was
    lines = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert {line["name"]: line["partial"] for line in lines} == {
        f"rl-video-episode-{e}": partial[e] for e in range(3)
    }


def close_after_ctrl_c(ep: recorder.Episode) -> None:
    try:
        ep.append(painted(0))
        raise KeyboardInterrupt
    finally:
        ep.close()


def test_close_in_a_finally_after_ctrl_c_marks_the_open_clip(tmp_path: Path) -> None:
    rec = recorder.Recorder(tmp_path, episode_trigger=always)
    ep = rec.episode(0)
    with pytest.raises(KeyboardInterrupt):
        close_after_ctrl_c(ep)
    rec.close()
    assert ep.handles[0].result().partial is True


def test_a_recorder_closed_with_an_episode_open_marks_its_clip(tmp_path: Path) -> None:
    rec = recorder.Recorder(tmp_path, episode_trigger=always)
    ep = rec.episode(0)
    ep.append(painted(0))
    rec.close()  # no Ctrl-C: the episode never ended all the same
    assert ep.handles[0].result().partial is True
    assert sidecar(tmp_path, "rl-video-episode-0")["partial"] is True


def test_an_episode_collected_unclosed_ends_its_clips_at_the_next_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A loop that forgets close(): each clip would stay open (a file, an encoder) until the
    # Recorder closes. The next episode's first clip (or a flush) ends it where it was.
    caplog.set_level(logging.DEBUG, logger="recorder")
    with recorder.Recorder(tmp_path, episode_trigger=always) as rec:
        handles = []
        for e in range(4):
            ep = rec.episode(e)  # the previous episode is collected here, unclosed
            for k in range(3):
                ep.append(painted(k))
            handles += ep.handles
        rec.flush()
        assert [h.done() for h in handles] == [True, True, True, False]  # the last is held
        del ep
        rec.flush()  # it was collected: flush ends it, then waits for it
        assert all(h.done() for h in handles)
        assert rec.stats().videos_in_progress == 0
    for e, handle in enumerate(handles):
        info = handle.result()
        assert (info.frames, info.partial) == (3, True)
        assert decode(info.path).indices == [0, 1, 2]
        assert sidecar(tmp_path, f"rl-video-episode-{e}")["partial"] is True
    warned = [r for r in caplog.records if "garbage-collected without close()" in r.getMessage()]
    assert [r.levelname for r in warned] == ["WARNING", "DEBUG", "DEBUG", "DEBUG"]


def play_then_ctrl_c(env: RecordVideo) -> None:
    """Episode 0 whole, then 3 steps of episode 1 (both recorded: capped cubic) and Ctrl-C;
    the wrapper is closed on the way out, as a training script's ``finally`` does."""
    try:
        env.reset(seed=0)
        done = False
        while not done:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
        env.reset(seed=1)
        for _ in range(3):
            env.step(env.action_space.sample())
        raise KeyboardInterrupt
    finally:
        env.close()


def test_a_wrapper_closed_after_ctrl_c_marks_its_open_clip(tmp_path: Path) -> None:
    saved: list[recorder.VideoInfo] = []  # the drop-ins write no sidecars: on_saved says
    env = RecordVideo(
        gym.make("CartPole-v1", render_mode="rgb_array"),
        str(tmp_path / "videos"),
        on_saved=saved.append,
    )
    with pytest.raises(KeyboardInterrupt):
        play_then_ctrl_c(env)
    assert sorted((info.name, info.partial) for info in saved) == [
        ("rl-video-episode-0", False),
        ("rl-video-episode-1", True),
    ]
    assert len(decode(tmp_path / "videos" / "rl-video-episode-1.mp4").frames) == 4


def test_a_script_stopped_by_ctrl_c_saves_its_open_clip_as_partial(tmp_path: Path) -> None:
    code = """
        import sys
        import numpy as np
        import recorder

        rec = recorder.Recorder(sys.argv[1], episode_trigger=lambda e: True)
        ep = rec.episode(0)
        for k in range(4):
            ep.append(np.full((16, 16, 3), 40 * k, np.uint8))
        raise KeyboardInterrupt  # never closed: the interpreter's exit flushes it
    """
    done = run_child(code, tmp_path)
    assert done.returncode != 0
    assert "KeyboardInterrupt" in done.stderr
    assert sidecar(tmp_path, "rl-video-episode-0")["partial"] is True
    assert len(decode(tmp_path / "rl-video-episode-0.mp4").frames) == 4
