"""The streaming API (issue 13): one wants_frame answer per frame, offer(), stalled episodes.

Also the internal interface between the core's rooms (issue 17 item 5): only the Recorder
touches its queue.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import FakeEncoders
from helpers import always, decode, flat, painted

import recorder
from recorder import Recorder
from recorder._testing import service_of

# -- the loop of DESIGN.md, without an else branch -------------------------------------------


def test_design_example_without_else_records_save_videos_clips(tmp_path: Path) -> None:
    frames = [painted(i) for i in range(25)]
    with Recorder(tmp_path, fps=30, step_trigger=lambda s: s % 10 == 0) as rec:
        with rec.episode(5, step_starting_index=33) as ep:
            for f in frames:
                if ep.wants_frame:
                    ep.append(f)
        assert [h.name for h in ep.handles] == ["rl-video-step-40", "rl-video-step-50"]
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == [
        "rl-video-step-40.mp4",
        "rl-video-step-50.mp4",
    ]
    # gymnasium's save_video: step 40 is frame 8 (frame 1 is step 33), step 50 frame 18.
    assert decode(tmp_path / "rl-video-step-40.mp4").indices == list(range(8, 25))
    assert decode(tmp_path / "rl-video-step-50.mp4").indices == list(range(18, 25))
    assert rec.stats().episodes_stalled == 0


def test_a_second_read_after_true_stays_on_the_frame(tmp_path: Path) -> None:
    fake = FakeEncoders()
    with (
        Recorder(tmp_path, episode_trigger=always, video_length=3, encoder_factory=fake) as rec,
        rec.episode(0) as ep,
    ):
        for k in range(5):
            if ep.wants_frame:  # check before rendering...
                frame = flat(k)
                if ep.wants_frame:  # ...and again before appending: the same frame
                    ep.append(frame)
        # The last False answer is for frame 4, which has not gone by yet.
        assert ep.frames_seen == 4
    assert fake.by_name("rl-video-episode-0").frames == [0, 1, 2]


def test_a_second_read_after_false_passes_the_frame(tmp_path: Path) -> None:
    with Recorder(
        tmp_path, step_trigger=lambda s: s == 2, video_length=1, encoder_factory=FakeEncoders()
    ) as rec:
        ep = rec.episode(0)
        assert not ep.wants_frame  # frame 0, the reset frame
        assert ep.frames_seen == 0
        assert not ep.wants_frame  # frame 0 went by: this is frame 1 (step 0)
        assert ep.frames_seen == 1
        assert not ep.wants_frame  # frame 2 (step 1)
        assert ep.wants_frame  # frame 3 (step 2)
        assert ep.frames_seen == 3
        ep.append(flat(3))
        # skip() and append() after a False answer take that same frame.
        assert not ep.wants_frame  # frame 4
        ep.skip()
        assert ep.frames_seen == 5
        assert not ep.wants_frame  # frame 5
        ep.append(flat(5))  # ignored
        assert ep.frames_seen == 6
        ep.close()
    assert [h.result().first_step for h in ep.handles] == [2]
    assert rec.stats().frames_submitted == 1


def test_skip_still_refuses_a_wanted_frame(tmp_path: Path) -> None:
    with (
        Recorder(tmp_path, episode_trigger=always, encoder_factory=FakeEncoders()) as rec,
        rec.episode(0) as ep,
    ):
        assert ep.wants_frame
        with pytest.raises(RuntimeError, match="append it"):
            ep.skip()
        ep.append(flat(0))


# -- offer ---------------------------------------------------------------------------------


def test_offer_renders_only_the_frames_a_clip_wants(tmp_path: Path) -> None:
    calls: list[int] = []
    now = [0]  # the frame the loop is at

    def render() -> np.ndarray:
        calls.append(now[0])
        return painted(now[0])

    with Recorder(tmp_path, step_trigger=lambda s: s in (3, 10), video_length=4) as rec:
        with rec.episode(0) as ep:
            results = []
            for k in range(20):
                now[0] = k
                results.append(ep.offer(render))
        assert ep.frames_seen == 20
    # step s is frame s + 1: clips of frames 4..7 and 11..14
    wanted = [*range(4, 8), *range(11, 15)]
    assert calls == wanted
    assert results == [k in wanted for k in range(20)]
    assert decode(tmp_path / "rl-video-step-3.mp4").indices == list(range(4, 8))
    assert decode(tmp_path / "rl-video-step-10.mp4").indices == list(range(11, 15))


def test_offer_refuses_a_non_callable(tmp_path: Path) -> None:
    with (
        Recorder(tmp_path, episode_trigger=always, encoder_factory=FakeEncoders()) as rec,
        rec.episode(0) as ep,
    ):
        with pytest.raises(TypeError, match="callable"):
            ep.offer(flat(0))  # type: ignore[arg-type]
        assert ep.frames_seen == 0
        assert ep.offer(lambda: flat(0))


def test_offer_whose_render_closes_the_episode_appends_nothing(tmp_path: Path) -> None:
    # It appended the frame anyway, starting a clip on the closed episode that stayed open
    # (flush() returned with it pending) until the Recorder closed.
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=FakeEncoders())
    ep = rec.episode(0)

    def render_and_close() -> Any:
        ep.close()
        return flat(1)

    with pytest.raises(recorder.RecorderClosedError, match="episode 0 is closed"):
        ep.offer(render_and_close)
    rec.flush()
    assert rec.stats().videos_in_progress == 0
    rec.close()


def test_a_clip_started_as_another_thread_closes_the_episode_ends_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The close came between append's check and the clip's start: the clip was not among the
    # episode's open ones, and no one ever ended it.
    rec = Recorder(tmp_path, step_trigger=always, video_length=3, encoder_factory=FakeEncoders())
    service = service_of(rec)
    new_clip = service.new_clip
    ep = rec.episode(0)
    ep.append(flat(0))  # step clip 0 is open

    def closed_meanwhile(*args: Any, **kwargs: Any) -> Any:
        ep.close()  # as another thread would, right now
        return new_clip(*args, **kwargs)

    monkeypatch.setattr(service, "new_clip", closed_meanwhile)
    ep.append(flat(1))  # step 1 fires: a new clip
    rec.flush()
    assert all(handle.done() for handle in ep.handles)
    assert rec.stats().videos_in_progress == 0
    rec.close()


def test_offer_whose_render_raises_stays_on_the_frame(tmp_path: Path) -> None:
    fake = FakeEncoders()

    def broken() -> Any:
        raise OSError("display gone")

    with (
        Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec,
        rec.episode(0) as ep,
    ):
        with pytest.raises(OSError, match="display gone"):
            ep.offer(broken)
        assert ep.frames_seen == 0
        with pytest.raises(TypeError):
            ep.offer(lambda: "not an image")
        assert ep.frames_seen == 0
        assert ep.offer(lambda: flat(7))
    assert fake.by_name("rl-video-episode-0").frames == [7]


# -- no call pattern records nothing silently ------------------------------------------------


def test_stalled_episodes_warn_once_and_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="recorder")
    with Recorder(
        tmp_path,
        episode_trigger=lambda e: e == 0,
        step_trigger=lambda s: s % 10 == 0,
        encoder_factory=FakeEncoders(),
    ) as rec:
        with rec.episode(0):  # episode_trigger fired; no frame
            pass
        with rec.episode(1) as ep:  # wants_frame read once, then closed
            assert not ep.wants_frame
        with rec.episode(2) as ep:  # the same, third time: still counted
            assert not ep.wants_frame
        # Not stalls: an episode that advanced, one left by an exception, a submit().
        with rec.episode(3) as ep:
            ep.skip()
        with pytest.raises(KeyError), rec.episode(4) as ep:
            raise KeyError("the env failed")
        rec.submit([flat(0)], episode_index=5)
        stats = rec.stats()
    assert stats.episodes_stalled == 3
    stalls = [r for r in caplog.records if "recorded nothing" in r.getMessage()]
    assert [r.levelno for r in stalls] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "episode 0" in stalls[0].getMessage()
    assert "episode_trigger fired" in stalls[0].getMessage()
    assert "stats().episodes_stalled" in stalls[0].getMessage()
    assert "offer()" in stalls[1].getMessage()
    assert not list(tmp_path.glob("*.mp4"))


def test_no_stall_without_any_trigger_that_could_fire(tmp_path: Path) -> None:
    with (
        Recorder(tmp_path, episode_trigger=lambda e: False, encoder_factory=FakeEncoders()) as rec,
        rec.episode(0) as ep,
    ):
        assert not ep.wants_frame
    assert rec.stats().episodes_stalled == 0


# -- the rooms' internal interface -----------------------------------------------------------

PACKAGE = Path(recorder.__file__).parent
# The queue's owner and the queue itself; the rest go through Recorder's internal interface.
