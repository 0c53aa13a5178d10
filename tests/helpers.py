"""Test helpers: frames that carry their index, decode-back, a controllable fake encoder."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from recorder import VideoSpec

BITS = 12
CELL = 8


def painted(index: int, height: int = 48, width: int = 112, channels: int = 3) -> np.ndarray:
    """A frame whose top row of 8x8 cells spells *index* in binary (robust to compression)."""
    img = np.full((height, width), 40, np.uint8)
    for bit in range(BITS):
        if index >> bit & 1:
            img[:CELL, bit * CELL : (bit + 1) * CELL] = 230
    if channels == 1:
        return img
    rgb = np.stack([img, img, img], axis=-1)
    return rgb if channels == 3 else np.concatenate([rgb, np.full_like(img, 255)[..., None]], -1)


def read_index(frame: np.ndarray) -> int:
    """The index painted by :func:`painted`, read from a decoded frame."""
    gray = frame if frame.ndim == 2 else frame[..., :3].mean(axis=-1)
    return sum(
        1 << bit
        for bit in range(BITS)
        if gray[2 : CELL - 2, bit * CELL + 2 : (bit + 1) * CELL - 2].mean() > 135
    )


@dataclass
class Decoded:
    frames: list[np.ndarray]
    width: int
    height: int
    fps: float
    duration: float

    @property
    def indices(self) -> list[int]:
        return [read_index(f) for f in self.frames]


def decode(path: Path | str) -> Decoded:
    """Decode a whole video with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        fps = float(stream.average_rate)
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        return Decoded(
            frames, stream.codec_context.width, stream.codec_context.height, fps, duration
        )


def frame_counts(folder: Path, ext: str = ".mp4") -> dict[str, int]:
    """{file name: decoded frame count} of the videos in *folder*."""
    return {p.name: len(decode(p).frames) for p in sorted(folder.iterdir()) if p.suffix == ext}


@dataclass
class FakeEncoder:
    """Records what it was given; can block on an Event or fail at a given frame."""

    spec: VideoSpec
    owner: FakeEncoders
    frames: list[int] = field(default_factory=list)
    closed: bool = False
    aborted: bool = False

    def write(self, image: np.ndarray) -> None:
        self.owner.started.set()
        if not self.owner.gate.wait(timeout=5):
            raise TimeoutError("test gate never opened")
        if self.owner.fail_at is not None and len(self.frames) == self.owner.fail_at:
            raise self.owner.error
        self.frames.append(int(image[0, 0, 0]) if image.ndim == 3 else int(image[0, 0]))

    def close(self) -> None:
        Path(self.spec.path).write_bytes(b"fake video")
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


@dataclass
class FakeEncoders:
    """An encoder factory for Recorder(encoder_factory=...) with a gate the test controls."""

    gate: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    fail_at: int | None = None
    error: BaseException = field(default_factory=lambda: OSError(28, "No space left on device"))
    made: list[FakeEncoder] = field(default_factory=list)
    fail_when: Callable[[VideoSpec], bool] = lambda spec: True

    def __post_init__(self) -> None:
        self.gate.set()

    def __call__(self, spec: VideoSpec) -> Any:
        enc = FakeEncoder(spec, self)
        if not self.fail_when(spec):
            enc.owner = FakeEncoders(gate=self.gate, started=self.started)
        self.made.append(enc)
        return enc

    def by_name(self, name: str) -> FakeEncoder:
        return next(e for e in self.made if Path(e.spec.path).name.startswith(f".{name}."))
