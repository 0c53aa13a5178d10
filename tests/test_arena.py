"""One copy per frame: the queue's frames live in a shared-memory arena that encoder processes
read where the training thread copied them.

Unit tests of the allocator, then real PyAV recordings whose budget is a few frames, so that
every block is reused many times: a block given back before the encoder process has read it
would put another frame's pixels in the video, which the decode-back catches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import always, decode, painted, require_processes

from recorder import Recorder
from recorder._arena import ALIGN, Arena, arena_size
from recorder._process import ProcessEncoder

needs_processes = pytest.mark.usefixtures("_needs_processes")


@pytest.fixture
def _needs_processes() -> None:
    require_processes()


def test_blocks_are_first_fit_aligned_and_merged_when_freed() -> None:
    arena = Arena(64 * ALIGN)
    a = arena.alloc((10, 10))  # 100 bytes: two ALIGN units
    b = arena.alloc((ALIGN,))
    c = arena.alloc((3, ALIGN))
    assert a is not None
    assert b is not None
    assert c is not None
    assert [arena.offset(x) for x in (a, b, c)] == [0, 2 * ALIGN, 3 * ALIGN]
    arena.free(b)
    again = arena.alloc((ALIGN,))  # the lowest free block: the memory touched last
    assert again is not None
    assert arena.offset(again) == 2 * ALIGN
    arena.free(again)
    arena.free(a)
    arena.free(c)
    assert arena.free_bytes == arena.size
    whole = arena.alloc((arena.size,))  # merged back into one block
    assert whole is not None
    assert arena.offset(whole) == 0
    assert arena.alloc((1,)) is None
    arena.free(whole)
    arena.close()


def test_freed_blocks_are_reused_whole_for_their_shape_and_merged_when_needed() -> None:
    arena = Arena(16 * ALIGN)
    a, b = arena.alloc((2, ALIGN)), arena.alloc((2, ALIGN))
    assert a is not None
    assert b is not None
    arena.free(a)
    arena.free(b)
    assert arena.free_bytes == arena.size  # kept whole, still counted free
    again = arena.alloc((2, ALIGN))
    assert again is not None
    assert again.shape == (2, ALIGN)
    assert arena.offset(again) == arena.offset(b)  # the one freed last
    arena.free(again)
    # Another shape: the kept blocks are merged back when it finds no room otherwise.
    whole = arena.alloc((16 * ALIGN,))
    assert whole is not None
    assert arena.offset(whole) == 0
    arena.free(whole)
    # More shapes than are kept whole: the rest go straight back to the free lists.
    shapes = [(k, ALIGN) for k in range(1, 7)]
    blocks = [arena.alloc(shape) for shape in shapes[:5]]
    for block in blocks:
        assert block is not None
        arena.free(block)
    assert arena.free_bytes == arena.size
    assert arena.alloc((16 * ALIGN,)) is not None
    arena.close()


def test_a_fragmented_arena_refuses_a_block_it_has_no_room_for() -> None:
    arena = Arena(8 * ALIGN)
    blocks = [arena.alloc((ALIGN,)) for _ in range(8)]
    for block in blocks[::2]:
        assert block is not None
        arena.free(block)
    assert arena.free_bytes == 4 * ALIGN
    assert arena.alloc((2 * ALIGN,)) is None  # four free units, none of them adjacent
    assert arena.alloc((ALIGN,)) is not None


def test_memory_outside_the_arena_is_not_in_it() -> None:
    arena = Arena(4 * ALIGN)
    block = arena.alloc((2, ALIGN))
    assert block is not None
    assert arena.offset(np.zeros((2, ALIGN), np.uint8)) is None
    assert arena.offset(block[:, ::2]) is None  # not contiguous: not one block
    assert arena.offset(block) == 0


def test_the_arena_is_the_budget_with_room_for_alignment() -> None:
    budget = 8 * 720_000
    assert budget <= arena_size(budget) <= budget * 1.04 + 8192
    # A budget of frames whose size is not a multiple of ALIGN still takes them all.
    frame = (97, 131, 3)
    arena = Arena(arena_size(10 * 97 * 131 * 3))
    assert all(arena.alloc(frame) is not None for _ in range(10))


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
    write, send_private = ProcessEncoder.write, ProcessEncoder._send_private

    def spy_write(encoder: ProcessEncoder, image: Any) -> None:
        places.append(encoder._arena.offset(image))
        write(encoder, image)

    def spy_private(encoder: ProcessEncoder, image: Any) -> None:
        private.append(image.nbytes)
        send_private(encoder, image)

    monkeypatch.setattr(ProcessEncoder, "write", spy_write)
    monkeypatch.setattr(ProcessEncoder, "_send_private", spy_private)
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
