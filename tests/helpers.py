"""What the tests share: triggers, frames that carry their index, decode-back, gymnasium's
files as the oracle, a fake env, running a function in a forked child (the fake encoders are in
``fakes``)."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import gymnasium as gym
import numpy as np

from recorder._testing import (
    patch_close_abandoned,
    process_module,
    queue_module,
    serve,
)

BITS = 12
CELL = 8
FRAME = 8 * 8 * 3  # bytes of a flat() frame of the default size


def always(_: int) -> bool:
    """A trigger that fires for every episode (or step)."""
    return True


def flat(value: int, height: int = 8, width: int = 8) -> np.ndarray:
    """A frame of one colour: :class:`FakeEncoder` notes *value* for it."""
    return np.full((height, width, 3), value, np.uint8)


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


def frame_sizes(folder: Path, ext: str = ".mp4") -> dict[str, tuple[int, int, int]]:
    """{file name: (decoded frames, width, height)} of the videos in *folder*."""
    sizes = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix == ext):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            sizes[path.name] = (frames, stream.width, stream.height)
    return sizes


def frame_counts(folder: Path, ext: str = ".mp4") -> dict[str, int]:
    """{file name: decoded frame count} of the videos in *folder*."""
    return {name: size[0] for name, size in frame_sizes(folder, ext).items()}


def frame_rates(root: Path) -> dict[str, float]:
    """{path relative to *root*: decoded frame rate} of the mp4 videos under *root*."""
    return {str(p.relative_to(root)): decode(p).fps for p in sorted(root.rglob("*.mp4"))}


def hidden_names(folder: Path) -> list[str]:
    """The hidden files in *folder* (temporaries: final names never start with a dot)."""
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def assert_saved_whole(folder: Path, frames: dict[str, int]) -> None:
    """The videos *frames* ({name: frame count}) decode whole, as their sidecars say, and only
    they are in *folder* and its manifest."""
    for name, count in frames.items():
        assert decode(folder / f"{name}.mp4").indices == list(range(count)), name
        assert json.loads((folder / f"{name}.json").read_text())["frames"] == count
    assert sorted(p.stem for p in folder.glob("*.mp4")) == sorted(frames)
    lines = (folder / "manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["name"] for line in lines) == sorted(frames)


def moviepy_frames(frames: int, fps: float) -> int:
    """Frames moviepy 2 writes for an ImageSequenceClip of *frames* images at *fps*.

    moviepy iterates ``range(int(clip.duration * fps))`` with ``duration = sum([1 / fps] *
    frames)``: float rounding truncates to ``frames - 1`` for many lengths (at 15 or 30 fps:
    6, 7, 12-15, 24-31, ...), so gymnasium's videos lose their last frame. recorder keeps it.
    """
    return int(sum([1.0 / fps] * frames) * fps)


def gymnasium_clips(
    monkeypatch: Any, frames: list[Any], folder: Path, fps: float, **kwargs: Any
) -> dict[str, list[int]]:
    """{file name: frame indices} gymnasium's save_video asks moviepy to write (not written).

    *frames* must be distinct objects: gymnasium only slices the list, so they are told apart
    by identity.
    """
    import gymnasium.utils.save_video as gym_save_video

    index_of = {id(f): i for i, f in enumerate(frames)}
    clips: dict[str, list[int]] = {}

    class Clip:
        def __init__(self, sequence: list[Any], **clip_kwargs: Any) -> None:
            assert clip_kwargs == {"fps": fps}
            self.indices = [index_of[id(f)] for f in sequence]

        def write_videofile(self, path: str, **write_kwargs: Any) -> None:
            assert Path(path).parent == Path(folder)
            clips[Path(path).name] = self.indices

    with monkeypatch.context() as m:
        m.setattr(gym_save_video, "ImageSequenceClip", Clip)
        gym_save_video.save_video(frames, str(folder), fps=fps, **kwargs)
    return clips


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


def examples(count: int) -> Any:
    """Hypothesis settings for *count* examples, each of which makes its own folder under
    tmp_path (so the function-scoped fixture is fine)."""
    from hypothesis import HealthCheck, settings  # here: child scripts import this module

    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@contextmanager
def unraisable() -> Iterator[list[Any]]:
    """Collect what the interpreter could not raise (errors in ``__del__``) inside the block."""
    seen: list[Any] = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        yield seen
    finally:
        sys.unraisablehook = old_hook


def unavailable(reason: str, required_by: str) -> None:
    """Skip the test for *reason*; fail it when the environment variable *required_by* is set
    (``.ci/run`` sets them: in CI what is missing is a failure, not a skip)."""
    import pytest  # here: child scripts import this module

    if os.environ.get(required_by):
        pytest.fail(f"{required_by} is set but {reason}")
    pytest.skip(reason)


def run_forked(child: Callable[[], object], meanwhile: Callable[[], object] = lambda: None) -> None:
    """Run *child* in a forked process (*meanwhile* in this one); assert that it did not raise.

    The child reports through its exit code only (no pytest there); an alarm ends it if it
    hangs, so that waiting for it cannot block the test.
    """
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(60)
            child()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    meanwhile()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def wait_exit(pid: int, timeout: float = 30.0) -> bool:
    """Wait until process *pid* (not necessarily our child) has exited; whether it did."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is *pid* (from /proc: Linux), e.g. a Recorder's encoder
    processes when *pid* runs one."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # exited meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # after the name: state, ppid
                children.append(int(entry))
    return children


class TinyEnv(gym.Env[int, int]):
    """Episodes of *length* steps; renders 16x24 frames of value 10 * step, counting renders.

    No render_fps in its metadata (the wrappers' default fps applies).
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012 - gymnasium's convention
    action_space = gym.spaces.Discrete(2)
    observation_space = gym.spaces.Discrete(100)
    length = 5

    def __init__(self, render_mode: str | None = "rgb_array") -> None:
        self.render_mode = render_mode
        self.t = 0
        self.renders = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self.t, 0.0, self.t >= self.length, False, {}

    def render(self) -> Any:
        self.renders += 1
        return np.full((16, 24, 3), 10 * self.t, dtype=np.uint8)


class AnsiOnly(TinyEnv):
    """Renders text only: no recorder or RecordVideo can take it."""

    metadata = {"render_modes": ["ansi"]}  # noqa: RUF012

    def __init__(self, render_mode: str | None = "ansi") -> None:
        super().__init__(render_mode)

    def render(self) -> str:
        return "x"


@contextmanager
def serving(folder: Path, **kwargs: Any) -> Iterator[str]:
    """*folder*'s live gallery served on a free port of 127.0.0.1: its base URL."""
    server = serve(folder, port=0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, name="test-http-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def play_episodes(env: gym.Env[Any, Any], seeds: Iterable[int]) -> list[float]:
    """Random-policy episodes of *env*, one per seed, to their end: their returns."""
    returns = []
    for seed in seeds:
        env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = bool(terminated or truncated)
        returns.append(total)
    return returns


@dataclass
class AbandonedCloses:
    """Spies the closing of Recorders whose wrapper was dropped unclosed (see :func:`abandoned`)."""

    started: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def wait(self, timeout: float = 10) -> bool:
        """Whether a close began within *timeout* seconds; then waits until it ended."""
        if not self.started.wait(timeout):
            return False
        for thread in self.threads:
            thread.join(timeout)
        return True


def abandoned(monkeypatch: Any) -> AbandonedCloses:
    """Idle workers check at once (``IDLE_SECONDS`` short) and every close of an abandoned
    Recorder is spied on (its thread kept, to join)."""
    monkeypatch.setattr(queue_module, "IDLE_SECONDS", 0.01)
    spy = AbandonedCloses()

    def close(rec: Any) -> None:
        original(rec)
        spy.threads += [t for t in threading.enumerate() if t.name == "recorder-close-abandoned"]
        spy.started.set()

    original = patch_close_abandoned(monkeypatch, close)
    return spy


def require_processes() -> None:
    """Skip the calling test where no encoder process can run (not Linux); fail it instead
    under RECORDER_REQUIRE_PROCESSES=1 (CI), where a Recorder would encode in threads."""
    import pytest  # here: child scripts import this module

    if process_module.available():
        return
    reason = "encoder processes need Linux (memfd and descriptor passing)"
    if os.environ.get("RECORDER_REQUIRE_PROCESSES"):
        pytest.fail(f"RECORDER_REQUIRE_PROCESSES is set but {reason}")
    pytest.skip(reason)
