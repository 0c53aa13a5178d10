"""The append fast path (recorder._lane): blocks reserved for a clip's next frames.

Whatever the path a frame takes, the videos, the counters and the budget are what the full
path gives: these tests stream past the points where a lane is opened, refilled, spent and
reclaimed, and check frames (decoded back, or as the fake encoder saw them) and stats().
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import FRAME, FakeEncoders, always, budget, decode, flat, gated, painted, read_index

import recorder
from recorder import QueueFullError, RecorderClosedError


def test_frames_on_the_fast_path_are_encoded_in_order(tmp_path: Path) -> None:
    frames = [painted(i) for i in range(40)]
    with recorder.Recorder(tmp_path, fps=10, episode_trigger=always) as rec, rec.episode(0) as ep:
        for frame in frames:
            ep.append(frame)
        lane = ep._lane
        assert lane is not None
        assert not lane.spent
    decoded = decode(tmp_path / "rl-video-episode-0.mp4")
    assert [read_index(f) for f in decoded.frames] == list(range(40))


def test_stats_and_flush_count_the_lane_frames(tmp_path: Path) -> None:
    fake = FakeEncoders()
    with (
        recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec,
        rec.episode(0) as ep,
    ):
        for i in range(5):  # fewer than a lane's blocks: all still in the lane
            ep.append(flat(i))
        stats = rec.stats()
        assert stats.frames_submitted == 5
        # Reserved blocks hold no frame: neither queued nor at the peak.
        assert stats.queued_bytes <= 5 * FRAME
        assert stats.peak_queued_bytes <= 5 * FRAME
        rec.flush()
        assert fake.made[0].frames == [0, 1, 2, 3, 4]
        assert rec.stats().queued_bytes == 0
    assert rec.stats().frames_encoded == 5


@pytest.mark.parametrize("length", [2, 9, 20])
def test_video_length_is_exact(tmp_path: Path, length: int) -> None:
    fake = FakeEncoders()
    with (
        recorder.Recorder(
            tmp_path, episode_trigger=always, video_length=length, encoder_factory=fake
        ) as rec,
        rec.episode(0) as ep,
    ):
        for i in range(30):
            if ep.wants_frame:
                ep.append(flat(i))
    assert fake.plan() == {"rl-video-episode-0": list(range(length))}


def test_bad_frames_are_refused_on_the_fast_path_too(tmp_path: Path) -> None:
    fake = FakeEncoders()
    with (
        recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec,
        rec.episode(0) as ep,
    ):
        ep.append(flat(1))
        ep.append(flat(2))
        assert ep._lane is not None
        with pytest.raises(ValueError, match="shape changed"):
            ep.append(flat(3, height=10))
        with pytest.raises(TypeError):
            ep.append(np.zeros((8, 8, 3), np.float32))
        # A view that is not C-contiguous takes the full path, and is recorded whole.
        ep.append(np.full((8, 16, 3), 4, np.uint8)[:, ::2])
        ep.append(np.asfortranarray(flat(5)))
        ep.append(flat(6).tolist())
    assert fake.made[0].frames == [1, 2, 4, 5, 6]


def test_a_reused_buffer_is_copied_at_each_append(tmp_path: Path) -> None:
    fake = FakeEncoders()
    buffer = flat(0)
    with (
        recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec,
        rec.episode(0) as ep,
    ):
        for i in range(30):
            buffer[...] = i  # the natural mistake: one render buffer, rewritten
            ep.append(buffer)
    assert fake.made[0].frames == list(range(30))


@pytest.mark.parametrize("on_full", ["drop", "raise"])
def test_reserved_blocks_never_make_another_clip_drop(tmp_path: Path, on_full: str) -> None:
    # Episode a's lane holds blocks of the budget; episode b (same thread) needs them.
    fake = gated()
    with recorder.Recorder(tmp_path, **budget(16, fake, on_full=on_full)) as rec:
        a = rec.episode(0)
        a.append(flat(0))
        a.append(flat(0))
        assert a._lane is not None
        assert a._lane.spare
        b = rec.episode(1)
        appended = 0
        try:
            while rec.stats().frames_dropped == 0:
                b.append(flat(1))
                appended += 1
        except QueueFullError:
            appended += 1
        # Every byte of the budget held a frame before b's clip was dropped.
        assert 2 + appended - 1 == 16
        fake.gate.set()
        a.close()
        b.close()


def test_lanes_of_many_open_episodes_share_a_small_budget(tmp_path: Path) -> None:
    fake = FakeEncoders()
    with recorder.Recorder(tmp_path, **budget(16, fake, on_full="block")) as rec:
        episodes = []
        for i in range(10):  # each first frame opens a lane of up to 2 of the 16 blocks
            ep = rec.episode(i)
            ep.append(flat(i))
            rec.flush()
            episodes.append(ep)
        stats = rec.stats()
        assert stats.queued_bytes == 0  # reserved blocks hold no frame ...
        assert stats.peak_queued_bytes == FRAME  # ... nor count at the peak
        for i, ep in enumerate(episodes):
            ep.append(flat(i))
            ep.close()
    assert sorted(e.frames for e in fake.made) == [[i, i] for i in range(10)]


def test_an_append_that_returns_was_recorded_when_another_thread_closes(tmp_path: Path) -> None:
    fake = FakeEncoders()
    rec = recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    ep = rec.episode(0)
    ep.append(flat(0))
    started = threading.Event()
    done: list[int] = []

    def produce() -> None:
        i = 1
        try:
            while True:
                ep.append(flat(i % 250))
                done.append(i % 250)
                i += 1
                if i == 100:
                    started.set()
        except RecorderClosedError:
            pass
        finally:
            started.set()

    thread = threading.Thread(target=produce)
    thread.start()
    assert started.wait(timeout=30)
    rec.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert fake.made[0].frames == [0, *done]
    stats = rec.stats()
    assert stats.frames_submitted == stats.frames_encoded + stats.frames_dropped
