"""The append fast path (recorder._lane): blocks reserved for a clip's next frames.

Whatever the path a frame takes, the videos, the counters and the budget are what the full
path gives: these tests stream past the points where a lane is opened, refilled, spent and
reclaimed, and check frames (decoded back, or as the fake encoder saw them) and stats().
"""

from __future__ import annotations

import inspect
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import numpy as np
import pytest
from helpers import FRAME, FakeEncoders, always, budget, decode, flat, gated, painted, read_index

import recorder
from recorder import QueueFullError, RecorderClosedError
from recorder import _lane as lane_module


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
            ep.append(np.zeros((8, 8, 3), np.bool_))
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


def test_full_path_frames_count_against_the_length(tmp_path: Path) -> None:
    # Blocks reserved while the clip had room for them; then frames come the full way.
    fake = FakeEncoders()
    with (
        recorder.Recorder(
            tmp_path, episode_trigger=always, video_length=10, encoder_factory=fake
        ) as rec,
        rec.episode(0) as ep,
    ):
        ep.append(flat(0))
        for i in range(1, 6):
            ep.append(np.asfortranarray(flat(i)))
        for i in range(6, 30):
            if ep.wants_frame:
                ep.append(flat(i))
    assert fake.made[0].frames == list(range(10))


def test_no_lane_for_frames_it_could_not_take(tmp_path: Path) -> None:
    fake = FakeEncoders()
    rgba = np.zeros((8, 8, 4), np.uint8)
    with recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        for i, frame in enumerate([np.asfortranarray(flat(1)), flat(1).tolist(), rgba]):
            with rec.episode(i) as ep:
                ep.append(frame)
                ep.append(frame)
                assert ep._lane is None
        rec.submit([flat(1)] * 3)
        assert not rec._queue._lanes


def test_a_failed_clip_stops_taking_frames_at_once(tmp_path: Path) -> None:
    fake = FakeEncoders(fail_at=0)
    renders: list[int] = []

    def render() -> np.ndarray:
        renders.append(1)
        return flat(1)

    rec = recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    ep = rec.episode(0)
    ep.append(flat(0))  # opens the lane; the encoder fails on this frame
    assert ep.handles[0].exception(timeout=30) is not None
    assert [ep.offer(render) for _ in range(10)] == [False] * 10
    assert renders == []  # nothing rendered for a clip that cannot take it
    stats = rec.stats()
    assert (stats.frames_submitted, stats.frames_dropped) == (1, 1)
    ep.close()
    with pytest.raises(OSError, match="No space left"):
        rec.close()


def test_append_nowait_sees_reserved_blocks_as_room(tmp_path: Path) -> None:
    async def main() -> None:
        fake = gated()  # nothing is released
        async with recorder.AsyncRecorder(tmp_path, **budget(16, fake)) as rec:
            a = rec.episode(0)
            for i in range(15):
                a.append_nowait(flat(i))
            b = rec.episode(1)
            b.append_nowait(flat(99))  # the 16th frame of 16 fits
            fake.gate.set()
            a.close()
            b.close()
        assert sorted(len(e.frames) for e in fake.made) == [1, 15]

    anyio.run(main)


def test_the_peak_counts_the_frames_a_lane_holds(tmp_path: Path) -> None:
    fake = gated()
    with recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        ep = rec.episode(0)
        ep.append(flat(0))  # a worker takes it at once (a clip's first frame) and waits
        assert fake.started.wait(timeout=30)
        for i in range(1, 6):
            ep.append(flat(i))  # into the lane
        fake.gate.set()  # frame 0 is released while frames 1-5 are in the lane
        rec.flush()
        assert rec.stats().peak_queued_bytes == 6 * FRAME
        ep.close()


def test_ctrl_c_in_the_middle_of_an_append_loses_no_budget(tmp_path: Path) -> None:
    # KeyboardInterrupt raised right at the copy, after the lane's block was taken.
    source = inspect.getsource(lane_module)
    line = next(
        i for i, text in enumerate(source.splitlines(), 1) if text.strip() == "view[:] = source"
    )
    armed = [False]

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code is not lane_module.put.__code__:
            return None

        def local(fr: FrameType, ev: str, a: object) -> Any:
            if ev == "line" and fr.f_lineno == line and armed[0]:
                armed[0] = False
                raise KeyboardInterrupt
            return local

        return local

    fake = FakeEncoders()
    rec = recorder.Recorder(tmp_path, **budget(16, fake))
    with rec.episode(0) as ep:
        ep.append(flat(0))
        armed[0] = True
        sys.settrace(tracer)
        try:
            with pytest.raises(KeyboardInterrupt):
                ep.append(flat(1))
        finally:
            sys.settrace(None)
        ep.append(flat(2))
    rec.close()
    memory = rec._queue.memory
    assert (memory.queued_bytes, memory.reserved) == (0, 0)
    assert fake.made[0].frames == [0, 2]
