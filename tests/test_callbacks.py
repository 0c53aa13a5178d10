"""User callbacks (done-callbacks, on_saved, overlay, a sink, gc_trigger) that raise, wait or
re-enter the recorder: an error reaches flush()/close(), nothing hangs, the recorder goes on."""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from fakes import FakeEncoders, budget, gated
from helpers import always, flat

from recorder import QueueFullError, Recorder, VideoInfo
from recorder._testing import worker_module
from recorder.wrappers import RecordVideo

ERRORS = {
    "SystemExit": SystemExit(3),
    "KeyboardInterrupt": KeyboardInterrupt(),
    "ValueError": ValueError("the callback's"),
}


def no_recorder_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("recorder-")]


@pytest.mark.parametrize("error", ERRORS.values(), ids=ERRORS)
def test_an_error_a_done_callback_raises_on_a_worker_reaches_flush_and_the_recorder_goes_on(
    tmp_path: Path, error: BaseException
) -> None:
    # A Future logs what its callbacks raise (an Exception) or lets it through: a SystemExit
    # killed the worker thread, and flush() and close() said nothing.
    ran_on: list[str] = []

    def callback(_handle: object) -> None:
        ran_on.append(threading.current_thread().name)
        raise error

    fake = gated()
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake)
    (handle,) = rec.submit([flat(1)])
    handle.add_done_callback(callback)  # before the worker can finish: run on its thread
    fake.gate.set()
    with pytest.raises(type(error)) as raised:
        rec.flush()
    assert raised.value is error
    assert ran_on == ["recorder-worker-0"]
    assert handle.result().frames == 1
    (again,) = rec.submit([flat(2)], episode_index=1)
    assert again.result(timeout=30).frames == 1
    rec.close()
    assert no_recorder_threads()


def test_a_done_callback_interrupted_in_the_callers_thread_lets_the_interrupt_go_on(
    tmp_path: Path,
) -> None:
    # Added to a handle already done, it runs in the caller's thread: a Ctrl-C there is the
    # caller's, not a background error.
    with Recorder(tmp_path, episode_trigger=always, encoder_factory=FakeEncoders()) as rec:
        (handle,) = rec.submit([flat(1)])
        handle.result(timeout=30)
        with pytest.raises(KeyboardInterrupt):
            handle.add_done_callback(lambda _h: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(TypeError, match="callable"):
            handle.add_done_callback(5)  # type: ignore[arg-type]
        rec.flush()  # nothing to report


@pytest.mark.parametrize("whose", ["its own", "another's"])
def test_waiting_for_a_handle_on_the_recorders_own_thread_raises_at_once(
    tmp_path: Path, whose: str
) -> None:
    # on_saved (a worker's) waiting for a clip only that worker can finish waited for ever.
    handles: list[Any] = []
    errors: list[BaseException] = []

    def on_saved(info: VideoInfo) -> None:
        target = handles[0] if whose == "its own" else handles[1]
        if info.name == handles[0].name:
            try:
                target.result()
            except RuntimeError as e:
                errors.append(e)
                raise

    fake = gated()
    rec = Recorder(tmp_path, episode_trigger=always, encoder_factory=fake, on_saved=on_saved)
    handles += rec.submit([flat(1)], episode_index=0)
    handles += rec.submit([flat(2)], episode_index=1)
    fake.gate.set()
    with pytest.raises(RuntimeError, match="recorder's own thread"):
        rec.close()
    assert "it would wait for itself" in str(errors[0])
    assert [h.result().frames for h in handles] == [1, 1]
    assert no_recorder_threads()


def test_a_blocking_submit_from_on_saved_raises_instead_of_waiting_for_itself(
    tmp_path: Path,
) -> None:
    # on_full="block" (the wrappers' default) waited for room only the worker in on_saved
    # could free: the recorder hung, and the training loop's next call with it.
    raised: list[BaseException] = []

    def on_saved(info: VideoInfo) -> None:
        if info.episode_index == 0:
            try:
                rec.submit([flat(i) for i in range(4)], episode_index=1)  # 2 fit, then full
            except QueueFullError as e:
                raised.append(e)
                raise

    fake = FakeEncoders()
    rec = Recorder(tmp_path, **budget(2, fake, "block"), on_saved=on_saved)
    (first,) = rec.submit([flat(0)])
    with pytest.raises(QueueFullError, match="recorder's own thread"):
        rec.flush()
    rec.close()
    assert first.result().frames == 1
    assert "on_full='block' cannot wait" in str(raised[0])
    assert rec.stats().videos_dropped == 1
    assert no_recorder_threads()


def test_the_blocks_exception_goes_first_when_a_callback_had_called_sys_exit(
    tmp_path: Path,
) -> None:
    # close() raised the SystemExit on_saved had raised: the block's ValueError was lost.
    def on_saved(_info: VideoInfo) -> None:
        raise SystemExit(3)

    options: dict[str, Any] = {"encoder_factory": FakeEncoders(), "on_saved": on_saved}
    with (  # noqa: PT012 (the block and its close are what is tested)
        pytest.raises(ValueError, match="the block's") as raised,
        Recorder(tmp_path, episode_trigger=always, **options) as rec,
    ):
        rec.submit([flat(1)])[0].result(timeout=30)
        raise ValueError("the block's")
    assert any("SystemExit(3)" in note for note in raised.value.__notes__)
    assert no_recorder_threads()


def test_an_overlay_calling_sys_exit_leaves_its_frame_without_text_and_saves_the_video(
    tmp_path: Path,
) -> None:
    pytest.importorskip("PIL")

    def overlay(info: Any) -> str:
        if info["i"] == 1:
            raise SystemExit(3)
        return f"frame {info['i']}"

    rec = Recorder(tmp_path, episode_trigger=always, overlay=overlay, encode_in="thread")
    (handle,) = rec.submit([flat(i, 64, 64) for i in range(3)], infos=[{"i": i} for i in range(3)])
    with pytest.raises(SystemExit):
        rec.close()
    assert handle.result().frames == 3
    assert handle.result().path.exists()


class _Session:
    """A sink session whose send() answers with what the test gives."""

    producer = "test"
    timeout = 30.0

    def __init__(self, folder: Path, answer: str) -> None:
        self.folder = folder
        self.answer = answer

    def send(self, name: str, data: bytes, record: dict[str, Any]) -> Any:
        if self.answer == "none":
            return None
        path = self.folder / name
        path.write_bytes(data)
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        future.set_result(str(path))
        return future


class _Sink:
    def __init__(self, folder: Path, answer: str) -> None:
        self.folder, self.answer = folder, answer

    def open(self) -> _Session:
        return _Session(self.folder, self.answer)


def test_a_sink_whose_send_returns_no_future_fails_the_video_clearly(tmp_path: Path) -> None:
    # The clip was failed twice (the second an internal "failed -> failed is not a move"),
    # and the delivery thread was left running.
    rec = Recorder(tmp_path / "spool", episode_trigger=always, sink=_Sink(tmp_path, "none"))  # type: ignore[arg-type]
    (handle,) = rec.submit([flat(1)])
    with pytest.raises(TypeError, match=r"must return a concurrent\.futures\.Future"):
        rec.close()
    with pytest.raises(TypeError, match="got NoneType"):
        handle.result()
    assert no_recorder_threads()


def test_a_done_callback_calling_sys_exit_on_the_delivery_thread_does_not_stop_it(
    tmp_path: Path,
) -> None:
    # The delivery thread died: later deliveries never resolved and close() waited for ever.
    rec = Recorder(tmp_path / "spool", episode_trigger=always, sink=_Sink(tmp_path, "path"))  # type: ignore[arg-type]
    gate = threading.Event()
    (first,) = rec.submit([flat(1)])
    first.add_done_callback(lambda _h: (gate.wait(30), exec("raise SystemExit(4)")))
    (second,) = rec.submit([flat(2)], episode_index=1)
    gate.set()
    with pytest.raises(SystemExit):
        rec.close(timeout=60)
    assert first.result().frames == second.result().frames == 1
    assert no_recorder_threads()


class _Frames(gym.Env[int, int]):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012
    render_mode = "rgb_array"
    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(1)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        return 0, 0.0, False, False, {}

    def render(self) -> np.ndarray:
        return np.zeros((16, 16, 3), np.uint8)


def test_a_gc_trigger_raising_at_close_still_closes_the_wrappers_recorder(
    tmp_path: Path,
) -> None:
    def gc_trigger(_episode: int) -> bool:
        raise ValueError("the trigger's")

    env = RecordVideo(
        _Frames(), str(tmp_path / "videos"), episode_trigger=always, gc_trigger=gc_trigger
    )
    env.reset()
    env.step(0)
    with pytest.raises(ValueError, match="the trigger's"):
        env.close()
    assert env.recorder.closed
    assert no_recorder_threads()


def test_callables_are_checked_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="gc_trigger must be callable"):
        RecordVideo(_Frames(), str(tmp_path / "videos"), gc_trigger=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="encoder_factory must be callable"):
        Recorder(tmp_path, encoder_factory=5)  # type: ignore[arg-type]
    assert no_recorder_threads()


def test_a_close_timing_out_on_a_slow_on_saved_gives_the_grace_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With encoder processes the workers were joined for a second grace after the idle
    # processes were given back: close(timeout=...) returned a second later than it says.
    joins: list[float | None] = []
    join = worker_module._join

    def counted(threads: list[threading.Thread], deadline: float | None) -> None:
        joins.append(deadline)
        join(threads, deadline)

    monkeypatch.setattr(worker_module, "_join", counted)
    monkeypatch.setattr(worker_module, "GRACE_SECONDS", 0.2)
    entered, leave = threading.Event(), threading.Event()

    def on_saved(_info: VideoInfo) -> None:
        entered.set()
        leave.wait(30)

    rec = Recorder(tmp_path, episode_trigger=always, on_saved=on_saved, encode_in="process")
    rec.submit([flat(1)])
    assert entered.wait(30)
    with pytest.raises(TimeoutError):
        rec.close(timeout=0.1)
    assert len(joins) == 1  # the worker is in on_saved: no process was killed for it
    leave.set()
    threads = [t for t in threading.enumerate() if t.name.startswith("recorder-")]
    for thread in threads:
        thread.join(30)
    assert no_recorder_threads()
