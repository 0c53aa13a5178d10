"""Encoding in child processes (``encode_in="process"``, the default on Linux), real PyAV.

The recorder's logic is the same in both modes (the rest of the suite runs in this one); these
tests cover what the process adds: the same files as in-thread encoding, errors and tracebacks
brought back from the child, a child that dies or hangs, Ctrl-C, the parent's death, fork, and
the reuse of idle encoder processes. Handshakes are events and process exits (pidfd), never
sleeps.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from fakes import HeldWrites
from helpers import Child, always, decode, painted, require_processes, run_child, wait_exit

import recorder
from recorder import Recorder, VideoSpec
from recorder._testing import (
    GRACE_SECONDS,
    MAX_FAILED_STARTS,
    Arena,
    EncoderProcessError,
    EncoderProcesses,
    ProcessEncoder,
    child_module,
    encoder_pids,
    encoder_process_code,
    encoder_processes,
    error_reply,
    format_of,
    idle_encoder_max,
    idle_encoder_pids,
    process_module,
    process_of,
    recorder_module,
    recorder_of,
    stop_idle_encoders,
    threads_of,
)


@pytest.fixture(autouse=True)
def _needs_processes() -> None:
    require_processes()


@pytest.fixture
def fresh() -> Iterator[None]:
    """No idle encoder process of an earlier test is reused (its pid would be known)."""
    stop_idle_encoders()
    yield
    stop_idle_encoders()


def test_files_are_the_same_as_when_encoding_in_threads(tmp_path: Path) -> None:
    frames = [painted(i, height=49, width=113) for i in range(25)]  # odd: padded
    for mode in ("process", "thread"):
        with Recorder(tmp_path / mode, episode_trigger=always, encode_in=mode) as rec:
            assert rec.encode_in == mode
            (h,) = rec.submit(frames)
        assert h.result().frames == 25
    a = decode(tmp_path / "process" / "rl-video-episode-0.mp4")
    b = decode(tmp_path / "thread" / "rl-video-episode-0.mp4")
    assert a.indices == list(range(25))
    assert len(a.frames) == len(b.frames)
    for x, y in zip(a.frames, b.frames, strict=True):
        np.testing.assert_array_equal(x, y)  # x264 with one thread is deterministic


def test_encode_in_is_checked() -> None:
    with pytest.raises(ValueError, match="encode_in"):
        Recorder("unused", encode_in="fork")  # type: ignore[arg-type]


def test_an_encoder_error_in_the_child_reaches_flush_with_its_type_and_traceback(
    tmp_path: Path,
) -> None:
    import av

    # Options go to FFmpeg unchecked (a preset given as crf= or preset= is refused at once).
    bad = recorder.Codec("h264", options={"preset": "no-such-preset"})
    rec = Recorder(tmp_path, episode_trigger=always, codec=bad)
    try:
        (h,) = rec.submit([painted(i) for i in range(10)])
        with pytest.raises(av.error.ArgumentError) as raised:
            rec.flush()
        assert h.exception() is raised.value
        notes = "\n".join(raised.value.__notes__)
        assert "in the encoder process (pid" in notes
        assert Path(child_module.__file__).name in notes  # the child's own traceback
        # The process goes on serving: the next video gets the same error, from close().
        (again,) = rec.submit([painted(i) for i in range(3)], episode_index=1)
        with pytest.raises(av.error.ArgumentError) as second:
            rec.close()
        assert again.exception() is second.value
    finally:
        rec.close()
    assert not list(tmp_path.glob("*.mp4"))
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_when_no_encoder_process_can_start_videos_are_encoded_in_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fresh: None
) -> None:
    starts = []
    popen = subprocess.Popen

    def failing(args: Any, **kwargs: Any) -> Any:
        starts.append(args)
        # The interpreter starts but cannot import the package (as for a user who cannot
        # read it): it exits before saying "ready".
        return popen([sys.executable, "-c", "raise SystemExit(3)"], **kwargs)

    monkeypatch.setattr(subprocess, "Popen", failing)
    with Recorder(tmp_path, episode_trigger=always) as rec:
        handles = [rec.submit([painted(i) for i in range(3)], episode_index=e)[0] for e in range(5)]
        for handle in handles:  # one at a time: each video asks for a process
            handle.result()
    assert [h.result().frames for h in handles] == [3] * 5
    assert decode(tmp_path / "rl-video-episode-4.mp4").indices == [0, 1, 2]
    assert len(starts) == MAX_FAILED_STARTS  # tried again after a failure, not for ever
    processes = encoder_processes(rec)
    assert processes is not None
    assert isinstance(processes.fallback, EncoderProcessError)
    assert "exit code 3" in str(processes.fallback)
    warnings = [r for r in caplog.records if "could not start an encoder process" in r.message]
    assert len(warnings) == MAX_FAILED_STARTS
    assert warnings[-1].message.endswith("encoding in the worker threads from now on")


def test_an_encoder_process_that_fails_to_start_once_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    # Killed while starting (the OOM killer, say): that video is encoded in its worker
    # thread, the next one in a new encoder process.
    starts = []
    popen = subprocess.Popen

    def failing_once(args: Any, **kwargs: Any) -> Any:
        starts.append(args)
        if len(starts) == 1:
            return popen([sys.executable, "-c", "raise SystemExit(3)"], **kwargs)
        return popen(args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", failing_once)
    with Recorder(tmp_path, episode_trigger=always) as rec:
        first = rec.submit([painted(i) for i in range(3)], episode_index=0)[0]
        assert first.result().frames == 3
        second = rec.submit([painted(i) for i in range(3)], episode_index=1)[0]
        assert second.result().frames == 3
        processes = encoder_processes(rec)
        assert processes is not None
        assert processes.fallback is None
        assert len(processes.pids()) == 1
    assert len(starts) == 2


def test_a_huge_child_error_comes_back_shortened_within_one_message() -> None:
    kind, _, data = error_reply(1, ValueError("x" * 10 * process_module.MAX_MESSAGE))
    assert kind == "err"
    assert len(pickle.dumps((kind, 1, data))) < process_module.MAX_MESSAGE
    error = pickle.loads(data)
    assert type(error) is RuntimeError
    assert str(error).startswith("ValueError: xxx")


def test_an_unpicklable_child_error_comes_back_as_runtime_error() -> None:
    class Local(Exception):  # pickle cannot find a local class by name
        pass

    kind, vid, data = error_reply(7, Local("bad thing"))
    assert (kind, vid) == ("err", 7)
    error = pickle.loads(data)
    assert type(error) is RuntimeError
    assert "Local: bad thing" in str(error)
    assert "in the encoder process" in "\n".join(error.__notes__)


def test_a_child_killed_mid_video_fails_that_video_and_the_next_gets_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    gate = HeldWrites(monkeypatch, at=5)
    with Recorder(tmp_path, episode_trigger=always, on_full="block") as rec:
        (h,) = rec.submit([painted(i) for i in range(12)])
        assert gate.reached.wait(30)
        (pid,) = encoder_pids(rec)
        os.kill(pid, signal.SIGKILL)
        assert wait_exit(pid)
        gate.go.set()
        with pytest.raises(EncoderProcessError, match=f"pid {pid}.*exited with code -9"):
            rec.flush()
        assert h.exception() is not None
        (ok,) = rec.submit([painted(i) for i in range(4)], episode_index=1)
        assert ok.result(timeout=60).frames == 4
        assert encoder_pids(rec) != [pid]
    assert decode(tmp_path / "rl-video-episode-1.mp4").indices == [0, 1, 2, 3]
    assert not (tmp_path / "rl-video-episode-0.mp4").exists()
    assert not list(tmp_path.glob(".*"))


def test_no_worker_waits_for_a_dead_childs_exit_under_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    # Several workers share a child: the one that finds it dead must not hold the child's
    # lock while it waits for the exit code, or every other worker stalls behind it.
    pool = EncoderProcesses(1, 10, Arena(1 << 20))
    spec = VideoSpec(str(tmp_path / "v.mp4"), 30, recorder.Codec(), format_of(painted(0)))
    encoder = pool(spec)
    assert isinstance(encoder, ProcessEncoder)
    child = process_of(encoder)
    waiting, go = threading.Event(), threading.Event()
    real_wait = child.proc.wait

    def slow_wait(timeout: float | None = None) -> int:
        waiting.set()
        go.wait(30)
        return real_wait(timeout)

    monkeypatch.setattr(child.proc, "wait", slow_wait)
    os.kill(child.proc.pid, signal.SIGKILL)
    assert wait_exit(child.proc.pid)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(100):
                encoder.write(painted(i))  # outside the arena: sent at once
        except EncoderProcessError as e:
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert waiting.wait(30)  # the writer is waiting for the exit code ...
        assert child.lock.acquire(timeout=5)  # ... and the lock is free meanwhile
        child.lock.release()
    finally:
        go.set()
        writer.join()
    assert len(errors) == 1
    assert "exited with code -9" in str(errors[0])
    encoder.abort()
    pool.close()


def test_children_that_stop_answering_are_killed_by_close_with_a_timeout(
    tmp_path: Path, fresh: None
) -> None:
    rec = Recorder(tmp_path, episode_trigger=always, on_full="block", workers=2)
    pids: list[int] = []
    try:
        for e in range(2):  # two videos at once: one encoder process each
            rec.submit([painted(i) for i in range(40)], episode_index=e)
        rec.flush()
        pids = encoder_pids(rec)
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)  # hung: alive, never answering
        handles = [rec.submit([painted(i) for i in range(40)], episode_index=e)[0] for e in (2, 3)]
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            rec.close(timeout=1.0)
        # Each hung process costs no time of its own: the workers get one grace, together.
        assert time.monotonic() - start < 1.0 + GRACE_SECONDS + 1.0
        assert all(wait_exit(pid, 0) for pid in pids)  # close() has returned: killed
        assert all(not t.is_alive() for t in threads_of(rec))
        assert all(isinstance(h.exception(), Exception) for h in handles)
    finally:
        for pid in pids:
            if not wait_exit(pid, 0):
                os.kill(pid, signal.SIGKILL)
        rec.close()
    assert not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("how", ["close(cancel=True)", "aclose(cancel=True)", "aclose(timeout=1)"])
def test_closes_that_drop_kill_an_encoder_process_that_stopped_answering(
    tmp_path: Path, fresh: None, how: str
) -> None:
    # Once what is left is dropped there is nothing to wait for: a worker stuck on a hung
    # encoder process gets its grace, then the process is killed (close never hangs).
    rec = recorder.AsyncRecorder(tmp_path, episode_trigger=always) if "aclose" in how else None
    sync = Recorder(tmp_path, episode_trigger=always) if rec is None else recorder_of(rec)
    pid = None
    try:
        (first,) = sync.submit([painted(i) for i in range(3)])
        assert first.result(timeout=60).frames == 3
        (pid,) = encoder_pids(sync)
        os.kill(pid, signal.SIGSTOP)
        (handle,) = sync.submit([painted(i) for i in range(40)], episode_index=1)
        start = time.monotonic()
        if rec is None:
            sync.close(cancel=True)
        elif how == "aclose(cancel=True)":
            anyio.run(partial(rec.aclose, cancel=True))
        else:
            with pytest.raises(TimeoutError, match="aclose\\(\\) timed out after 1 s"):
                anyio.run(partial(rec.aclose, timeout=1))
        elapsed = time.monotonic() - start
        assert wait_exit(pid, 0)  # killed by the time close returned
        assert all(not t.is_alive() for t in threads_of(sync))
        assert isinstance(handle.exception(timeout=0), recorder.ClipDroppedError)
    finally:
        if pid is not None and not wait_exit(pid, 0):
            os.kill(pid, signal.SIGKILL)  # frees a close that hangs
        sync.close()
    assert elapsed < (1.0 if "timeout" in how else 0.0) + GRACE_SECONDS + 2.0
    assert not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("timeout", [None, 1.0])
def test_an_idle_child_that_stops_answering_is_killed_by_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None, timeout: float | None
) -> None:
    # Kept for the next Recorder, it is asked to unmap the arena first: it has a few seconds
    # to answer, or what is left of close()'s timeout and grace (it holds no video).
    if timeout is None:
        monkeypatch.setattr(process_module, "IDLE_ANSWER_SECONDS", 0.5)
    rec = Recorder(tmp_path, episode_trigger=always)
    (h,) = rec.submit([painted(i) for i in range(3)])
    assert h.result(timeout=60).frames == 3
    (pid,) = encoder_pids(rec)
    os.kill(pid, signal.SIGSTOP)
    closer = threading.Thread(target=rec.close, kwargs={"timeout": timeout})
    try:
        start = time.monotonic()
        closer.start()
        closer.join(30)
        elapsed = time.monotonic() - start
        assert not closer.is_alive(), "close() waits for an idle encoder process that hangs"
        assert wait_exit(pid, 0)
    finally:
        if not wait_exit(pid, 0):
            os.kill(pid, signal.SIGKILL)  # frees close() if it hangs
        closer.join()
    assert elapsed < (0.5 if timeout is None else timeout + GRACE_SECONDS) + 1.0
    assert pid not in idle_encoder_pids()  # not kept for the next one


def test_close_with_a_timeout_gives_up_on_an_encoder_process_that_never_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def silent(args: Any, **kwargs: Any) -> Any:
        # An interpreter that never says "ready" (a machine so loaded it takes minutes).
        started.append(popen([sys.executable, "-c", "import time; time.sleep(300)"], **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", silent)
    rec = Recorder(tmp_path, episode_trigger=always)
    try:
        (h,) = rec.submit([painted(i) for i in range(3)])
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            rec.close(timeout=1.0)
        elapsed = time.monotonic() - start
        (proc,) = started
        assert proc.poll() is not None  # killed, not left to start
    finally:
        for proc in started:
            proc.kill()
            proc.wait()
    assert elapsed < 1.0 + GRACE_SECONDS + 1.0
    assert isinstance(h.exception(), Exception)
    assert not list(tmp_path.glob(".*"))


def memfds(pid: int) -> list[str]:
    """The recorder's shared memory mapped by process *pid* (memfd names in its maps)."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return sorted({line.split()[-2] for line in maps if "/memfd:recorder-" in line})


def test_an_idle_child_kept_for_the_next_recorder_unmaps_the_closed_ones_memory(
    tmp_path: Path, fresh: None
) -> None:
    frame = painted(0)
    budget = 8 * frame.nbytes
    with Recorder(tmp_path, episode_trigger=always, max_queue_bytes=budget, on_full="block") as rec:
        rec.submit([painted(i) for i in range(20)])
        rec.flush()
        (pid,) = encoder_pids(rec)
        assert memfds(pid) == ["/memfd:recorder-arena"]
        # Frames larger than the whole budget: each in memory of its own.
        big = [painted(i, height=240, width=320) for i in range(3)]
        rec.submit(big, episode_index=1)
    # The process is kept for the next Recorder, but maps none of this one's memory (which
    # the system could then never free).
    assert pid in idle_encoder_pids()
    assert memfds(pid) == []
    assert decode(tmp_path / "rl-video-episode-1.mp4").indices == [0, 1, 2]


def test_the_child_ignores_ctrl_c_and_termination_signals_and_lowers_its_priority(
    tmp_path: Path, fresh: None
) -> None:
    # SIGINT, SIGTERM and SIGHUP reach the whole process group (a terminal, timeout, systemd,
    # Slurm, a Jupyter kernel's shutdown): the recorder decides what happens to its videos.
    with Recorder(tmp_path, episode_trigger=always, worker_nice=7) as rec:
        rec.submit([painted(i) for i in range(2)])
        rec.flush()
        (pid,) = encoder_pids(rec)
        status = Path(f"/proc/{pid}/status").read_text()
        ignored = int(
            next(ln for ln in status.splitlines() if ln.startswith("SigIgn:")).split()[1], 16
        )
        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        assert all(ignored & (1 << (sig - 1)) for sig in signals)
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert nice == min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + 7)
        with rec.episode(1) as ep:
            ep.append(painted(0))
            for sig in signals:
                os.kill(pid, sig)  # mid-video, as when sent to the process group
            for i in (1, 2):
                ep.append(painted(i))
        (h,) = ep.handles
        assert h.result(timeout=60).frames == 3
        assert encoder_pids(rec) == [pid]


def test_idle_encoder_processes_are_reused_and_bounded(tmp_path: Path, fresh: None) -> None:
    pids: list[int] = []
    for i in range(3):
        with Recorder(tmp_path / str(i), episode_trigger=always) as rec:
            rec.submit([painted(0)])
            rec.flush()
            (pid,) = encoder_pids(rec)
            pids.append(pid)
        assert encoder_pids(rec) == []
    assert pids[0] == pids[1] == pids[2]  # one process, passed from recorder to recorder
    # Three videos open at once with room for three processes: three processes.
    # Frames outside the arena (these) go in a memfd of their own.
    pool = EncoderProcesses(3, 10, Arena(1 << 20))
    fmt = format_of(painted(0))
    specs = [VideoSpec(str(tmp_path / f"v{i}.mp4"), 30, recorder.Codec(), fmt) for i in range(3)]
    encoders = [pool(spec) for spec in specs]
    assert len(set(pool.pids())) == 3
    for i, encoder in enumerate(encoders):
        for k in range(i + 1):
            encoder.write(painted(k))
    for encoder in encoders:
        encoder.close()
    running = pool.pids()
    pool.close()
    assert [decode(tmp_path / f"v{i}.mp4").indices for i in range(3)] == [[0], [0, 1], [0, 1, 2]]
    idle = idle_encoder_pids()
    assert len(idle) == idle_encoder_max()  # one was already idle; the rest were stopped
    assert all(wait_exit(pid) for pid in set(running) - set(idle))
    stop_idle_encoders()
    assert all(wait_exit(pid, 0) for pid in idle)


CHILD_OF_TEST = """
    import os, sys
    from helpers import painted
    import recorder
    from recorder._testing import encoder_pids
    rec = recorder.Recorder(sys.argv[1], episode_trigger=lambda e: True)
    (h,) = rec.submit([painted(i) for i in range(3)])
    h.result(timeout=60)
    ep = rec.episode(1).__enter__()
    ep.append(painted(0))
    print(encoder_pids(rec)[0], flush=True)
    sys.stdin.readline()
    os._exit(0)  # no close(), no atexit
"""


def test_the_child_exits_when_the_training_process_dies(tmp_path: Path) -> None:
    with Child(CHILD_OF_TEST, tmp_path) as child:
        encoder_pid = int(child.expect())
        assert child.wait() == 0  # its stdin closed: it exits
    assert wait_exit(encoder_pid)
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == [0, 1, 2]
    assert not (tmp_path / "rl-video-episode-1.mp4").exists()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_never_talks_to_the_parents_encoder_processes(
    tmp_path: Path, fresh: None
) -> None:
    with Recorder(tmp_path / "a", episode_trigger=always) as rec:
        rec.submit([painted(0)])
    (parent_pid,) = idle_encoder_pids()

    def child() -> None:
        assert idle_encoder_pids() == []
        with Recorder(tmp_path / "b", episode_trigger=always) as child_rec:
            child_rec.submit([painted(i) for i in range(2)])
            assert encoder_processes(child_rec) is not None
            assert parent_pid not in encoder_pids(child_rec)

    assert run_child(child).returncode == 0
    assert decode(tmp_path / "b" / "rl-video-episode-0.mp4").indices == [0, 1]
    # The parent's idle process still serves the parent.
    with Recorder(tmp_path / "c", episode_trigger=always) as rec:
        rec.submit([painted(0)])
        rec.flush()
        assert encoder_pids(rec) == [parent_pid]


def test_where_processes_cannot_run_their_tests_skip_but_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Recorder there encodes in threads without a word: CI (.ci/run) must not pass by
    # skipping every test of the default mode.
    monkeypatch.setattr(process_module, "available", lambda: False)
    monkeypatch.delenv("RECORDER_REQUIRE_PROCESSES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="need Linux"):
        require_processes()
    monkeypatch.setenv("RECORDER_REQUIRE_PROCESSES", "1")
    with pytest.raises(pytest.fail.Exception, match="RECORDER_REQUIRE_PROCESSES is set"):
        require_processes()


def test_where_processes_cannot_run_the_recorder_says_it_encodes_in_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # No memfd, no fd passing: the videos are saved, and the user is told once (it was silent).
    monkeypatch.setattr(recorder_module, "processes_available", lambda: False)
    monkeypatch.setattr(recorder_module, "_no_processes_said", False)
    for i in range(2):
        with Recorder(tmp_path / str(i), episode_trigger=always) as rec:
            assert rec.encode_in == "thread"
            (handle,) = rec.submit([painted(0), painted(1)])
        assert handle.result().frames == 2
    said = [r for r in caplog.records if "encoder processes are not available" in r.message]
    assert len(said) == 1
    assert said[0].levelname == "WARNING"


def test_an_encoder_process_whose_recorder_died_as_it_started_exits_quietly() -> None:
    # The training process killed while its encoder process imported PyAV: the "ready" it
    # then sent met a closed socket, and a BrokenPipeError traceback reached the terminal.
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent.close()
    with child:
        done = subprocess.run(
            [sys.executable, "-c", encoder_process_code(), str(child.fileno()), "0", *sys.path],
            pass_fds=[child.fileno()],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
