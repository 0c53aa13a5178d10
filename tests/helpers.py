"""What the tests share: triggers, frames that carry their index, decode-back, gymnasium's
files as the oracle, a fake env, child processes (the fake encoders are in ``fakes``)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
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
    frames)``: on Python 3.11 float rounding truncates to ``frames - 1`` for many lengths (at
    15 or 30 fps: 6, 7, 12-15, 24-31, ...), so gymnasium's videos lose their last frame
    (3.12's sum() is compensated: far fewer). recorder keeps it.
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


#: This checkout and the tests' own modules (helpers, fakes): on a child interpreter's path.
CHILD_PATH = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]


class Child:
    """A child process the test talks to in lines: its stdout comes back line by line
    (:meth:`expect`), :meth:`say` writes to its stdin.

    *target* is Python source (run with ``python -c``, *args* in ``sys.argv[1:]``), the
    interpreter's own arguments (``["-m", "recorder", ...]``, a script and its arguments), or a
    function, run with *args* in a fork of this process (a closure will do): it reports through
    its exit code only (its traceback, if it raised, goes to this process's stderr) and is
    killed after a minute. A new interpreter imports this checkout and the tests' modules.
    """

    def __init__(
        self,
        target: str | list[str] | Callable[..., object],
        *args: object,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.seen: list[str] = []  # the lines read so far
        self._lines: queue.Queue[str] = queue.Queue()
        self._claimed: set[int] = set()
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers: list[threading.Thread] = []
        self.proc: subprocess.Popen[str] | None = None
        self.returncode: int | None = None
        if callable(target):
            self.args: list[str] = [getattr(target, "__qualname__", repr(target))]
            self.pid = _fork(target, args)
            return
        code = ["-c", textwrap.dedent(target)] if isinstance(target, str) else target
        self.args = [sys.executable, *code, *map(str, args)]
        path = os.pathsep.join([*CHILD_PATH, os.environ.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": path, **(env or {})},
        )
        self.pid = self.proc.pid
        for pipe, sink in ((self.proc.stdout, self._out), (self.proc.stderr, self._err)):
            reader = threading.Thread(target=self._read, args=(pipe, sink), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _read(self, pipe: Any, sink: list[str]) -> None:
        for line in pipe:
            sink.append(line)
            if sink is self._out:
                self._lines.put(line.rstrip("\n"))

    def say(self, line: str) -> None:
        """Write *line* to the child's stdin."""
        assert self.proc is not None, "a forked child reads nothing from the test"
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str = "", timeout: float = 60) -> str:
        """The first line starting with *prefix* not returned before, waiting for it if need
        be (lines from different threads of the child may come in any order)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.seen):
                if i not in self._claimed and line.startswith(prefix):
                    self._claimed.add(i)
                    return line
            # A child that died says nothing more: give up at once, not at the deadline.
            exited = self.proc is None or self.proc.poll() is not None
            try:
                line = self._lines.get(timeout=0.1 if exited else 1.0)
            except queue.Empty:
                if not exited and time.monotonic() < deadline:
                    continue
                raise AssertionError(
                    f"no line {prefix!r} from the child; saw {self.seen}; stderr: {self.stderr}"
                ) from None
            self.seen.append(line)

    def send_signal(self, sig: int) -> None:
        """Send *sig* to the child, unless it has exited."""
        if self.proc is not None:
            self.proc.send_signal(sig)
        elif self.returncode is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 60) -> int:
        """Close the child's stdin (the test has nothing more to say) and wait until it exits:
        its exit code (-N: killed by signal N). Every line it printed is then in ``seen``."""
        if self.returncode is not None:
            return self.returncode
        if self.proc is None:
            if not wait_exit(self.pid, timeout):
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            return self.returncode
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        self.returncode = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        while not self._lines.empty():
            self.seen.append(self._lines.get())
        return self.returncode

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.returncode is None:
            self.send_signal(signal.SIGKILL)
            self.wait()
        if self.proc is not None:
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()


def _fork(target: Callable[..., object], args: tuple[object, ...]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(60)  # a child that hangs cannot block the test waiting for it
            target(*args)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    return pid


def run_child(
    target: str | list[str] | Callable[..., object],
    *args: object,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a :class:`Child` (*target*, *args*) to its end, with nothing on its stdin: its exit
    code and output."""
    with Child(target, *args, env=env, cwd=cwd) as child:
        code = child.wait(timeout)
        return subprocess.CompletedProcess(child.args, code, child.stdout, child.stderr)


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
        env.action_space.seed(seed)  # the same episodes every run (a short one can fail a test)
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


def wait_for_writers(folder: Path) -> None:
    """Block until no process holds the lock of a leftover (an encoder process finishing)."""
    for name in os.listdir(folder):
        if name.endswith((".rec-tmp", ".rec-frag")):
            fd = os.open(folder / name, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks while the writer lives
            finally:
                os.close(fd)
