"""One copy per frame: the queue's frames live in a shared-memory arena that encoder processes
read where the training thread copied them.

Unit tests of the allocator, then real PyAV recordings whose budget is a few frames, so that
every block is reused many times: a block given back before the encoder process has read it
would put another frame's pixels in the video, which the decode-back catches.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import always, decode, painted, require_processes

from recorder import Recorder
from recorder._testing import (
    ALIGN,
    MAX_SPARE_SHAPES,
    FrameMemory,
    ProcessEncoder,
    arena_of,
    arena_size,
    free_blocks,
    merge_spares,
    patch_private_send,
    spare_blocks,
)

needs_processes = pytest.mark.usefixtures("_needs_processes")


@pytest.fixture
def _needs_processes() -> None:
    require_processes()


def memory(budget: int) -> FrameMemory:
    return FrameMemory(threading.Lock(), budget, prefault=False)


def block(mem: FrameMemory, shape: tuple[int, ...]) -> np.ndarray:
    got = mem.alloc(shape)
    assert got is not None
    return got


def test_blocks_are_first_fit_aligned_and_merged_when_freed() -> None:
    mem = memory(8000)
    arena = mem.arena
    a = block(mem, (10, 10))  # 100 bytes: two ALIGN units
    b = block(mem, (ALIGN,))
    c = block(mem, (3, ALIGN))
    assert [arena.offset(x) for x in (a, b, c)] == [0, 2 * ALIGN, 3 * ALIGN]
    assert mem.queued_bytes == 100 + 4 * ALIGN
    mem.release(b, ALIGN)
    again = block(mem, (ALIGN,))  # the lowest free block: the memory touched last
    assert arena.offset(again) == 2 * ALIGN
    for x in (again, a, c):
        mem.release(x, x.nbytes)
    assert mem.queued_bytes == 0
    assert mem.free_bytes == arena.size
    merge_spares(mem)  # as when a frame finds no room otherwise: merged back into one block
    assert free_blocks(mem) == [(0, arena.size)]
    mem.close()


def test_freed_blocks_are_reused_whole_for_their_shape_and_merged_when_needed() -> None:
    mem = memory(64 * 1024)
    arena = mem.arena
    a, b = block(mem, (2, ALIGN)), block(mem, (2, ALIGN))
    mem.release(a, a.nbytes)
    mem.release(b, b.nbytes)
    assert mem.free_bytes == arena.size  # kept whole, still counted free
    again = block(mem, (2, ALIGN))
    assert again.shape == (2, ALIGN)
    assert arena.offset(again) == arena.offset(b)  # the one freed last
    mem.release(again, again.nbytes)
    # The whole budget in kept blocks of one shape: another shape finds no room at the
    # end of the arena, so the kept blocks are merged back for it.
    blocks = [block(mem, (2, ALIGN)) for _ in range(mem.max_bytes // (2 * ALIGN))]
    for x in blocks:
        mem.release(x, x.nbytes)
    assert arena.size - mem.high_water < 8192
    assert arena.offset(block(mem, (8192,))) == 0
    mem.close()


def test_more_shapes_than_are_kept_whole_go_back_to_the_free_list() -> None:
    mem = memory(16 * ALIGN)
    blocks = [block(mem, (k, ALIGN)) for k in range(1, 6)]
    for x in blocks:
        mem.release(x, x.nbytes)
    assert mem.free_bytes == mem.arena.size
    assert len(spare_blocks(mem)) == MAX_SPARE_SHAPES
    mem.close()


def test_a_frame_that_fits_the_budget_is_never_refused_by_a_fragmented_arena() -> None:
    # Two sizes of frames interleaved (two envs on one Recorder), the large ones released:
    # the budget has room for a frame no free block of the arena is large enough for.
    mem = memory(1_000_000)
    big, small = (1000, 200), (250, 200)
    blocks = [block(mem, big if i % 2 == 0 else small) for i in range(7)]
    for x in blocks[0:6:2]:
        mem.release(x, x.nbytes)
    assert mem.queued_bytes == 350_000
    largest_free = max(size for _, size in free_blocks(mem))
    assert largest_free < 450_000 <= mem.free_bytes
    frame = block(mem, (1000, 450))  # memory of its own: one more copy, never a drop
    assert mem.arena.offset(frame) is None
    assert mem.queued_bytes == 800_000
    mem.release(frame, frame.nbytes)
    assert mem.alloc((1000, 651)) is None  # beyond the budget: refused
    mem.close()


def test_memory_outside_the_arena_is_not_in_it() -> None:
    mem = memory(4 * ALIGN)
    x = block(mem, (2, ALIGN))
    arena = mem.arena
    assert arena.offset(np.zeros((2, ALIGN), np.uint8)) is None
    assert arena.offset(x[:, ::2]) is None  # not contiguous: not one block
    assert arena.offset(x) == 0


@pytest.mark.skipif(sys.platform != "linux", reason="madvise(MADV_REMOVE) is Linux's")
def test_a_view_kept_after_close_keeps_the_mapping_not_the_memory() -> None:
    # A frame view that outlives the Recorder (an error kept with its traceback, say) cannot
    # keep up to max_queue_bytes resident: close() gives the pages back (they read as zeros).
    mem = memory(4 * ALIGN)
    kept = block(mem, (2, ALIGN))
    kept[:] = 7
    mem.arena.close()
    assert not kept.any()
    kept[:] = 1  # still mapped: a stray write does no harm
    del kept


def test_the_arena_is_the_budget_with_room_for_alignment() -> None:
    budget = 8 * 720_000
    assert budget <= arena_size(budget) <= budget * 1.04 + 8192
    # A budget of frames whose size is not a multiple of ALIGN fits them all in the arena.
    frame = (97, 131, 3)
    mem = memory(10 * 97 * 131 * 3)
    assert all(mem.arena.offset(block(mem, frame)) is not None for _ in range(10))


@needs_processes
@pytest.mark.parametrize("encode_in", ["process", "thread"])
def test_a_budget_of_three_frames_reuses_blocks_only_once_they_are_encoded(
    tmp_path: Path, encode_in: Any
) -> None:
    frame = painted(0)
    frames = 120
    with Recorder(
        tmp_path,
        episode_trigger=always,
        step_trigger=lambda s: s % 40 == 0,
        max_queue_bytes=3 * frame.nbytes,
        on_full="block",
        encode_in=encode_in,
    ) as rec:
        assert rec.encode_in == encode_in
        with rec.episode(0) as ep:
            for i in range(frames):
                ep.append(painted(i))
        rec.flush()
        stats = rec.stats()
    assert stats.peak_queued_bytes <= 3 * frame.nbytes
    assert stats.queued_bytes == 0
    assert stats.frames_dropped == 0
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == list(range(frames))
    # step 40 is frame 41 (frame 0 is the reset frame)
    assert decode(tmp_path / "rl-video-step-40.mp4").indices == list(range(41, frames))
    assert decode(tmp_path / "rl-video-step-80.mp4").indices == list(range(81, frames))


@needs_processes
def test_the_encoder_process_is_given_places_in_the_arena_not_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    places: list[int | None] = []
    private: list[int] = []
    write = ProcessEncoder.write

    def spy_write(encoder: ProcessEncoder, image: Any) -> None:
        places.append(arena_of(encoder).offset(image))
        write(encoder, image)

    def spy_private(encoder: ProcessEncoder, image: Any, *text: Any) -> None:
        private.append(image.nbytes)
        send_private(encoder, image, *text)

    monkeypatch.setattr(ProcessEncoder, "write", spy_write)
    send_private = patch_private_send(monkeypatch, spy_private)
    big = painted(7, height=480, width=640)
    with Recorder(tmp_path, episode_trigger=always, max_queue_bytes=big.nbytes // 2) as rec:
        assert rec.encode_in == "process"
        small = rec.submit([painted(i) for i in range(20)], episode_index=0)
        rec.flush()
        # A frame larger than the whole budget is admitted alone into an empty queue: it
        # cannot be in the arena, and is copied once more, into memory of its own.
        large = rec.submit([big], episode_index=1)
        rec.flush()
    assert len(places) == 21
    assert None not in places[:20]
    assert places[20] is None
    assert private == [big.nbytes]
    assert small[0].result().frames == 20
    assert decode(small[0].result().path).indices == list(range(20))
    assert decode(large[0].result().path).indices == [7]
