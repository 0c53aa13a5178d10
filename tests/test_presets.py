"""Adaptive quality: the preset of each video follows the backlog; a preset given never moves."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fakes import FakeEncoders, gated
from helpers import FRAME, always, decode, flat, painted, read_index
from hypothesis import given
from hypothesis import strategies as st

import recorder
from recorder import Codec, Recorder, VideoSpec
from recorder._testing import (
    FASTER,
    FASTEST_INTERPOLATION,
    LADDERS,
    RUSH,
    SLOWER,
    PyAVEncoder,
    format_of,
    next_rung,
    quality_of,
)

LADDER = ("veryfast", "superfast", "ultrafast")


@given(st.integers(0, 2), st.floats(0, 1.5))
def test_the_rule(rung: int, fill: float) -> None:
    expected = (
        2 if fill >= RUSH else min(rung + 1, 2) if fill >= FASTER else max(rung - 1, 0)
        if fill <= SLOWER else rung
    )  # fmt: skip
    assert next_rung(rung, fill, 2) == expected


def test_a_backlog_that_grows_and_shrinks_moves_the_preset_down_and_back_up(
    tmp_path: Path,
) -> None:
    fake = gated()
    rec = Recorder(
        tmp_path, episode_trigger=always, max_queue_bytes=40 * FRAME, on_full="block",
        encoder_factory=fake,
    )  # fmt: skip
    with rec:
        rec.submit([flat(0)], episode_index=0)  # opens at an empty queue: the slowest preset
        assert fake.started.wait(10)
        for e in range(1, 8):  # 7 videos of a frame queued behind it
            rec.submit([flat(e)], episode_index=e)
        fake.gate.set()
    opened = {e.name: e.spec.codec.preset for e in fake.made}
    # Each opens with the frames of the others still queued behind it (its own are work in
    # hand): 6, 5, 4, ... of a budget of 40 frames.
    assert [opened[f"rl-video-episode-{e}"] for e in range(8)] == [
        "veryfast",
        "superfast",  # 6 of 40 frames: >= FASTER, one faster
        "ultrafast",  # 5 of 40: one faster again
        "ultrafast",  # 4 of 40: in between, no change
        "ultrafast",  # 3 of 40
        "superfast",  # 2 of 40: <= SLOWER, back up one at a time
        "veryfast",
        "veryfast",
    ]
    sidecars = [json.loads((tmp_path / f"rl-video-episode-{e}.json").read_text()) for e in range(8)]
    assert [s["preset"] for s in sidecars] == [opened[f"rl-video-episode-{e}"] for e in range(8)]
    # Every rung writes the same stream headers: the options that make it so.
    assert {e.spec.codec.options["x264-params"] for e in fake.made} == {
        "cabac=1:8x8dct=1:ref=1:bframes=0:weightp=1"
    }


def test_a_long_video_changes_preset_at_keyframes(tmp_path: Path) -> None:
    fake = FakeEncoders(real=True)
    fake.gate.clear()
    rec = Recorder(
        tmp_path, fps=4, episode_trigger=always, max_queue_bytes=80 * painted(0).nbytes,
        on_full="block", encoder_factory=fake,
    )  # fmt: skip
    with rec, rec.episode(0) as ep:
        ep.append(painted(0))  # opens at an empty queue: veryfast
        assert fake.started.wait(10)
        for k in range(1, 60):  # 59 more frames while the encoder waits: 74% of the budget
            ep.append(painted(k))
        fake.gate.set()
        rec.flush()  # the backlog drains: back up, one preset per short queue
        for k in range(60, 76, 4):
            for j in range(k, k + 4):
                ep.append(painted(j))
            rec.flush()
    info = ep.handles[0].result()
    (encoder,) = fake.made
    # Asked at batch starts: the fastest at once (74% full), then one slower per short queue.
    assert [preset for _, preset in encoder.retunes] == ["ultrafast", "superfast", "veryfast"]
    # The rush at once (frame 1); then, at the current encoder's keyframes (every 8 frames from
    # frame 1, 2 s at 4 fps), superfast at frame 57 and veryfast at 65.
    changes = ((1, "ultrafast"), (57, "superfast"), (65, "veryfast"))
    assert (info.preset, info.preset_changes) == ("veryfast", changes)
    # One stream: every frame decodes, in order, across the changes.
    assert [read_index(f) for f in decode(info.path).frames] == list(range(76))
    # Each preset's encoder left its options in the stream where it began (x264's SEI).
    assert x264_subme(info.path) == [SUBME[p] for p in ("veryfast", "ultrafast", "superfast",
                                                        "veryfast")]  # fmt: skip
    side = json.loads(info.path.with_suffix(".json").read_text())
    assert side["preset_changes"] == [list(c) for c in changes]


def test_a_video_that_opens_in_a_rush_is_plain_ultrafast_all_along(tmp_path: Path) -> None:
    fake = gated()
    rec = Recorder(
        tmp_path, fps=4, episode_trigger=always, max_queue_bytes=40 * FRAME, on_full="block",
        encoder_factory=fake,
    )  # fmt: skip
    with rec:
        rec.submit([flat(0)], episode_index=0)
        assert fake.started.wait(10)
        (rushed,) = rec.submit([flat(1)] * 12, episode_index=1)
        rec.submit([flat(2)] * 20, episode_index=2)  # 20 of 40 behind 1: >= RUSH at its open
        fake.gate.set()
    first, second, third = fake.made
    assert (first.spec.codec.preset, second.spec.codec.preset) == ("veryfast", "ultrafast")
    # The fastest rung's conversion too: point chroma, the faster one.
    assert (first.spec.codec.interpolation, second.spec.codec.interpolation) == ("area", "point")
    # Without the options the rungs share (plain x264 ultrafast), so it cannot change: it
    # stays, however short the queue gets as it drains.
    assert second.spec.codec.options == {}
    assert second.retunes == []
    assert (rushed.result().preset, rushed.result().preset_changes) == ("ultrafast", ())
    assert third.spec.codec.preset == "superfast"  # nothing behind it: one slower


def test_a_video_given_whole_is_not_a_backlog_of_its_own(tmp_path: Path) -> None:
    # save_video's way: a whole episode at once, most of the budget. Its frames are work in
    # hand; with nothing else queued it opens at the size-efficient preset and keeps it.
    fake = FakeEncoders(real=True)
    rec = Recorder(
        tmp_path, fps=4, episode_trigger=always, max_queue_bytes=40 * painted(0).nbytes,
        on_full="block", encoder_factory=fake,
    )  # fmt: skip
    with rec:
        (handle,) = rec.submit([painted(k) for k in range(36)])
    assert (handle.result().preset, handle.result().preset_changes) == ("veryfast", ())
    (encoder,) = fake.made
    assert encoder.retunes == []


def test_a_video_given_whole_that_outgrows_the_budget_is_still_work_in_hand(
    tmp_path: Path,
) -> None:
    # 30 frames through a budget of 10: submit() waits for the encoder, which opens while the
    # clip is still being given (open, the budget full of its frames). They are not a backlog.
    fake = FakeEncoders()
    rec = Recorder(
        tmp_path, episode_trigger=always, max_queue_bytes=10 * FRAME, on_full="block",
        encoder_factory=fake,
    )  # fmt: skip
    with rec:
        (handle,) = rec.submit([flat(k % 200) for k in range(30)])
    (encoder,) = fake.made
    assert encoder.spec.codec.preset == "veryfast"
    assert handle.result().frames == 30


#: x264's subpel refinement, by preset: what tells the rungs apart in a stream's x264 SEI.
SUBME = {"veryfast": 2, "superfast": 1, "ultrafast": 0}


def x264_subme(path: Path) -> list[int]:
    """The subme= of each x264 options SEI in *path*'s packets, in order."""
    with av.open(str(path)) as container:
        data = b"".join(bytes(p) for p in container.demux(video=0) if p.size)
    return [int(m) for m in re.findall(rb"x264 - core .*? subme=(\d+)", data)]


@pytest.mark.parametrize("how", ["preset", "codec"])
def test_a_preset_given_never_moves(tmp_path: Path, how: str) -> None:
    fake = gated()
    pinned: dict[str, Any] = (
        {"preset": "superfast"} if how == "preset" else {"codec": Codec(preset="superfast")}
    )
    rec = Recorder(
        tmp_path, fps=4, episode_trigger=always, max_queue_bytes=20 * FRAME, on_full="block",
        encoder_factory=fake, **pinned,
    )  # fmt: skip
    with rec:
        rec.submit([flat(0)], episode_index=0)
        assert fake.started.wait(10)
        for e in (1, 2, 3):
            rec.submit([flat(e)] * 5, episode_index=e)
        fake.gate.set()
        rec.flush()
        handles = [h for e in (4, 5) for h in rec.submit([flat(e)] * 20, episode_index=e)]
    assert {e.spec.codec.preset for e in fake.made} == {"superfast"}
    assert all(e.retunes == [] for e in fake.made)
    assert {h.result().preset for h in handles} == {"superfast"}
    assert {h.result().preset_changes for h in handles} == {()}


@pytest.mark.parametrize("encode_in", ["process", "thread"])
def test_the_encoder_changes_within_a_video(tmp_path: Path, encode_in: str) -> None:
    # The backlog the rule reads, scripted: low at the open, then high, then low again.
    fills = itertools.chain([0.0] * 3, [0.9] * 3, itertools.repeat(0.0))
    with Recorder(
        tmp_path, fps=4, episode_trigger=always, encode_in=encode_in,  # type: ignore[arg-type]
        on_full="block",
    ) as rec:  # fmt: skip
        quality_of(rec)._fill = lambda: next(fills)  # type: ignore[attr-defined]
        (handle,) = rec.submit([painted(k) for k in range(64)])
    info = handle.result()
    assert info.preset == "veryfast"
    assert info.preset_changes
    assert [read_index(f) for f in decode(info.path).frames] == list(range(64))
    assert x264_subme(info.path) == [SUBME["veryfast"]] + [SUBME[p] for _, p in info.preset_changes]


def test_the_fastest_rung_converts_with_point_chroma_from_its_switch_on(tmp_path: Path) -> None:
    # Lossless, so the decoded planes are the conversion's: before the switch "area" chroma
    # (each 2x2 block's mean), after it "point" (one pixel's), as videos at either all along.
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 48, 3), np.uint8) for _ in range(6)]
    slow = Codec("h264", crf=0, preset="veryfast", options=dict(LADDERS["h264"].options))
    fast = dataclasses.replace(slow, preset="ultrafast", interpolation=FASTEST_INTERPOLATION)
    assert (slow.interpolation, fast.interpolation) == ("area", "point")

    def chroma(codec: Codec, name: str, switch_at: int | None = None) -> list[np.ndarray]:
        spec = VideoSpec(str(tmp_path / f"{name}.mp4"), 4, codec, format_of(frames[0]))
        encoder = PyAVEncoder(spec)
        for i, frame in enumerate(frames):
            if i == switch_at:
                encoder.retune(fast, at_once=True)
            encoder.write(frame)
        encoder.close()
        with av.open(spec.path) as container:
            return [f.to_ndarray(format="yuv420p")[32:] for f in container.decode(video=0)]

    area, point = chroma(slow, "area"), chroma(fast, "point")
    switched = chroma(slow, "switched", switch_at=3)
    assert not any((a == p).all() for a, p in zip(area, point, strict=True))
    assert all((s == a).all() for s, a in zip(switched[:3], area[:3], strict=True))
    assert all((s == p).all() for s, p in zip(switched[3:], point[3:], strict=True))


def test_av1_decodes_back_and_adapts_per_video(tmp_path: Path) -> None:
    with Recorder(tmp_path, fps=10, episode_trigger=always, codec="av1") as rec:
        (handle,) = rec.submit([painted(k) for k in range(20)])
    info = handle.result()
    assert info.path.name == "rl-video-episode-0.mp4"
    assert (info.codec, info.preset, info.preset_changes) == ("av1", "8", ())
    with av.open(str(info.path)) as container:
        assert container.streams.video[0].codec_context.codec.name in ("libdav1d", "av1")
    assert [read_index(f) for f in decode(info.path).frames] == list(range(20))
    side = json.loads(info.path.with_suffix(".json").read_text())
    assert (side["encoder"], side["crf"], side["preset"]) == ("libsvtav1", 30, "8")


@pytest.mark.parametrize("encode_in", ["process", "thread"])
def test_svt_av1_prints_nothing_on_the_terminal(tmp_path: Path, encode_in: str) -> None:
    # A fresh process: SVT-AV1 reads SVT_LOG once, at a process's first AV1 encoder.
    code = (
        "import pathlib, sys, numpy as np, recorder\n"
        "rng = np.random.default_rng(0)\n"  # a picture (flat frames would be called blank)
        "frames = [rng.integers(0, 256, (32, 48, 3), np.uint8) for k in range(5)]\n"
        f"with recorder.Recorder(sys.argv[1], episode_trigger=lambda e: True, codec='av1', "
        f"encode_in={encode_in!r}) as rec:\n"
        "    for e in range(2):\n"
        "        rec.submit(frames, episode_index=e)\n"
        "print(len(list(pathlib.Path(sys.argv[1]).glob('*.mp4'))))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SVT_LOG"}
    root = str(Path(recorder.__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
    assert done.stderr == ""
