"""The queue and a worker as a state machine: open / append (two frame sizes, shared frames) /
end / cancel / drop / worker take / encoder failure / flush / close, in any order, with a
KeyboardInterrupt injected at any point of an append.

The worker runs in the test's thread, a step at a time, with an encoder that checks every
frame it is given (a frame overwritten while queued would differ). After every step: the
budget counts exactly the frames alive, no two alive frames share memory, every handle
resolves once, and a frame that fits the budget is never refused.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fakes import FakeEncoders
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule
from interrupts import Interrupts

from recorder import Codec
from recorder._testing import (
    Clip,
    ClipHandle,
    ClipQueue,
    ClipWriter,
    Item,
    State,
    Worker,
    began,
    check_info,
    format_of,
    free_blocks,
    queue_module,
    releasing,
    spare_blocks,
)

# 3072, 4608 and 6144 bytes: frames of several sizes fragment the arena.
SMALL, LARGE, HUGE = (32, 32, 3), (48, 32, 3), (64, 32, 3)
BUDGET = 6 * 3072


class Harness:
    """A queue, a writer and one worker, driven from the test's thread."""

    def __init__(self, budget: int = BUDGET, on_full: Any = "drop") -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="recorder-machine-"))
        self.queue = ClipQueue(budget, on_full, lambda clip, reason: None)
        # Frames of one value each: one overwritten while queued is noted as -1.
        self.fake = FakeEncoders(error=OSError(5, "injected encoder failure"), uniform=True)
        self.expected: dict[str, list[int]] = defaultdict(list)
        self.resolutions: dict[str, int] = defaultdict(int)
        self.clips: list[Clip] = []
        writer = ClipWriter(self.queue, Codec("h264"), self.fake, None, False)
        self.worker = Worker(self.queue, writer, SimpleNamespace(finish=writer.finish))
        self.value = 0

    def open(self, shape: tuple[int, ...], limit: float = float("inf")) -> Clip:
        name = f"clip-{len(self.clips)}"
        path = self.folder / f"{name}.mp4"
        handle = ClipHandle(name, path, "clip", None)
        handle.add_done_callback(lambda _h: self._resolved(name))
        clip = Clip(name, path, "clip", None, 30.0, handle, limit)
        clip.frame_format = format_of(np.zeros(shape, np.uint8))
        self.queue.open_clip(clip)
        self.clips.append(clip)
        return clip

    def _resolved(self, name: str) -> None:
        self.resolutions[name] += 1

    def frame(self, shape: tuple[int, ...]) -> np.ndarray:
        self.value = self.value % 250 + 1
        return np.full(shape, self.value, np.uint8)

    def append(self, clips: list[Clip], at: int | None = None, info: bool = False) -> Interrupts:
        """Append one new frame to *clips*, with per-frame info if *info*; with *at*,
        interrupted there (see Interrupts)."""
        shape = clips[0].frame_format.shape  # type: ignore[union-attr]
        image = self.frame(shape)
        fmt = format_of(image)
        checked = (
            check_info({"value": self.value, "name": "x" * (self.value % 60)}) if info else None
        )
        before = [c.frames for c in clips]
        fits = self.queue.fits(image.nbytes + (checked[1] if checked else 0))
        was_open = [c.state is State.OPEN for c in clips]
        interrupts = Interrupts(at)
        try:
            interrupts.run(lambda: self.queue.admit(image, fmt, clips, checked))
        except KeyboardInterrupt:
            assert interrupts.raised
        for clip, n in zip(clips, before, strict=True):
            if clip.frames > n:
                self.expected[clip.name].append(self.value)
        if fits and not interrupts.raised:
            # A frame that fits the budget is never refused.
            for clip, n, was in zip(clips, before, was_open, strict=True):
                assert not was or clip.frames == n + 1, clip
        return interrupts

    def has_work(self) -> bool:
        live = self.queue.live_clips()
        return any(c.items or c.state is State.DROPPED for c in live)

    def drain(self) -> None:
        """Steps until no work is left; then the worker lets go of what it encoded last (as
        its next take would)."""
        for _ in range(10_000):
            if not self.has_work():
                break
            assert self.worker.step()
        else:
            raise AssertionError("the worker never ran out of work")
        worker = self.worker
        if worker.current is not None and worker.done:
            self.queue.release(worker.current, worker.done, worker.written)
        worker.done, worker.written = [], 0

    def close(self) -> None:
        queue = self.queue
        queue.close()
        for clip in queue.live_clips():
            queue.end(clip)
        self.drain()
        assert queue.wait(time.monotonic(), everything=True)
        for clip in self.clips:
            handle = clip.handle
            assert handle.done(), clip
            assert self.resolutions[clip.name] == 1, clip
            if clip.state is State.SAVED:
                assert not handle.cancelled()
                assert self.fake.plan().get(clip.name, []) == self.expected[clip.name]
                assert handle.result().frames == len(self.expected[clip.name])
            elif handle.cancelled():
                assert clip.state is State.DROPPED
        stats = queue.stats()
        assert stats.videos_in_progress == 0
        assert stats.queued_bytes == 0
        assert stats.queued_frames == 0
        self.check()

    def check(self) -> None:
        """The invariants that hold between any two calls."""
        queue, memory = self.queue, self.queue.memory
        assert memory.inflight is None
        assert releasing(queue) is None
        alive: dict[int, Item] = {}
        holders: dict[int, int] = defaultdict(int)
        for clip in queue.live_clips():
            for work in clip.items:
                if isinstance(work, Item):
                    alive[id(work)] = work
                    holders[id(work)] += 1
        for item in self.worker.done:
            alive[id(item)] = item
            holders[id(item)] += 1
        assert all(item.refs == holders[key] for key, item in alive.items())
        assert memory.queued_bytes == sum(item.nbytes for item in alive.values())
        assert 0 <= memory.queued_bytes <= queue.max_bytes
        assert queue.counts.queued_frames == len(alive)
        # No two alive frames, and no free block, share a byte of the arena.
        spans = sorted(
            (off, off + item.buffer.nbytes)
            for item in alive.values()
            if (off := memory.arena.offset(item.buffer)) is not None
        )
        spans += [(start, start + size) for start, size in free_blocks(memory)]
        spans += [
            (off, off + block.nbytes)
            for spare in spare_blocks(memory).values()
            for block in spare
            if (off := memory.arena.offset(block)) is not None
        ]
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
        # Each encoder got its clip's frames in order (so far).
        for name, written in self.fake.plan().items():
            assert written == self.expected[name][: len(written)], name
        stats = queue.stats()
        undecided = [c for c in queue.live_clips() if c.state in (State.OPEN, State.ENDED)]
        assert stats.videos_in_progress == len(undecided) + sum(
            1 for c in queue.live_clips() if c.state is State.PUBLISHED
        )

    def dispose(self) -> None:
        self.queue.close_arena()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _short_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_module, "IDLE_SECONDS", 0.001)


# -- every point of an append, one scenario at a time ------------------------------------------


def _plain(h: Harness) -> list[Clip]:
    clip = h.open(SMALL)
    h.append([clip])
    return [clip]


def _at_its_length(h: Harness) -> list[Clip]:
    clip = h.open(SMALL, limit=2)
    h.append([clip])
    return [clip]


def _shared(h: Harness) -> list[Clip]:
    return [h.open(SMALL), h.open(SMALL)]


def _with_info(h: Harness) -> list[Clip]:
    clip = h.open(SMALL)
    h.append([clip], info=True)
    return [clip]


def _full(h: Harness) -> list[Clip]:
    clip = h.open(SMALL)
    for _ in range(BUDGET // 3072):
        h.append([clip])
    return [clip]  # the next frame drops the clip: its frames are released on this thread


def _fragmented(h: Harness) -> list[Clip]:
    small, large = h.open(SMALL), h.open(LARGE)
    for clip in (small, large, small, large, small):  # the whole budget
        h.append([clip])
    h.queue.drop(small, "holes between the large frames")
    h.drain()
    return [h.open(HUGE)]  # fits the budget, in no free block of the arena


@pytest.mark.parametrize(
    "scenario", [_plain, _at_its_length, _shared, _with_info, _full, _fragmented]
)
def test_a_keyboard_interrupt_anywhere_in_append_loses_or_corrupts_nothing(scenario: Any) -> None:
    def setup() -> tuple[Harness, list[Clip]]:
        h = Harness()
        return h, scenario(h)

    info = scenario is _with_info  # its frames carry info, charged to the budget with them
    h, clips = setup()
    total = h.append(clips, info=info).count
    h.dispose()
    assert total > 10
    for at in range(total):
        h, clips = setup()
        where = h.append(clips, at=at, info=info).where
        assert where
        try:
            h.check()
        except AssertionError as e:
            e.add_note(f"interrupted at {where}")
            raise
        # The recorder stays usable: more frames, then everything is saved or dropped.
        for clip in clips:
            if clip.state is State.OPEN:
                h.append([clip])
        h.check()
        h.close()
        h.dispose()


# -- any sequence ------------------------------------------------------------------------------


class QueueMachine(RuleBasedStateMachine):
    clips = Bundle("clips")

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.closed = False

    def teardown(self) -> None:
        if not self.closed:
            self.h.close()
        self.h.dispose()

    @precondition(lambda self: not self.closed)
    @rule(target=clips, large=st.booleans(), limit=st.sampled_from([float("inf"), 1, 3]))
    def open(self, large: bool, limit: float) -> Clip:
        return self.h.open(LARGE if large else SMALL, limit)

    @precondition(lambda self: not self.closed)
    @rule(clip=clips, info=st.booleans())
    def append(self, clip: Clip, info: bool) -> None:
        self.h.append([clip], info=info)

    @precondition(lambda self: not self.closed)
    @rule(a=clips, b=clips, info=st.booleans())
    def append_shared(self, a: Clip, b: Clip, info: bool) -> None:
        if a is not b and a.frame_format == b.frame_format:
            self.h.append([a, b], info=info)

    @precondition(lambda self: not self.closed)
    @rule(clip=clips, at=st.integers(0, 300), info=st.booleans())
    def append_interrupted(self, clip: Clip, at: int, info: bool) -> None:
        self.h.append([clip], at=at, info=info)

    @precondition(lambda self: not self.closed)
    @rule(clip=clips)
    def end(self, clip: Clip) -> None:
        self.h.queue.end(clip)

    @rule(clip=clips)
    def cancel(self, clip: Clip) -> None:
        handle = clip.handle
        resolved = handle.done() and not handle.cancelled()
        begun = began(handle)
        # A handle whose clip a worker has begun cannot be cancelled (concurrent.futures).
        assert handle.cancel() == (begun is not True and not resolved)

    @rule(clip=clips)
    def drop(self, clip: Clip) -> None:
        self.h.queue.drop(clip, "dropped by the test")

    @rule(clip=clips)
    def fail_encoder(self, clip: Clip) -> None:
        self.h.fake.fail_next.add(clip.name)

    @precondition(lambda self: self.h.has_work())
    @rule()
    def take(self) -> None:
        assert self.h.worker.step()

    @precondition(lambda self: not self.closed)
    @rule()
    def flush(self) -> None:
        targets = self.h.queue.snapshot()
        self.h.drain()
        assert self.h.queue.wait(time.monotonic(), targets=targets)

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self) -> None:
        self.closed = True
        self.h.close()

    @rule()
    def read_stats(self) -> None:
        stats = self.h.queue.stats()
        # (A frame shared by two clips is submitted once and encoded once per video.)
        assert 0 <= stats.queued_frames <= stats.frames_submitted
        assert stats.videos_in_progress >= 0

    @invariant()
    def holds(self) -> None:
        self.h.check()


QueueMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_queue_as_a_state_machine = QueueMachine.TestCase
