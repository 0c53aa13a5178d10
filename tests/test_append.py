"""The training thread's append: frames in order, exact lengths, bad frames refused at the call,
reused buffers copied, and a close from another thread."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoders, gated
from helpers import FRAME, always, decode, flat, painted, read_index

import recorder
from recorder import RecorderClosedError


def test_frames_are_encoded_in_order(tmp_path: Path) -> None:
    frames = [painted(i) for i in range(40)]
    with recorder.Recorder(tmp_path, fps=10, episode_trigger=always) as rec, rec.episode(0) as ep:
        for frame in frames:
            ep.append(frame)
    decoded = decode(tmp_path / "rl-video-episode-0.mp4")
    assert [read_index(f) for f in decoded.frames] == list(range(40))


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


def test_bad_frames_are_refused_at_the_call(tmp_path: Path) -> None:
    fake = FakeEncoders()
    with (
        recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec,
        rec.episode(0) as ep,
    ):
        ep.append(flat(1))
        ep.append(flat(2))
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


def test_a_failed_clip_stops_taking_frames_at_once(tmp_path: Path) -> None:
    fake = FakeEncoders(fail_at=0)
    renders: list[int] = []

    def render() -> np.ndarray:
        renders.append(1)
        return flat(1)

    rec = recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    ep = rec.episode(0)
    ep.append(flat(0))  # the encoder fails on this frame
    assert ep.handles[0].exception(timeout=30) is not None
    assert [ep.offer(render) for _ in range(10)] == [False] * 10
    assert renders == []  # nothing rendered for a clip that cannot take it
    stats = rec.stats()
    assert (stats.frames_submitted, stats.frames_dropped) == (1, 1)
    ep.close()
    with pytest.raises(OSError, match="No space left"):
        rec.close()


def test_the_peak_counts_every_frame_waiting(tmp_path: Path) -> None:
    fake = gated()
    with recorder.Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        ep = rec.episode(0)
        ep.append(flat(0))  # a worker takes it at once (a clip's first frame) and waits
        assert fake.started.wait(timeout=30)
        for i in range(1, 6):
            ep.append(flat(i))
        fake.gate.set()  # frame 0 is released after frames 1-5 were queued
        rec.flush()
        assert rec.stats().peak_queued_bytes == 6 * FRAME
        ep.close()
