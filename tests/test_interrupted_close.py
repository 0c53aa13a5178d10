"""A Ctrl-C at any point of ``Recorder()`` or ``close()`` (see interrupts.py): nothing hangs,
nothing keeps running, and what was given is saved or reported.

Points inside CPython's threading module are left out: it is not safe there itself (a
Thread.start() interrupted holding its Event's lock leaves the new thread waiting for ever; a
Condition.wait() interrupted after it released its lock has its caller release it again).
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest
from fakes import FakeEncoders
from helpers import always, flat
from interrupts import Interrupts

from recorder import ClipHandle, Recorder
from recorder._testing import live_services, service_of, threads_of


def _recorder_threads() -> set[threading.Thread]:
    # (A Thread.start() interrupted early stays listed, never run: CPython's, not a leak.)
    return {t for t in threading.enumerate() if t.name.startswith("recorder-") and t.is_alive()}


def _make(folder: Path, fake: FakeEncoders) -> Recorder:
    return Recorder(folder, fps=30, episode_trigger=always, encoder_factory=fake)


def _close_in_thread(rec: Recorder, where: str = "") -> None:
    """Close *rec* again, from another thread, which must not wait for ever."""
    errors: list[BaseException] = []

    def close() -> None:
        try:
            rec.close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    closer = threading.Thread(target=close)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), f"a close() after one interrupted at {where} hangs"
    assert not errors, errors


# (And this file's own points: a Recorder made, then lost as the caller's line is interrupted,
# is any object's fate; the interpreter's exit closes it.)
SKIP = ("/threading.py", "/test_interrupted_close.py")


def _points(call: object) -> int:
    counter = Interrupts(skip=SKIP)
    counter.run(call)  # type: ignore[arg-type]
    return counter.count


def test_a_ctrl_c_anywhere_in_close_leaves_a_close_that_finishes(tmp_path: Path) -> None:
    def scenario(at: int | None) -> tuple[Recorder, list[ClipHandle], Interrupts]:
        fake = FakeEncoders()
        rec = _make(tmp_path / f"run{at}", fake)
        ep = rec.episode(0)
        for i in range(3):
            ep.append(flat(i))
        handles = rec.submit([flat(i) for i in range(2)], episode_index=1) + ep.handles
        return rec, handles, Interrupts(at, SKIP)

    rec, _, counter = scenario(None)
    counter.run(rec.close)
    points = counter.count
    raised = 0
    for at in range(points + 20):  # (waits may add points to a run)
        before = _recorder_threads()
        rec, handles, interrupts = scenario(at)
        try:
            interrupts.run(rec.close)
        except KeyboardInterrupt:
            raised += 1
            # A second close, from another thread (the at-exit one is the main thread's),
            # finishes the job whatever the first got to, even while its KeyboardInterrupt
            # (and so the interrupted call's frame) is still alive, as in an except block.
            _close_in_thread(rec, interrupts.where)
        else:
            _close_in_thread(rec, interrupts.where)
        assert rec.closed
        assert not (_recorder_threads() - before), f"threads left after a Ctrl-C at {at}"
        assert service_of(rec) not in live_services()
        stats = rec.stats()
        assert stats.videos_in_progress == 0, (at, interrupts.where, stats)
        assert stats.queued_bytes == 0, (at, interrupts.where, stats)
        for handle in handles:
            assert handle.done(), (at, interrupts.where)
    assert raised >= 0.8 * points, (raised, points)  # (waits vary the count a little)


# A `with open(...)` interrupted as open() returns leaves the file to the collector.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_ctrl_c_anywhere_in_recorder_leaves_nothing_running(tmp_path: Path) -> None:
    fake = FakeEncoders()
    points = _points(lambda: _make(tmp_path, fake).close())
    raised = 0
    for at in range(points):
        before = _recorder_threads()
        services = set(live_services())
        interrupts = Interrupts(at, SKIP)
        try:
            rec = interrupts.run(lambda: _make(tmp_path, fake))
        except KeyboardInterrupt:
            raised += 1
        else:
            rec.close()
        # A thread whose start() was interrupted may be told to stop before it runs: it
        # ends by itself as soon as it does.
        for thread in _recorder_threads() - before:
            thread.join(10)
        where = interrupts.where
        assert not (_recorder_threads() - before), f"threads left after a Ctrl-C at {where}"
        assert set(live_services()) <= services, f"a Recorder left open by a Ctrl-C at {at}"
    gc.collect()
    assert raised > 100


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_a_close_interrupted_before_it_stopped_anything_is_finished_by_the_next(
    tmp_path: Path, timeout: float | None
) -> None:
    fake = FakeEncoders()
    rec = _make(tmp_path, fake)
    with rec.episode(0) as ep:
        for i in range(4):
            ep.append(flat(i))
    # The first point of close() where it has begun: a Ctrl-C there used to leave the
    # Recorder closed with its workers running (and the interpreter's exit waiting for them).
    counter = Interrupts(skip=SKIP)
    rec2 = _make(tmp_path / "count", FakeEncoders())
    counter.run(rec2.close)
    for at in range(counter.count):
        interrupts = Interrupts(at, SKIP)
        try:
            interrupts.run(rec.close)
        except KeyboardInterrupt:
            if rec.closed:
                break
        else:  # pragma: no cover - close() always has a point after it began
            pytest.fail("close() finished without a point after it began")
    assert rec.closed
    rec.close(timeout)
    assert not any(t.is_alive() for t in threads_of(rec))
    assert (tmp_path / "rl-video-episode-0.mp4").exists()
