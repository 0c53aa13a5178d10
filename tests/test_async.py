"""AsyncRecorder on asyncio and trio: streaming, backpressure, shielded close, cancellation."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np
import pytest
from fakes import FakeEncoders, budget, gated
from helpers import FRAME, always, decode, flat, painted

import recorder
from recorder import (
    AsyncClipHandle,
    AsyncRecorder,
    ClipDroppedError,
    QueueFullError,
    Recorder,
    RecorderClosedError,
)
from recorder._testing import (
    GRACE_SECONDS,
    patch_wait_stoppable,
    recorder_of,
    threads_of,
    waiting_for_room,
    waiting_tasks,
    watch_close_waiters,
)

pytestmark = pytest.mark.anyio

RECORDER_DIR = str(Path(recorder.__file__).parent)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def no_thread_in_recorder_code() -> Iterator[None]:
    """No thread (anyio's or trio's pooled ones included) is left waiting inside recorder code."""
    yield
    me = threading.get_ident()
    busy = []
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        f: Any = frame
        while f is not None:
            if f.f_code.co_filename.startswith(RECORDER_DIR):
                busy.append(f"{ident}: {f.f_code.co_name}")
                break
            f = f.f_back
    assert not busy, f"threads still inside recorder code: {busy}"


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the other tasks of this event loop run until *condition* holds (no wall-clock wait)."""
    for _ in range(10_000):
        if condition():
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError(f"never happened: {what}")


async def wait_thread_event(event: threading.Event) -> None:
    """Wait for an Event set by a recorder thread, without blocking the loop."""
    assert await anyio.to_thread.run_sync(event.wait, 10)


# -- API surface -------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_signature_mirrors_recorder() -> None:
    mine = inspect.signature(AsyncRecorder).parameters
    core = inspect.signature(Recorder).parameters
    assert [(p.name, p.kind, p.default) for p in mine.values()] == [
        (p.name, p.kind, p.default) for p in core.values()
    ]
    for method in ("episode", "submit"):
        mine = inspect.signature(getattr(AsyncRecorder, method)).parameters
        core = inspect.signature(getattr(Recorder, method)).parameters
        assert list(mine) == list(core)


# -- submit / stream / flush, decoded back -----------------------------------------------------


async def test_submit_stream_flush_decode_back(tmp_path: Path) -> None:
    async with AsyncRecorder(tmp_path, fps=12, episode_trigger=always) as rec:
        (submitted,) = await rec.submit([painted(i) for i in range(12)], episode_index=0)
        assert isinstance(submitted, AsyncClipHandle)
        async with rec.episode(1, metadata={"seed": 7}) as ep:
            for i in range(7):
                assert ep.wants_frame
                if i % 2:
                    ep.append_nowait(painted(100 + i))
                else:
                    await ep.append(painted(100 + i))
            ep.metadata["return"] = 3.5
        (streamed,) = ep.handles
        await rec.flush()
        stats = rec.stats()
        assert stats.videos_saved == 2
        assert stats.queued_bytes == 0
        info = await submitted
        assert (await streamed.result()).frames == 7
        assert await streamed.exception() is None
    assert info.frames == 12
    assert info.path == tmp_path / "rl-video-episode-0.mp4"
    first = decode(tmp_path / "rl-video-episode-0.mp4")
    assert first.indices == list(range(12))
    assert first.fps == 12
    second = decode(tmp_path / "rl-video-episode-1.mp4")
    assert second.indices == [100 + i for i in range(7)]
    assert streamed.done()
    assert streamed.future.result().metadata == {"seed": 7, "return": 3.5}
    assert rec.closed


async def test_same_clips_as_the_sync_recorder(tmp_path: Path) -> None:
    options: dict[str, Any] = {
        "episode_trigger": lambda i: i % 2 == 0,
        "step_trigger": lambda s: s % 7 == 3,
        "video_length": 5,
        "name_prefix": "cart",
    }
    episodes = [(0, 0, 13), (1, 13, 9), (2, 22, 20)]  # (episode, first step, frames)
    with Recorder(tmp_path / "sync", encoder_factory=FakeEncoders(), **options) as rec:
        expected = {}
        for i, start, n in episodes:
            for sync_handle in rec.submit([flat(k) for k in range(n)], i, start):
                expected[sync_handle.name] = sync_handle.result(timeout=10).frames
    got = {}
    async with AsyncRecorder(tmp_path / "async", encoder_factory=FakeEncoders(), **options) as ar:
        for i, start, n in episodes[:2]:
            for h in await ar.submit([flat(k) for k in range(n)], i, start):
                got[h.name] = (await h).frames
        i, start, n = episodes[2]
        async with ar.episode(i, start) as ep:
            for k in range(n):
                if ep.wants_frame:
                    await ep.append(flat(k))
                else:
                    ep.skip()
        for h in ep.handles:
            got[h.name] = (await h).frames
    assert got == expected
    assert len(expected) >= 5


async def test_long_submissions_are_validated_off_the_loop_and_checked(tmp_path: Path) -> None:
    async with AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=FakeEncoders()) as r:
        frames = [flat(i) for i in range(100)] + [flat(0, 6, 6)]
        with pytest.raises(ValueError, match="frame 100 has shape"):
            await r.submit(frames)
        with pytest.raises(TypeError, match="frame 1"):
            await r.submit([flat(0), "nope"])
        assert r.stats().videos_started == 0
        (h,) = await r.submit(np.stack([flat(i) for i in range(40)]))
        assert (await h).frames == 40


# -- backpressure ------------------------------------------------------------------------------


async def test_block_suspends_the_task_not_the_loop(tmp_path: Path) -> None:
    fake = gated()
    appended = 0
    ticks = 0  # the other task's turns on the loop
    ticks_during: list[int] = []  # those taken while each append was under way
    finished = anyio.Event()
    async with AsyncRecorder(tmp_path, **budget(2, fake)) as rec:

        async def produce() -> None:
            nonlocal appended
            async with rec.episode(0) as ep:
                for i in range(8):
                    before = ticks
                    await ep.append(flat(i))
                    ticks_during.append(ticks - before)
                    appended += 1
            finished.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            await until(lambda: appended == 2, "two frames fill the budget")
            await wait_thread_event(fake.started)  # the worker is stuck in frame 0
            for _ in range(200):
                await anyio.sleep(0)
                ticks += 1
            assert appended == 2
            assert not finished.is_set()
            assert rec.stats().queued_bytes == 2 * FRAME
            # Another episode may not jump the queue, nor drop anything, without waiting.
            async with rec.episode(1) as other:
                with pytest.raises(QueueFullError, match="nothing was dropped"):
                    other.append_nowait(flat(99))
                assert other.frames_seen == 0
                other.close()
            fake.gate.set()
        assert appended == 8
        # The third append waited for room, and the loop ran this task all the while.
        assert ticks_during == [0, 0, 200, 0, 0, 0, 0, 0]
        await rec.flush()
        stats = rec.stats()
    assert stats.peak_queued_bytes <= 2 * FRAME
    assert stats.videos_dropped == 0
    assert fake.by_name("rl-video-episode-0").frames == list(range(8))


async def test_waiting_tasks_take_turns(tmp_path: Path) -> None:
    fake = gated()
    async with AsyncRecorder(tmp_path, **budget(2, fake)) as rec:
        order: list[int] = []

        async def produce(i: int) -> None:
            async with rec.episode(i) as ep:
                for k in range(4):
                    await ep.append(flat(10 * i + k))
                    order.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(produce, i)
            await until(lambda: len(order) == 2, "the budget is full")
            await wait_thread_event(fake.started)
            fake.gate.set()
        await rec.flush()
    assert sorted(order) == [0] * 4 + [1] * 4 + [2] * 4
    for i in range(3):
        assert fake.by_name(f"rl-video-episode-{i}").frames == [10 * i + k for k in range(4)]


async def test_a_waiting_task_is_not_overtaken(tmp_path: Path) -> None:
    fake = gated()
    async with AsyncRecorder(tmp_path, **budget(2, fake)) as rec:
        async with rec.episode(0) as first, rec.episode(1) as second:
            await first.append(flat(0))
            await first.append(flat(1))
            async with anyio.create_task_group() as tg:
                tg.start_soon(first.append, flat(2))
                await until(lambda: waiting_for_room(rec) == 1, "the third frame waits for room")
                fake.gate.set()
                # Hold the loop (the waiting task cannot resume) until there is room again.
                deadline = time.monotonic() + 10
                while rec.stats().queued_bytes > FRAME:
                    assert time.monotonic() < deadline
                with pytest.raises(QueueFullError, match="nothing was dropped"):
                    second.append_nowait(flat(99))  # room, but a task came first
            second.append_nowait(flat(99))
        await rec.flush()
    assert fake.by_name("rl-video-episode-0").frames == [0, 1, 2]
    assert fake.by_name("rl-video-episode-1").frames == [99]


@pytest.mark.parametrize("policy", ["drop", "raise"])
async def test_append_nowait_applies_the_policy(tmp_path: Path, policy: str) -> None:
    fake = gated()
    async with AsyncRecorder(tmp_path, **budget(1, fake, on_full=policy)) as rec:
        async with rec.episode(0) as ep:
            ep.append_nowait(flat(0))
            await wait_thread_event(fake.started)
            if policy == "raise":
                with pytest.raises(QueueFullError, match="dropped rl-video-episode-0"):
                    ep.append_nowait(flat(1))
            else:
                ep.append_nowait(flat(1))
            assert not ep.wants_frame  # the clip is gone
        fake.gate.set()
        (handle,) = ep.handles
        with pytest.raises(ClipDroppedError, match="max_queue_bytes"):
            await handle
        assert handle.dropped


async def test_one_task_appends_to_an_episode_at_a_time(tmp_path: Path) -> None:
    fake = gated()
    async with AsyncRecorder(tmp_path, **budget(1, fake)) as rec:
        async with rec.episode(0) as ep, anyio.create_task_group() as tg:
            await ep.append(flat(0))
            tg.start_soon(ep.append, flat(1))  # waits for room
            await until(lambda: waiting_for_room(rec) == 1, "the second frame waits")
            with pytest.raises(anyio.BusyResourceError):
                await ep.append(flat(2))
            with pytest.raises(anyio.BusyResourceError):
                ep.append_nowait(flat(2))
            fake.gate.set()
        await rec.flush()
    assert fake.by_name("rl-video-episode-0").frames == [0, 1]


# -- errors --------------------------------------------------------------------------------------


async def test_loop_keeps_ticking_while_a_backlog_is_flushed(tmp_path: Path) -> None:
    fake = gated()
    flushed = anyio.Event()
    async with AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        for i in range(3):
            await rec.submit([flat(k) for k in range(100)], episode_index=i)

        async def flush() -> None:
            await rec.flush()
            flushed.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(flush)
            await wait_thread_event(fake.started)
            for _ in range(200):  # a ticker on the loop while flush() waits
                await anyio.sleep(0)
                assert not flushed.is_set()
            fake.gate.set()
        assert rec.stats().frames_encoded == 300
    assert [len(e.frames) for e in fake.made] == [100, 100, 100]


async def test_real_encoding_backlog_leaves_the_loop_free(tmp_path: Path) -> None:
    ticks = 0
    flushing = True

    async def ticker() -> None:
        nonlocal ticks
        while flushing:
            await anyio.sleep(0.001)
            ticks += 1

    async with AsyncRecorder(tmp_path, episode_trigger=always, workers=2) as rec:
        for i in range(3):
            await rec.submit([painted(k, 240, 320) for k in range(60)], episode_index=i)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await anyio.sleep(0)
            assert rec.stats().videos_saved < 3
            await rec.flush()
            during = ticks
            flushing = False
    assert during > 0
    for i in range(3):
        assert decode(tmp_path / f"rl-video-episode-{i}.mp4").indices == list(range(60))


async def test_worker_error_surfaces_from_flush(tmp_path: Path) -> None:
    fake = FakeEncoders(fail_at=2)
    async with AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        (handle,) = await rec.submit([flat(i) for i in range(5)])
        with pytest.raises(OSError, match="No space left"):
            await rec.flush()
        with pytest.raises(OSError, match="No space left"):
            await handle
        await rec.flush()  # reported once
        assert rec.stats().videos_failed == 1
    # aclose() does not raise it again either


async def test_several_worker_errors_surface_as_a_group(tmp_path: Path) -> None:
    fake = FakeEncoders(fail_at=1)
    rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake, workers=2)
    try:
        for i in range(3):
            await rec.submit([flat(k) for k in range(3)], episode_index=i)
        with pytest.raises(ExceptionGroup) as group:
            await rec.flush()
        assert len(group.value.exceptions) == 3
    finally:
        await rec.aclose()


async def test_error_on_close_is_raised_from_aclose(tmp_path: Path) -> None:
    fake = FakeEncoders(fail_at=1)
    rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    async with rec.episode(0) as ep:
        await ep.append(flat(0))
        await ep.append(flat(1))
    with pytest.raises(OSError, match="No space left"):
        await rec.aclose()
    await rec.aclose()  # idempotent, and reported once


async def test_exception_inside_the_block_flushes_then_propagates(tmp_path: Path) -> None:
    handles: list[AsyncClipHandle] = []

    async def record_then_fail() -> None:
        async with AsyncRecorder(tmp_path, episode_trigger=always) as rec:
            handles.extend(await rec.submit([painted(i) for i in range(9)]))
            async with rec.episode(1) as ep:
                for i in range(4):
                    await ep.append(painted(50 + i))
                raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await record_then_fail()
    assert handles[0].done()
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == list(range(9))
    # The episode left by the exception is ended where it was: its frames are all there.
    assert decode(tmp_path / "rl-video-episode-1.mp4").indices == [50, 51, 52, 53]


async def test_block_exception_wins_over_recorder_errors(tmp_path: Path) -> None:
    fake = FakeEncoders(fail_at=0)
    rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake)

    async def record_then_fail() -> None:
        async with rec:
            await rec.submit([flat(0)])
            raise KeyError("mine")

    with pytest.raises(KeyError) as raised:
        await record_then_fail()
    assert any("No space left" in note for note in raised.value.__notes__)
    assert rec.stats().videos_failed == 1


async def test_closed_recorder_refuses_new_work(tmp_path: Path) -> None:
    rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=FakeEncoders())
    ep = rec.episode(0)
    await rec.aclose()
    assert rec.closed
    with pytest.raises(RecorderClosedError):
        await rec.submit([flat(0)])
    with pytest.raises(RecorderClosedError):
        rec.episode(1)
    with pytest.raises(RecorderClosedError):
        await ep.append(flat(0))
    await rec.flush()
    await rec.aclose()


# -- cancellation --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["cancel", "deadline"])
async def test_cancelling_a_task_leaving_the_block_loses_nothing(tmp_path: Path, how: str) -> None:
    fake = gated()
    leaving = anyio.Event()
    handles: list[AsyncClipHandle] = []
    after_block = False
    with anyio.CancelScope() as outer:
        pass  # just a scope object to cancel the leaving task with

    async def leave() -> None:
        nonlocal after_block, outer
        with anyio.CancelScope() as outer:
            async with AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
                handles.extend(await rec.submit([flat(i) for i in range(10)]))
                leaving.set()
            after_block = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(leave)
        await leaving.wait()  # the task is now waiting inside __aexit__
        if how == "cancel":
            outer.cancel()
        else:
            outer.deadline = anyio.current_time()  # a timeout around the block fires
        await anyio.sleep(0)
        fake.gate.set()
    assert outer.cancelled_caught
    assert not after_block  # the cancellation was delivered once the videos were saved
    (handle,) = handles
    assert (await handle).frames == 10
    assert fake.made[0].frames == list(range(10))
    assert fake.made[0].closed
    assert (tmp_path / "rl-video-episode-0.mp4").exists()


async def test_fast_close_from_another_task_drops_quickly(tmp_path: Path) -> None:
    fake = gated()
    leaving = anyio.Event()
    closing = anyio.Event()
    handles: list[AsyncClipHandle] = []
    rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake)

    async def leave() -> None:
        async with rec:
            handles.extend(await rec.submit([flat(i) for i in range(10)]))
            leaving.set()

    async def close_fast() -> None:
        closing.set()
        await rec.aclose(cancel=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(leave)
        await leaving.wait()
        await wait_thread_event(fake.started)
        tg.start_soon(close_fast)
        await closing.wait()  # close_fast dropped everything before its first await
        fake.gate.set()
    (handle,) = handles
    with pytest.raises(ClipDroppedError, match="cancel=True"):
        await handle
    assert len(fake.made[0].frames) <= 1  # the frame the worker was inside, at most
    assert fake.made[0].aborted
    assert not (tmp_path / "rl-video-episode-0.mp4").exists()


async def test_a_second_aclose_waits_for_the_first_at_most_its_own_timeout(tmp_path: Path) -> None:
    fake = gated()
    leaving = anyio.Event()
    handles: list[AsyncClipHandle] = []
    rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake)

    left = anyio.Event()

    async def leave() -> None:
        async with rec:  # its close waits for the video, without a timeout
            handles.extend(await rec.submit([flat(i) for i in range(10)]))
            leaving.set()
        left.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(leave)
        await leaving.wait()
        await wait_thread_event(fake.started)
        await until(lambda: rec.closed, "the first aclose began")
        with pytest.raises(TimeoutError, match=r"aclose\(\) timed out after 0.2 s"):
            await rec.aclose(timeout=0.2)
        # The rest dropped, the first close waits no more than the workers' grace, even with
        # its worker stuck inside a frame (the gate still shut).
        with anyio.fail_after(GRACE_SECONDS + 2):  # the fake gives up on its gate after 5 s
            await left.wait()
        fake.gate.set()  # the worker leaves the frame it was in
    for thread in threads_of(recorder_of(rec)):
        await anyio.to_thread.run_sync(thread.join, 30)
    (handle,) = handles
    with pytest.raises(ClipDroppedError, match=r"aclose\(\) timed out after 0.2 s"):
        await handle
    assert not (tmp_path / "rl-video-episode-0.mp4").exists()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_aclose_on_another_event_loop_waits_for_the_first_and_returns(
    tmp_path: Path,
) -> None:
    # One AsyncRecorder per loop is the rule; a close from another loop must still not hang.
    fake = gated()
    rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    [handle] = await rec.submit([flat(i) for i in range(3)])
    waiting = watch_close_waiters(rec)
    outcome: list[BaseException | None] = []

    def other_loop() -> None:
        try:
            asyncio.run(rec.aclose())
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    other = threading.Thread(target=other_loop)
    async with anyio.create_task_group() as tg:
        tg.start_soon(rec.aclose)
        await until(lambda: rec.closed, "the first aclose began")
        other.start()
        await wait_thread_event(waiting)  # the second aclose waits for the first
        fake.gate.set()
    await anyio.to_thread.run_sync(other.join, 10)
    assert not other.is_alive()
    assert outcome == [None]
    assert (await handle).frames == 3


async def test_polling_a_handle_with_a_timeout_leaves_nothing_behind(tmp_path: Path) -> None:
    fake = gated()
    async with AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        [handle] = await rec.submit([flat(0)])
        for _ in range(200):
            with anyio.move_on_after(0):
                await handle
        assert waiting_tasks(handle.future) == (0, 1)  # one callback for every waiter
        fake.gate.set()
        assert (await handle).frames == 1
    assert waiting_tasks(handle.future)[0] == 0


@pytest.mark.parametrize("how", ["aclose", "async with", "cancelled"])
async def test_a_clip_its_episode_left_open_is_marked_partial(tmp_path: Path, how: str) -> None:
    rec = AsyncRecorder(tmp_path, episode_trigger=always)
    if how == "cancelled":  # asyncio.run's first Ctrl-C is a cancellation too
        with anyio.CancelScope() as scope:
            async with rec.episode(0) as ep:
                await ep.append(flat(0))
                scope.cancel()
                await anyio.lowlevel.checkpoint()
        assert scope.cancelled_caught
        await rec.aclose()
    elif how == "async with":
        async with rec:
            ep = rec.episode(0)
            await ep.append(flat(0))
    else:
        ep = rec.episode(0)
        await ep.append(flat(0))
        await rec.aclose()
    info = await ep.handles[0]
    assert (info.frames, info.partial) == (1, True)
    assert json.loads(info.path.with_suffix(".json").read_text())["partial"] is True


async def test_an_episode_refuses_frames_once_an_aclose_began(tmp_path: Path) -> None:
    fake = gated()
    rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    ep = rec.episode(0)
    await ep.append(flat(0))
    async with anyio.create_task_group() as tg:
        tg.start_soon(rec.aclose)
        await until(lambda: rec.closed, "the aclose began")
        with pytest.raises(RecorderClosedError):
            await ep.offer(lambda: flat(1))
        with pytest.raises(RecorderClosedError):
            await ep.append(flat(1))
        fake.gate.set()
    assert (await ep.handles[0]).frames == 1


async def test_flush_ends_the_clips_of_an_episode_collected_unclosed(tmp_path: Path) -> None:
    async with AsyncRecorder(tmp_path, episode_trigger=always) as rec:
        ep = rec.episode(0)  # its close forgotten
        for k in range(3):
            await ep.append(painted(k))
        (handle,) = ep.handles
        del ep  # collected: the flush ends its clip where it is, then waits for it
        await rec.flush()
        assert handle.done()
    info = await handle
    assert (info.frames, info.partial) == (3, True)


async def test_aclose_refuses_a_cancel_that_is_not_a_bool(tmp_path: Path) -> None:
    async with AsyncRecorder(tmp_path, episode_trigger=always) as rec:
        (handle,) = await rec.submit([flat(i) for i in range(3)])
        with pytest.raises(TypeError, match="cancel must be a bool"):
            await rec.aclose(cancel="no")  # type: ignore[arg-type]
        assert not rec.closed
    assert (await handle).frames == 3


async def test_aclose_timeout_drops_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = gated()

    class OpenGateOnDrop(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "dropped video" in record.getMessage():
                fake.gate.set()

    handler = OpenGateOnDrop()
    logging.getLogger("recorder").addHandler(handler)
    try:
        rec = AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake)
        (handle,) = await rec.submit([flat(i) for i in range(10)])
        with pytest.raises(TimeoutError, match="dropped"):
            await rec.aclose(timeout=0.05)
    finally:
        logging.getLogger("recorder").removeHandler(handler)
    assert handle.dropped
    assert len(fake.made[0].frames) <= 1


async def test_cancelled_flush_stops_waiting_and_loses_nothing(tmp_path: Path) -> None:
    fake = gated()
    async with AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
        (handle,) = await rec.submit([flat(i) for i in range(6)])
        await wait_thread_event(fake.started)
        with anyio.move_on_after(0.05) as timeout:
            await rec.flush()
        assert timeout.cancelled_caught
        with anyio.CancelScope() as scope:
            scope.cancel()
            await handle
        assert scope.cancelled_caught
        fake.gate.set()
        await rec.flush()
        assert (await handle).frames == 6


async def test_cancelled_submit_drops_its_clips(tmp_path: Path) -> None:
    fake = gated()
    async with AsyncRecorder(tmp_path, **budget(2, fake)) as rec:
        with anyio.CancelScope() as scope:

            async def cancel_when_waiting() -> None:
                await until(lambda: waiting_for_room(rec) == 1, "submit waits for room")
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_when_waiting)
                await rec.submit([flat(i) for i in range(10)])
        assert scope.cancelled_caught
        assert waiting_for_room(rec) == 0
        fake.gate.set()
        await rec.flush()
        stats = rec.stats()
        assert stats.videos_dropped == 1
        assert stats.videos_saved == 0
        # The recorder goes on: a later episode is recorded whole.
        (handle,) = await rec.submit([flat(i) for i in range(5)], episode_index=1)
        assert (await handle).frames == 5
    assert not (tmp_path / "rl-video-episode-0.mp4").exists()


async def test_cancelled_append_leaves_the_episode_as_it_was(tmp_path: Path) -> None:
    fake = gated()
    async with (
        AsyncRecorder(tmp_path, **budget(2, fake)) as rec,
        rec.episode(0) as ep,
    ):
        await ep.append(flat(0))
        await ep.append(flat(1))
        with anyio.move_on_after(0.02) as timeout:
            await ep.append(flat(2))  # no room: waits, then gives up
        assert timeout.cancelled_caught
        assert ep.frames_seen == 2
        fake.gate.set()
        await ep.append(flat(2))
    assert fake.by_name("rl-video-episode-0").frames == [0, 1, 2]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("cancels", [1, 2])
async def test_asyncio_second_cancel_drops_the_rest(
    tmp_path: Path, cancels: int, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = gated()
    waits = 0
    # Set when the flush's first / second blocking wait runs in its thread: a cancellation
    # sent before the thread started would stop a wait that never began (a loaded machine).
    waiting = [threading.Event(), threading.Event()]

    def counted(*args: Any) -> None:
        nonlocal waits
        waits += 1
        waiting[min(waits, 2) - 1].set()
        wait_stoppable(*args)

    wait_stoppable = patch_wait_stoppable(monkeypatch, counted)
    leaving = anyio.Event()
    handles: list[AsyncClipHandle] = []

    async def leave() -> None:
        async with AsyncRecorder(tmp_path, episode_trigger=always, encoder_factory=fake) as rec:
            handles.extend(await rec.submit([flat(i) for i in range(10)]))
            try:
                if cancels == 2:
                    await anyio.sleep_forever()  # the first cancellation lands here
            finally:
                leaving.set()

    task = asyncio.ensure_future(leave())
    if cancels == 2:
        await until(lambda: bool(handles), "submitted")
        task.cancel()
    await leaving.wait()  # the task now waits inside __aexit__
    await wait_thread_event(fake.started)
    await wait_thread_event(waiting[0])
    task.cancel()
    if cancels == 2:
        await until(lambda: "aclose() was interrupted" in caplog.text, "the rest is dropped")
    else:
        # The cancellation stopped the first wait; the flush goes on in a second one.
        await wait_thread_event(waiting[1])
        assert waits == 2
    fake.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    (handle,) = handles
    if cancels == 1:  # deferred until the videos were saved
        assert (await handle).frames == 10
    else:
        with pytest.raises(ClipDroppedError, match="interrupted"):
            await handle
        assert len(fake.made[0].frames) <= 1


# -- streaming: the sync rules, offer() ----------------------------------------------------------


async def test_offer_renders_only_wanted_frames_and_awaits_an_awaitable_render(
    tmp_path: Path,
) -> None:
    fake = FakeEncoders()
    calls: list[int] = []
    results: list[bool] = []
    async with (
        AsyncRecorder(
            tmp_path, step_trigger=lambda s: s in (3, 10), video_length=4, encoder_factory=fake
        ) as rec,
        rec.episode(0) as ep,
    ):
        with pytest.raises(TypeError, match="callable"):
            await ep.offer(flat(0))  # type: ignore[arg-type]
        for k in range(20):

            def render(k: int = k) -> np.ndarray:
                calls.append(k)
                return flat(k)

            async def render_async(k: int = k) -> np.ndarray:
                await anyio.lowlevel.checkpoint()
                return render(k)

            results.append(await ep.offer(render_async if k % 2 else render))
        assert ep.frames_seen == 20
    wanted = [*range(4, 8), *range(11, 15)]  # step s is frame s + 1
    assert calls == wanted
    assert results == [k in wanted for k in range(20)]
    assert fake.by_name("rl-video-step-3").frames == [4, 5, 6, 7]
    assert fake.by_name("rl-video-step-10").frames == [11, 12, 13, 14]


async def test_loop_without_else_and_append_after_a_false_answer(tmp_path: Path) -> None:
    fake = FakeEncoders()
    async with AsyncRecorder(
        tmp_path, step_trigger=lambda s: s % 10 == 0, encoder_factory=fake
    ) as rec:
        async with rec.episode(5, step_starting_index=33) as ep:
            for k in range(25):
                if ep.wants_frame:
                    await ep.append(flat(k))
        async with rec.episode(6, step_starting_index=60) as ep:
            assert not ep.wants_frame  # frame 0
            await ep.append(flat(0))  # the same frame: ignored, as in the sync Episode
            assert ep.frames_seen == 1
            assert ep.wants_frame  # frame 1 is step 60
            ep.append_nowait(flat(1))
        assert rec.stats().episodes_stalled == 0
    assert fake.by_name("rl-video-step-40").frames == list(range(8, 25))
    assert fake.by_name("rl-video-step-50").frames == list(range(18, 25))
    assert fake.by_name("rl-video-step-60").frames == [1]


async def test_stalled_episode_is_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with AsyncRecorder(tmp_path, step_trigger=always, encoder_factory=FakeEncoders()) as rec:
        async with rec.episode(0) as ep:
            assert not ep.wants_frame
        assert rec.stats().episodes_stalled == 1
    assert "episode 0 recorded nothing" in caplog.text


async def test_an_episode_left_by_an_exception_is_not_a_stall(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncRecorder(
        tmp_path, episode_trigger=always, encoder_factory=FakeEncoders()
    ) as rec:
        with pytest.raises(KeyError):
            async with rec.episode(0):
                raise KeyError("the env failed")  # before any frame: as the sync Episode
        assert rec.stats().episodes_stalled == 0
    assert "recorded nothing" not in caplog.text
