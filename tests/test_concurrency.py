"""Backpressure, errors, shutdown and fairness, with a fake encoder and Event handshakes."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeEncoders, budget, gated
from helpers import FRAME, always, decode, flat, painted, run_child

from recorder import (
    ClipDroppedError,
    QueueFullError,
    Recorder,
    RecorderClosedError,
)
from recorder._testing import (
    GRACE_SECONDS,
    abandon,
    arena_released,
    patch_close_abandoned,
    queue_locked,
    queue_module,
    set_finish_seam,
    threads_of,
)


def test_drop_never_waits_and_drops_whole_clips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = gated()
    with Recorder(tmp_path, **budget(4, fake, on_full="drop")) as rec:
        (small,) = rec.submit([flat(i) for i in range(3)], episode_index=0)
        assert fake.started.wait(10)  # the worker holds frame 0 of the small clip
        # 10 frames cannot fit while the worker is stuck: the whole clip is dropped, at once.
        (big,) = rec.submit([flat(i) for i in range(10)], episode_index=1)
        assert rec.stats().peak_queued_bytes <= 4 * FRAME
        fake.gate.set()
        with pytest.raises(ClipDroppedError, match="max_queue_bytes"):
            big.result(timeout=10)
        assert big.dropped
        rec.flush()
        stats = rec.stats()
        assert stats.videos_dropped == 1
        assert stats.frames_dropped >= 1
    assert small.result().frames == 3
    assert not (tmp_path / "rl-video-episode-1.mp4").exists()
    assert [e for e in fake.made if e.spec.path.endswith(".rec-tmp")]
    assert "dropped video rl-video-episode-1" in caplog.text
    assert sorted(os.listdir(tmp_path)) == [
        "manifest.jsonl",
        "rl-video-episode-0.json",
        "rl-video-episode-0.mp4",
    ]


def test_block_waits_for_room_and_loses_nothing(tmp_path: Path) -> None:
    fake = gated()
    done = threading.Event()
    with Recorder(tmp_path, **budget(3, fake)) as rec:

        def produce() -> None:
            rec.submit([flat(i) for i in range(12)])
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        assert fake.started.wait(10)
        # The producer cannot finish while the encoder is stuck: the budget holds 3 frames.
        assert not done.wait(0.3)
        assert rec.stats().queued_bytes <= 3 * FRAME
        fake.gate.set()
        producer.join(10)
        assert done.is_set()
    (enc,) = fake.made
    assert enc.frames == list(range(12))
    assert rec.stats().peak_queued_bytes <= 3 * FRAME
    assert rec.stats().videos_dropped == 0


def test_raise_is_immediate_and_clear(tmp_path: Path) -> None:
    fake = gated()
    with Recorder(tmp_path, **budget(2, fake, on_full="raise")) as rec:
        ep = rec.episode(0)
        ep.append(flat(0))
        assert fake.started.wait(10)
        ep.append(flat(1))
        with pytest.raises(QueueFullError, match="max_queue_bytes"):
            ep.append(flat(2))
        (handle,) = ep.handles
        ep.close()
        fake.gate.set()
        with pytest.raises(ClipDroppedError):
            handle.result(timeout=10)
    assert rec.stats().videos_dropped == 1


def test_frame_larger_than_budget_is_admitted_alone(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=always, max_queue_bytes=100, on_full="block") as rec:
        (h,) = rec.submit([painted(i) for i in range(5)])
    assert decode(h.result().path).indices == list(range(5))


def test_encoder_error_reaches_handle_stats_log_and_flush(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeEncoders(fail_at=2, fail_when=lambda spec: "episode-1" in spec.path)
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    h0 = rec.submit([flat(i) for i in range(5)], episode_index=0)[0]
    h1 = rec.submit([flat(i) for i in range(5)], episode_index=1)[0]
    h2 = rec.submit([flat(i) for i in range(5)], episode_index=2)[0]
    with pytest.raises(OSError, match="No space left") as info:
        rec.flush()
    assert any("rl-video-episode-1" in note for note in info.value.__notes__)
    assert h0.result().frames == 5
    assert h2.result().frames == 5  # other videos continue
    with pytest.raises(OSError, match="No space left"):
        h1.result()
    stats = rec.stats()
    assert (stats.videos_saved, stats.videos_failed) == (2, 1)
    assert len(stats.errors) == 1
    assert "failed to record" in caplog.text
    rec.flush()  # reported once
    rec.close()
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == [
        "rl-video-episode-0.mp4",
        "rl-video-episode-2.mp4",
    ]
    assert not list(tmp_path.glob(".*"))
    failed = fake.by_name("rl-video-episode-1")
    assert failed.aborted


def test_several_errors_raise_an_exception_group_from_close(tmp_path: Path) -> None:
    fake = FakeEncoders(fail_at=0)
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake, workers=2)
    for e in range(3):
        rec.submit([flat(1)], episode_index=e)
    with pytest.raises(ExceptionGroup) as info:
        rec.close()
    assert len(info.value.exceptions) == 3
    assert os.listdir(tmp_path) == []


def test_folder_removed_mid_run(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    rec = Recorder(folder, episode_trigger=always)
    rec.submit([painted(i) for i in range(3)], episode_index=0)
    rec.flush()
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    (h,) = rec.submit([painted(i) for i in range(3)], episode_index=1)
    with pytest.raises(FileNotFoundError):
        rec.close()
    assert isinstance(h.exception(), FileNotFoundError)


def test_close_is_idempotent_and_rejects_use(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, episode_trigger=always)
    rec.close()
    rec.close()
    assert rec.closed
    with pytest.raises(RecorderClosedError):
        rec.submit([flat(0)])
    with pytest.raises(RecorderClosedError):
        rec.episode(0)


def test_close_from_two_threads(tmp_path: Path) -> None:
    fake = gated()
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    rec.submit([flat(i) for i in range(4)])
    assert fake.started.wait(10)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: (rec.close(), results.append("ok"))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    fake.gate.set()
    for t in threads:
        t.join(10)
    assert results == ["ok", "ok"]
    assert fake.made[0].frames == [0, 1, 2, 3]


def record_then_interrupt(folder: Path) -> None:
    with Recorder(folder, episode_trigger=always) as rec:
        with rec.episode(0) as ep:
            for i in range(6):
                ep.append(painted(i))
        with rec.episode(1) as ep:
            ep.append(painted(0))
            raise KeyboardInterrupt


def test_exception_in_block_still_flushes(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        record_then_interrupt(tmp_path)
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == list(range(6))
    assert decode(tmp_path / "rl-video-episode-1.mp4").indices == [0]


def test_close_ends_open_episodes(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, episode_trigger=always)
    ep = rec.episode(0)
    for i in range(4):
        ep.append(painted(i))
    rec.close()
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == [0, 1, 2, 3]
    with pytest.raises(RecorderClosedError):
        ep.append(painted(4))


def test_cancel_drops_queue_fast_and_leaves_no_file(tmp_path: Path) -> None:
    fake = gated()
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    (h,) = rec.submit([flat(i) for i in range(50)])
    assert fake.started.wait(10)
    closer = threading.Thread(target=lambda: rec.close(cancel=True))
    closer.start()
    fake.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    with pytest.raises(ClipDroppedError, match="cancel"):
        h.result()
    assert len(fake.made[0].frames) < 50
    assert os.listdir(tmp_path) == []


def test_close_timeout_drops_and_raises(tmp_path: Path) -> None:
    fake = gated()
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    (h,) = rec.submit([flat(i) for i in range(5)])
    assert fake.started.wait(10)
    with pytest.raises(TimeoutError):
        rec.close(timeout=0.1)
    fake.gate.set()
    for t in threads_of(rec):
        t.join(10)
    assert isinstance(h.exception(timeout=10), ClipDroppedError)
    assert os.listdir(tmp_path) == []


def test_flush_timeout(tmp_path: Path) -> None:
    fake = gated()
    with Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        rec.submit([flat(i) for i in range(3)])
        with pytest.raises(TimeoutError):
            rec.flush(timeout=0.05)
        fake.gate.set()
        rec.flush(timeout=10)


def test_final_name_appears_only_when_complete(tmp_path: Path) -> None:
    fake = gated()
    with Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        (h,) = rec.submit([flat(i) for i in range(3)])
        assert fake.started.wait(10)
        names = os.listdir(tmp_path)
        assert len(names) == 1
        assert names[0].startswith(".rl-video-episode-0.")
        assert names[0].endswith(".rec-tmp")
        fake.gate.set()
    assert sorted(os.listdir(tmp_path)) == [
        "manifest.jsonl",
        "rl-video-episode-0.json",
        "rl-video-episode-0.mp4",
    ]
    assert h.result().path.read_bytes() == b"fake video"


def test_one_worker_serves_many_streams_fairly(tmp_path: Path) -> None:
    fake = gated()
    with Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        long = rec.episode(0)
        for i in range(100):
            long.append(flat(i))
        assert fake.started.wait(10)
        with rec.episode(1) as short:
            short.append(flat(7))
        fake.gate.set()
        (short_handle,) = short.handles
        short_handle.result(timeout=10)
        long.close()
    # the short stream's frame was encoded within one quantum of the long one
    order = [name for name, _ in fake.writes]
    assert order.index("rl-video-episode-1") <= 10
    assert rec.stats().videos_saved == 2


def test_more_streams_than_workers_real_encode(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=always, workers=2) as rec:
        eps = [rec.episode(e) for e in range(5)]
        for i in range(20):
            for ep in eps:
                ep.append(painted(i))
        for ep in eps:
            ep.close()
    for e in range(5):
        assert decode(tmp_path / f"rl-video-episode-{e}.mp4").indices == list(range(20))


def test_concurrent_producers(tmp_path: Path) -> None:
    with Recorder(
        tmp_path,
        episode_trigger=always,
        workers=2,
        on_full="block",
        max_queue_bytes=20 * 48 * 112 * 3,
    ) as rec:

        def produce(e: int) -> None:
            with rec.episode(e) as ep:
                for i in range(30):
                    ep.append(painted(i))

        threads = [threading.Thread(target=produce, args=(e,)) for e in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert rec.stats().videos_saved == 4
    for e in range(4):
        assert decode(tmp_path / f"rl-video-episode-{e}.mp4").indices == list(range(30))


def test_overlapping_clips_share_one_copy(tmp_path: Path) -> None:
    fake = gated()
    with Recorder(
        tmp_path, episode_trigger=always, step_trigger=always, encoder_factory=fake, workers=1
    ) as rec:
        rec.submit([flat(i) for i in range(4)])
        assert fake.started.wait(10)
        stats = rec.stats()
        # 4 frames wanted by up to 4 clips each, charged once each
        assert stats.queued_frames == 4
        assert stats.queued_bytes == 4 * FRAME
        fake.gate.set()
    assert rec.stats().videos_saved == 4


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_lower_their_priority(tmp_path: Path, workers: int) -> None:
    before = {t for t in threading.enumerate() if t.name.startswith("recorder-")}
    with Recorder(tmp_path, episode_trigger=always, worker_nice=5, workers=workers) as rec:
        rec.submit([flat(0)])
        rec.flush()
        base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        # Every thread the recorder started: its workers and the prefault thread.
        started = [
            t for t in threading.enumerate() if t.name.startswith("recorder-") and t not in before
        ]
        assert sorted(t.name for t in started) == [
            "recorder-prefault",
            *(f"recorder-worker-{i}" for i in range(workers)),
        ]
        for t in started:
            assert t.native_id is not None
            assert os.getpriority(os.PRIO_PROCESS, t.native_id) == min(19, base + 5)


def test_a_slow_rename_does_not_stall_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rename to the final name is file-system I/O (slow on a network file system): it
    # runs outside the lock that every append takes.
    renaming, go = threading.Event(), threading.Event()
    replace = os.replace

    def slow_replace(src: str, dst: str | os.PathLike[str]) -> None:
        if str(dst).endswith("rl-video-episode-0.mp4"):
            renaming.set()
            go.wait(30)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", slow_replace)
    appended = threading.Event()
    with Recorder(tmp_path, episode_trigger=always, encoder_factory=FakeEncoders()) as rec:
        rec.submit([flat(0)], episode_index=0)
        assert renaming.wait(30)

        def stream() -> None:
            with rec.episode(1) as ep:
                for i in range(20):
                    ep.append(flat(i))
            appended.set()

        streamer = threading.Thread(target=stream)
        streamer.start()
        try:
            assert appended.wait(30), "append waited for the rename"
        finally:
            go.set()
            streamer.join()
    assert sorted(os.listdir(tmp_path)) == [
        "manifest.jsonl",
        "rl-video-episode-0.json",
        "rl-video-episode-0.mp4",
        "rl-video-episode-1.json",
        "rl-video-episode-1.mp4",
    ]


def test_a_dead_worker_never_hangs_close(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(tmp_path, episode_trigger=always)

    def explode(clip: object) -> None:
        raise SystemExit("bug")  # escapes the per-clip error handling

    set_finish_seam(rec, explode)
    rec.submit([painted(0)])
    with pytest.raises(RuntimeError, match="worker thread died"):
        rec.close(timeout=10)
    assert "worker thread died" in caplog.text
    assert os.listdir(tmp_path) == []


def test_on_saved_runs_off_thread_and_its_error_is_reported(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def on_saved(info):  # type: ignore[no-untyped-def]
        seen.append((info.name, threading.current_thread().name))
        if info.index == 1:
            raise ValueError("callback bug")

    rec = Recorder(tmp_path, episode_trigger=always, on_saved=on_saved)
    rec.submit([flat(0)], episode_index=0)
    rec.submit([flat(0)], episode_index=1)
    with pytest.raises(ValueError, match="callback bug"):
        rec.close()
    assert [name for name, _ in seen] == ["rl-video-episode-0", "rl-video-episode-1"]
    assert all(thread.startswith("recorder-worker") for _, thread in seen)


def test_stats_counts(tmp_path: Path) -> None:
    with Recorder(tmp_path, step_trigger=lambda s: s in (0, 3), video_length=2) as rec:
        rec.submit([painted(i) for i in range(6)])
    s = rec.stats()
    assert (s.videos_started, s.videos_saved, s.videos_in_progress) == (2, 2, 0)
    assert s.frames_submitted == 4
    assert s.frames_encoded == 4
    assert s.queued_bytes == 0
    assert s.bytes_written == sum(p.stat().st_size for p in tmp_path.glob("*.mp4"))
    assert s.encode_seconds > 0


def test_logger_name_is_recorder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="recorder")
    fake = FakeEncoders(fail_at=0)
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    rec.submit([flat(0)])
    with pytest.raises(OSError, match="No space left"):
        rec.close()
    assert any(r.name == "recorder" and r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_recorder_from_before_fork_fails_clearly_in_the_child(tmp_path: Path) -> None:
    # Its workers are the parent's: queueing there would wait forever (on_full="block").
    fake = gated()  # the parent's worker is busy inside a frame when we fork
    rec = Recorder(tmp_path, episode_trigger=always, on_full="block", encoder_factory=fake)
    ep = rec.episode(0)
    ep.append(flat(0))
    assert fake.started.wait(timeout=30)

    def child() -> None:
        # stats() too: a parent's thread may have held the queue's lock at fork (never taken).
        calls = (lambda: ep.append(flat(1)), lambda: rec.submit([flat(0)]), rec.flush, rec.stats)
        for call in calls:
            try:
                call()
            except RecorderClosedError as e:
                assert "forked child" in str(e)  # noqa: PT017 - no pytest in the child
            else:
                raise AssertionError("no error")
        ep.close()  # ending the parent's clips is the parent's business: a no-op here
        rec.close()  # idempotent, returns at once in a child

    assert run_child(child).returncode == 0
    fake.gate.set()
    ep.append(flat(1))
    ep.close()
    rec.close(timeout=30)
    assert fake.made[0].frames == [0, 1]  # the parent's recorder is untouched


def test_frames_short_of_a_batch_reach_the_encoder_once_the_producer_pauses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Else they would wait (in the clip's lane) for the next appends, lost with a crash.
    monkeypatch.setattr(queue_module, "IDLE_SECONDS", 0.01)
    fake = FakeEncoders()
    with Recorder(tmp_path, **budget(64, fake)) as rec, rec.episode(0) as ep:
        ep.append(flat(1))  # a clip's first frame goes to a worker at once
        assert fake.wait_for_frames(1)
        for value in (2, 3, 4):  # fewer than a batch, then nothing: a paused loop
            ep.append(flat(value))
        assert fake.wait_for_frames(4)
        assert fake.made[0].frames == [1, 2, 3, 4]


def test_flush_from_the_recorders_own_threads_raises_instead_of_waiting_for_itself(
    tmp_path: Path,
) -> None:
    got: list[BaseException] = []
    called = threading.Event()

    def flush_then(handle: object) -> None:
        try:
            rec.flush()
        except RuntimeError as e:
            got.append(e)
        finally:
            called.set()

    fake = gated()
    rec = Recorder(
        tmp_path, episode_trigger=always, encoder_factory=fake, on_saved=lambda _: rec.flush()
    )
    handle = rec.submit([flat(1)])[0]
    handle.add_done_callback(flush_then)  # before the worker can finish: called on its thread
    fake.gate.set()
    assert called.wait(10)
    assert "own worker thread" in str(got[0])
    # on_saved's flush() raised: reported as the video's error, by close(), which returns.
    with pytest.raises(RuntimeError, match="own worker thread"):
        rec.close()


# -- the core's edges (issue 27) ---------------------------------------------------------------


def _close_within(rec: Recorder, seconds: float = 30) -> None:
    """close() on another thread: it must return (or raise) within *seconds*."""
    outcome: list[BaseException | None] = []

    def close() -> None:
        try:
            rec.close()
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=close)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "close() hangs"
    if outcome[0] is not None:
        raise outcome[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cancelled_handle_never_hangs_close(tmp_path: Path, workers: int) -> None:
    fake = FakeEncoders()
    rec = Recorder(tmp_path, episode_trigger=always, workers=workers, encoder_factory=fake)
    with rec.episode(0) as ep:
        ep.append(flat(1))
        cancelled = ep.handles[0].cancel()
    _close_within(rec)
    handle = ep.handles[0]
    assert handle.done()
    stats = rec.stats()
    assert stats.errors == ()
    if cancelled:  # before a worker began it: a dropped clip, no error, no file
        assert handle.cancelled()
        assert "cancelled" in repr(handle)
        assert (stats.videos_dropped, stats.videos_saved) == (1, 0)
        assert not (tmp_path / "rl-video-episode-0.mp4").exists()
    else:  # begun: cancel() refused, the video saved
        assert handle.result().frames == 1
        assert stats.videos_saved == 1


def test_only_a_clip_no_worker_has_begun_can_be_cancelled(tmp_path: Path) -> None:
    fake = gated()
    with Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        with rec.episode(0) as ep0:
            ep0.append(flat(0))
        assert fake.started.wait(10)  # the only worker is inside clip 0
        with rec.episode(1) as ep1:
            ep1.append(flat(1))  # waits on the ready list
        begun, waiting = ep0.handles[0], ep1.handles[0]
        assert repr(waiting) == "<ClipHandle rl-video-episode-1 pending>"
        assert not begun.cancel()  # its work started: as concurrent.futures does
        assert waiting.cancel()
        assert repr(waiting) == "<ClipHandle rl-video-episode-1 cancelled>"
        assert waiting.dropped
        fake.gate.set()
        rec.flush()
        stats = rec.stats()
    assert begun.result().frames == 1
    assert waiting.cancelled()
    assert (stats.videos_saved, stats.videos_dropped, stats.videos_failed) == (1, 1, 0)
    assert [e.spec.path for e in fake.made if "episode-1" in e.spec.path] == []  # never opened
    assert not (tmp_path / "rl-video-episode-1.mp4").exists()


def test_a_handle_repr_is_safe_in_every_state(tmp_path: Path) -> None:
    fake = FakeEncoders(fail_at=0, fail_when=lambda spec: "episode-2" in spec.path)
    with Recorder(tmp_path, **budget(2, fake, on_full="drop")) as rec:
        (saved,) = rec.submit([flat(0)], episode_index=0)
        (dropped,) = rec.submit([flat(i) for i in range(5)], episode_index=1)
        (failed,) = rec.submit([flat(0)], episode_index=2)
        with pytest.raises(OSError, match="No space left"):
            rec.flush()
    assert [repr(h).split()[-1] for h in (saved, dropped, failed)] == [
        "saved>",
        "dropped>",
        "failed>",
    ]


def test_a_drop_is_counted_when_it_is_decided(tmp_path: Path) -> None:
    fake = gated()
    with Recorder(tmp_path, **budget(2, fake, on_full="drop")) as rec:
        with rec.episode(0) as ep:
            ep.append(flat(0))
            assert fake.started.wait(10)  # the worker holds frame 0 and waits
            ep.append(flat(1))
            ep.append(flat(2))  # no room: the clip is dropped now
            stats = rec.stats()
            assert stats.videos_dropped == 1  # before any worker has seen the drop
            assert stats.videos_in_progress == 0
            assert ep.handles[0].done() is False
        fake.gate.set()
    assert rec.stats().videos_dropped == 1
    assert ep.handles[0].dropped


def test_no_user_code_runs_under_the_queue_lock(tmp_path: Path) -> None:
    # A log handler that reads stats() when the drop warning is logged: under the lock, it
    # would deadlock the producer.
    fake = gated()
    rec = Recorder(tmp_path, **budget(2, fake, on_full="drop"))
    seen: list[int] = []

    class StatsHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(rec.stats().videos_dropped)

    handler = StatsHandler(level=logging.WARNING)
    logging.getLogger("recorder").addHandler(handler)
    try:
        done = threading.Event()

        def produce() -> None:
            with rec.episode(0) as ep:
                for i in range(5):
                    ep.append(flat(i))
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        assert done.wait(30), "the drop warning's handler deadlocked the producer"
        producer.join()
    finally:
        logging.getLogger("recorder").removeHandler(handler)
        fake.gate.set()
        rec.close()
    assert seen == [1]


def test_an_abandoned_recorder_is_closed_outside_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "IDLE_SECONDS", 0.01)
    held: list[bool] = []
    started = threading.Event()

    def close(rec: Recorder) -> None:
        held.append(queue_locked(rec))
        started.set()

    patch_close_abandoned(monkeypatch, close)
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=FakeEncoders())
    abandon(rec)
    assert started.wait(10)
    rec.close()
    assert held == [False]


def test_a_recorder_that_cannot_be_made_leaks_no_shared_memory(tmp_path: Path) -> None:
    class DeadSink:
        def open(self) -> object:
            raise ConnectionError("the sink's actor is dead")

    def arenas() -> int:
        fds = os.listdir("/proc/self/fd")
        return sum(1 for fd in fds if "recorder-arena" in _readlink(fd))

    before = arenas()
    for _ in range(3):
        with pytest.raises(ConnectionError, match="dead"):
            Recorder(tmp_path, sink=DeadSink())  # type: ignore[arg-type]
    assert arenas() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("recorder-")]


def _readlink(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def test_the_blocks_exception_goes_first_and_close_s_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeEncoders(fail_at=0)
    with (  # noqa: PT012 (the block and its close are what is tested)
        pytest.raises(ValueError, match="the block's own") as raised,
        Recorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec,
    ):
        rec.submit([flat(0)])
        raise ValueError("the block's own error")
    notes = getattr(raised.value, "__notes__", [])
    assert any("while closing the recorder" in n and "No space left" in n for n in notes)
    assert "closing the recorder after an error in its block failed" in caplog.text


def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until another thread's *condition* holds: a state, not a duration."""
    tick = threading.Event()
    for _ in range(10_000):
        if condition():
            return
        tick.wait(0.001)
    raise AssertionError(f"never happened: {what}")


def test_a_second_close_waits_for_the_first_at_most_its_own_timeout(tmp_path: Path) -> None:
    fake = gated()
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    (handle,) = rec.submit([flat(i) for i in range(5)])
    assert fake.started.wait(10)  # the worker is inside the video; the gate is shut
    first = threading.Thread(target=rec.close)  # no timeout: waits for the video
    first.start()
    try:
        _until(lambda: rec.closed, "the first close began")
        with pytest.raises(TimeoutError, match=r"close\(\) timed out after 0.2 s"):
            rec.close(timeout=0.2)
        # The rest dropped, the first close waits for nothing more than the workers' grace,
        # even with its worker stuck inside a frame (the gate still shut).
        first.join(GRACE_SECONDS + 2)  # the fake encoder gives up on its gate after 5 s
        assert not first.is_alive()
    finally:
        fake.gate.set()
        first.join(30)
        for thread in threads_of(rec):
            thread.join(30)
    # As its own timeout does: the rest was dropped, so the first close could finish.
    with pytest.raises(ClipDroppedError, match=r"close\(\) timed out after 0.2 s"):
        handle.result()
    assert not (tmp_path / "rl-video-episode-0.mp4").exists()


def test_close_with_cancel_still_waits_for_a_video_being_finished(tmp_path: Path) -> None:
    # Dropping stops what is queued; a video whose file is in place and whose on_saved runs is
    # finished, and its error raised by the close, as without cancel.
    entered, release = threading.Event(), threading.Event()

    def on_saved(info: Any) -> None:
        entered.set()
        assert release.wait(30)
        raise RuntimeError("on_saved failed")

    rec = Recorder(tmp_path, episode_trigger=always, on_saved=on_saved, encode_in="thread")
    (handle,) = rec.submit([flat(i) for i in range(3)])
    assert entered.wait(30)
    outcome: list[BaseException | None] = []

    def close() -> None:
        try:
            rec.close(cancel=True)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    closer = threading.Thread(target=close)
    closer.start()
    closer.join(GRACE_SECONDS + 1)  # past the grace the dropped ones get: still waiting
    assert closer.is_alive()
    release.set()
    closer.join(30)
    (error,) = outcome
    assert isinstance(error, RuntimeError)
    assert "on_saved failed" in str(error)
    assert handle.result().frames == 3
    assert arena_released(rec)


@pytest.mark.parametrize("cancel", ["no", 1, None])
def test_close_refuses_a_cancel_that_is_not_a_bool(tmp_path: Path, cancel: object) -> None:
    with Recorder(tmp_path, episode_trigger=always) as rec:
        (handle,) = rec.submit([flat(i) for i in range(3)])
        with pytest.raises(TypeError, match="cancel must be a bool"):
            rec.close(cancel=cancel)  # type: ignore[arg-type]
        assert not rec.closed  # nothing was closed, or dropped
    assert handle.result().frames == 3
