"""What crash-safe mp4 costs: the remux at close, and file size against the keyframe interval.

Run: ``.venv/bin/python scripts/measure_fragments.py`` (CartPole-v1 frames, 600x400, 30 fps,
10 s clips, the default codec settings). Prints a small table; writes only to a temporary
folder.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

import gymnasium as gym
import numpy as np

from recorder import Codec, VideoSpec
from recorder._testing import PyAVEncoder, encoder_module, format_of, remux

FPS, SECONDS, ROUNDS = 30, 10, 7


def cartpole_frames(n: int) -> list[np.ndarray[Any, Any]]:
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    frames = []
    while len(frames) < n:
        frames.append(np.ascontiguousarray(env.render()))
        _, _, done, cut, _ = env.step(env.action_space.sample())
        if done or cut:
            env.reset()
    env.close()
    return frames


def encode(folder: str, frames: list[np.ndarray[Any, Any]], name: str) -> tuple[str, int]:
    """Write one clip; returns (the fragment file kept aside, size of the final file)."""
    tmp = os.path.join(folder, f".{name}.abcd1234.rec-tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    spec = VideoSpec(tmp, FPS, Codec(), format_of(frames[0]), fd)
    enc = PyAVEncoder(spec)
    for frame in frames:
        enc.write(frame)
    enc.salvage()  # keeps the fragment file: the remux is timed on its own below
    os.close(fd)
    frag = encoder_module.fragment_path(tmp, ".mp4")
    return frag, os.path.getsize(frag)


def main() -> None:
    frames = cartpole_frames(FPS * SECONDS)
    print(f"CartPole-v1 {frames[0].shape[1]}x{frames[0].shape[0]}, {SECONDS} s at {FPS} fps")
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        frag, _ = encode(folder, frames, "clip")
        print(f"encoding the clip (fragmented): {(time.perf_counter() - start) * 1e3:.0f} ms")
        out = os.path.join(folder, "clip.mp4")
        times = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            remux(frag, out)
            times.append(time.perf_counter() - start)
        print(
            f"remux (packet copy, +faststart): median {statistics.median(times) * 1e3:.1f} ms, "
            f"min {min(times) * 1e3:.1f} ms per clip ({ROUNDS} rounds)"
        )
        print("keyframe interval | final mp4 | vs x264 default (250 frames)")
        sizes = {}
        for seconds in (None, 2.0, 1.0, 0.5):
            encoder_module.KEYFRAME_SECONDS = seconds if seconds is not None else 250 / FPS
            frag, _ = encode(folder, frames, f"k{seconds}")
            final = os.path.join(folder, f"k{seconds}.mp4")
            remux(frag, final)
            sizes[seconds] = os.path.getsize(final)
            label = "250 frames" if seconds is None else f"{seconds:g} s"
            ratio = sizes[seconds] / sizes[None]
            print(f"{label:>17} | {sizes[seconds] / 1000:7.1f} kB | {ratio:.3f}")


if __name__ == "__main__":
    main()
