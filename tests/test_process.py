"""Process death and signals (issue 6), in subprocesses with real PyAV.

SIGKILL mid-recording leaves every final name a whole video and only hidden temporary names
besides, which a new Recorder ignores (documented in the README). SIGINT, and SIGTERM after
``recorder.handle_sigterm()``, flush what was queued before the process exits; a second SIGINT
during that flush drops the rest quickly and leaves no half-written file.

The child reports progress on stdout, one line per event; the parent acts on those lines, never
on time. Its encoder waits at a chosen frame until the parent opens the gate (``fakes.Gate``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fakes import Faults, Gate
from helpers import Child, assert_saved_whole, children_of, hidden_names, painted, wait_exit

from recorder import Recorder
from recorder._testing import recorder_module

CHILD = r"""
    import json, logging, signal, sys, threading
    mode, folder, faults = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    # Python leaves SIGINT ignored when it starts ignored (a background job of a shell, some
    # CI runners): restore Ctrl-C as a terminal delivers it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from fakes import Faults, wait_at_gate
    from helpers import painted
    import recorder
    from recorder._testing import ClipQueue

    said = threading.Lock()

    def say(*words):
        with said:  # one whole line per event, whichever thread says it
            sys.stdout.write(" ".join(map(str, words)) + "\n")
            sys.stdout.flush()

    # The "dropped video ..." warning tells the parent that a second SIGINT was handled.
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="log %(message)s")

    original_wait = ClipQueue.wait

    def wait(self, *args, **kwargs):
        if kwargs.get("everything"):
            say("waiting")  # close() is flushing
        return original_wait(self, *args, **kwargs)

    ClipQueue.wait = wait

    def saved(info):
        say("saved", info.name)

    def record(rec):
        if mode == "kill":
            for e in range(4):
                rec.submit([painted(i) for i in range(10)], episode_index=e)
            rec.submit([painted(i) for i in range(40)], episode_index=4)
        else:
            for e in range(3):
                rec.submit([painted(i) for i in range(20)], episode_index=e)
            ep = rec.episode(3)  # left open: close() ends it where it is
            for i in range(5):
                ep.append(painted(i))
        say("queued", rec.stats().frames_encoded)
        if mode != "sigterm-exiting":
            threading.Event().wait()  # until a signal

    if mode.startswith("sigterm"):
        recorder.handle_sigterm()
    if mode == "sigterm-exiting":
        import os
        handler = signal.getsignal(signal.SIGTERM)

        def told(*args):
            try:
                handler(*args)
            finally:  # not say(): the signal may come while this thread holds its lock
                os.write(sys.stdout.fileno(), b"sigterm handled\n")

        signal.signal(signal.SIGTERM, told)
    workers = 2 if mode == "kill" else 1
    # One video waits at the parent's gate at one of its frames (real PyAV encoders).
    options = dict(episode_trigger=lambda e: True, workers=workers,
                   encoder_factory=Faults(**faults), on_saved=saved)
    if mode == "hung":  # encoding in an encoder process, which the parent stops (SIGSTOP)
        del options["encoder_factory"]
    if mode in ("sigterm-bare", "sigterm-exiting"):
        # SIGTERM for the main thread alone (threads inherit the block), so that its handler
        # runs where the exit's close waits, not when a worker's wait ends.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        rec = recorder.Recorder(folder, **options)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        record(rec)  # never closed: the at-exit close flushes
    elif mode == "sigterm-async":
        import asyncio
        from recorder._testing import async_module

        original_stoppable = async_module._wait_stoppable

        def stoppable(rec, targets, stop):
            if targets is None:
                say("waiting")  # aclose() is flushing
            return original_stoppable(rec, targets, stop)

        async_module._wait_stoppable = stoppable

        async def main():
            async with recorder.AsyncRecorder(folder, **options) as rec:
                for e in range(3):
                    await rec.submit([painted(i) for i in range(20)], episode_index=e)
                say("queued", rec.stats().frames_encoded)
                await asyncio.Event().wait()  # until a signal

        asyncio.run(main())
    else:
        with recorder.Recorder(folder, **options) as rec:
            if mode == "hung":
                rec.submit([painted(i) for i in range(2)], episode_index=9)[0].result()
                say("encoding")  # the encoder process runs
                wait_at_gate(faults["gate"])  # until the parent has stopped it
            record(rec)
"""

# The recorder's temporary file, a sidecar's, and an mp4's fragment file (written by the encoder).
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[^.]+(\.json\.rec-tmp|\.rec-tmp|\.mp4\.rec-frag)$")


@contextmanager
def child_process(tmp_path: Path, mode: str) -> Iterator[tuple[Child, Gate]]:
    """The child recording into tmp_path/videos in *mode*, and the gate where it waits: its
    encoder at frame 30 of its last video (to be killed mid-video), else at the first frame; or,
    hung, its main thread."""
    pause = ("rl-video-episode-4", 30) if mode == "kill" else ("rl-video-episode-0", 0)
    with Gate() as gate:
        log = str(tmp_path / "faults.log")
        faults = Faults(log, pause=pause[0], pause_at=pause[1], gate=gate.address)
        with Child(
            CHILD, mode, tmp_path / "videos", json.dumps(dataclasses.asdict(faults))
        ) as child:
            yield child, gate


def go(gate: Gate) -> None:
    """Let what waits at *gate* go on."""
    assert gate.reached()
    gate.open()


def final_names(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def assert_all_final_files_whole(folder: Path, frames: dict[str, int]) -> None:
    """Exactly the videos *frames* (name: frame count) are there, each whole, with sidecars."""
    expected = sorted([f"{n}.mp4" for n in frames] + [f"{n}.json" for n in frames])
    assert final_names(folder) == sorted([*expected, "manifest.jsonl"])
    assert_saved_whole(folder, frames)


# -- SIGKILL ----------------------------------------------------------------------------------


def test_sigkill_mid_recording_leaves_whole_files_and_hidden_temporaries(tmp_path: Path) -> None:
    with child_process(tmp_path, "kill") as (child, gate):
        child.expect("queued")
        saved = {child.expect("saved").split()[1] for _ in range(4)}
        assert gate.reached()  # episode 4 is half-written: 30 of its 40 frames encoded
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    folder = tmp_path / "videos"
    assert saved == {f"rl-video-episode-{e}" for e in range(4)}
    assert_all_final_files_whole(folder, dict.fromkeys(saved, 10))
    leftovers = hidden_names(folder)
    assert leftovers, "the half-written video should have left its temporary file"
    for name in leftovers:
        match = TEMPORARY.match(name)
        assert match, f"unexpected leftover {name}"
        assert match["name"].startswith("rl-video-episode-")
    assert any(n.startswith(".rl-video-episode-4.") for n in leftovers)

    # A new Recorder on the same folder works; it ignores the stale temporary files (README).
    with Recorder(folder, episode_trigger=lambda e: True) as rec:
        redo = rec.submit([painted(i) for i in range(12)], episode_index=4)[0]
        more = rec.submit([painted(i) for i in range(7)], episode_index=5)[0]
    assert (redo.result().frames, more.result().frames) == (12, 7)
    assert hidden_names(folder) == leftovers
    assert_all_final_files_whole(
        folder, {**dict.fromkeys(saved, 10), "rl-video-episode-4": 12, "rl-video-episode-5": 7}
    )


# -- SIGINT and SIGTERM: what was queued is flushed ----------------------------------------------

QUEUED = {"rl-video-episode-0": 20, "rl-video-episode-1": 20, "rl-video-episode-2": 20}
QUEUED_AND_OPEN = {**QUEUED, "rl-video-episode-3": 5}


@pytest.mark.parametrize(
    ("mode", "sig", "returncode"),
    [
        ("sigint", signal.SIGINT, -signal.SIGINT),
        ("sigterm-with", signal.SIGTERM, 128 + signal.SIGTERM),
        ("sigterm-bare", signal.SIGTERM, 128 + signal.SIGTERM),
    ],
)
def test_signal_flushes_what_was_queued(
    tmp_path: Path, mode: str, sig: signal.Signals, returncode: int
) -> None:
    with child_process(tmp_path, mode) as (child, gate):
        # Nothing is encoded yet: every frame is still in the queue when the signal comes.
        assert child.expect("queued") == "queued 0"
        child.send_signal(sig)
        child.expect("waiting")  # the process is exiting, flushing in close()
        go(gate)
        assert child.wait() == returncode, child.stderr
    assert {line.split()[1] for line in child.seen if line.startswith("saved")} == set(
        QUEUED_AND_OPEN
    )
    assert_all_final_files_whole(tmp_path / "videos", QUEUED_AND_OPEN)
    assert hidden_names(tmp_path / "videos") == []
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in child.stderr


def test_a_sigterm_that_finds_the_exit_flushing_lets_it_finish(tmp_path: Path) -> None:
    # multiprocessing's Pool.terminate() signals workers that may be leaving already.
    with child_process(tmp_path, "sigterm-exiting") as (child, gate):
        assert child.expect("queued") == "queued 0"
        child.expect("waiting")  # the program ended: the exit's close is flushing
        child.send_signal(signal.SIGTERM)
        child.expect("sigterm handled")
        go(gate)
        assert child.wait() == 0, child.stderr  # the program's own status
    assert {line.split()[1] for line in child.seen if line.startswith("saved")} == set(
        QUEUED_AND_OPEN
    )
    assert_all_final_files_whole(tmp_path / "videos", QUEUED_AND_OPEN)


HUNG_AFTER_THE_EXIT = """
    import signal, sys, threading
    import numpy as np
    # Registered before recorder's: threading's exit hooks run last-in first-out, so this one
    # runs once the recorder's close at exit is over, before the threads are joined.
    threading._register_atexit(lambda: print("closed at exit", flush=True))
    import recorder
    recorder.handle_sigterm()
    # SIGTERM for the main thread alone (threads inherit the block): its handler then runs in
    # the exit's join, not whenever another thread's wait ends.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    rec = recorder.Recorder(sys.argv[1])  # never closed: the exit closes it
    with rec.episode(0) as ep:
        ep.append(np.zeros((16, 16, 3), np.uint8))
    threading.Thread(target=threading.Event().wait).start()  # a hung thread the exit joins
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
"""


def test_a_sigterm_after_the_exits_close_ends_the_process(tmp_path: Path) -> None:
    with Child(HUNG_AFTER_THE_EXIT, tmp_path / "videos") as child:
        child.expect("closed at exit")
        child.send_signal(signal.SIGTERM)  # one: nothing is being flushed any more
        assert child.wait(timeout=30) is not None, child.stderr
    assert (tmp_path / "videos" / "rl-video-episode-0.mp4").exists()


def test_a_child_forked_while_the_exit_closes_is_not_exiting() -> None:
    service = recorder_module
    closing = service._closing_at_exit
    service._closing_at_exit = True  # as if a callback of the exit's close forked
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(1 if service.closing_at_exit() else 0)
        assert os.waitpid(pid, 0)[1] == 0
    finally:
        service._closing_at_exit = closing


def test_second_sigint_aborts_the_flush_quickly(tmp_path: Path) -> None:
    with child_process(tmp_path, "sigint") as (child, gate):
        child.expect("queued")
        assert gate.reached()  # the worker is inside the first frame of episode 0
        child.send_signal(signal.SIGINT)
        child.expect("waiting")
        start = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.expect("log dropped video")  # the flush was abandoned: the rest is dropped
        gate.open()  # lets the worker leave the frame it is in
        assert child.wait() == -signal.SIGINT, child.stderr
        elapsed = time.monotonic() - start
    assert elapsed < 10
    assert not [line for line in child.seen if line.startswith("saved")]
    # Nothing half-written under a final name, no temporary file left behind.
    assert [n for n in os.listdir(tmp_path / "videos") if n.endswith(".mp4")] == []
    assert hidden_names(tmp_path / "videos") == []
    assert "KeyboardInterrupt" in child.stderr


def test_a_second_sigterm_under_asyncio_drops_the_rest_and_the_program_exits(
    tmp_path: Path,
) -> None:
    # The first SIGTERM unwinds asyncio.run, whose cancelled main task flushes in aclose();
    # the second drops what is left, and the first one's exit completes (no thread is left
    # to hold the interpreter's exit).
    with child_process(tmp_path, "sigterm-async") as (child, gate):
        child.expect("queued")
        assert gate.reached()  # the worker is inside the first frame of episode 0
        child.send_signal(signal.SIGTERM)
        child.expect("waiting")
        start = time.monotonic()
        child.send_signal(signal.SIGTERM)
        child.expect("log dropped video")
        gate.open()  # lets the worker leave the frame it is in
        assert child.wait(timeout=30) == 128 + signal.SIGTERM, child.stderr
        elapsed = time.monotonic() - start
    assert elapsed < 10
    assert not [line for line in child.seen if line.startswith("saved")]
    assert [n for n in os.listdir(tmp_path / "videos") if n.endswith(".mp4")] == []
    assert hidden_names(tmp_path / "videos") == []


def test_second_sigint_ends_a_flush_stuck_on_a_hung_encoder_process(tmp_path: Path) -> None:
    # The encoder process stops answering (SIGSTOP): the flush of the first Ctrl-C waits for
    # it; the second ends it quickly, killing that process, and the program exits.
    with child_process(tmp_path, "hung") as (child, gate):
        child.expect("encoding")
        (encoder,) = children_of(child.pid)
        os.kill(encoder, signal.SIGSTOP)
        try:
            go(gate)
            child.expect("queued")
            child.send_signal(signal.SIGINT)
            child.expect("waiting")
            start = time.monotonic()
            child.send_signal(signal.SIGINT)
            code = child.wait(timeout=30)
            elapsed = time.monotonic() - start
            killed = wait_exit(encoder, 0)
        finally:
            if not wait_exit(encoder, 0):
                os.kill(encoder, signal.SIGKILL)
    assert code == -signal.SIGINT, child.stderr
    assert killed, "the hung encoder process outlived the program"
    assert elapsed < 10
    assert [line for line in child.seen if line.startswith("log killing encoder process")]
    assert [line for line in child.seen if line.startswith("saved")] == ["saved rl-video-episode-9"]
    assert_all_final_files_whole(tmp_path / "videos", {"rl-video-episode-9": 2})
    assert hidden_names(tmp_path / "videos") == []


def test_sigterm_is_not_taken_over_without_opting_in(tmp_path: Path) -> None:
    # handle_sigterm() is opt-in: without it SIGTERM keeps its default action (the process
    # ends at once, no flush), as a library must not take a signal over behind its user.
    with child_process(tmp_path, "plain") as (child, _):
        child.expect("queued")
        child.send_signal(signal.SIGTERM)
        assert child.wait() == -signal.SIGTERM, child.stderr
    assert not [line for line in child.seen if line.startswith(("waiting", "saved"))]
    assert [n for n in os.listdir(tmp_path / "videos") if n.endswith(".mp4")] == []


_NEVER_CLOSED_BY_THREADS_THAT_WAIT = """
import concurrent.futures, sys
import recorder
from helpers import painted

folder = sys.argv[1]
pool = concurrent.futures.ThreadPoolExecutor(1)  # never shut down: its threads wait at exit
pool.submit(lambda: recorder.Recorder(folder + "/pool").submit([painted(0)])).result()

def on_saved(info):  # a Recorder made on another one's worker thread, never closed
    if info.name == "rl-video-episode-0":
        recorder.Recorder(folder + "/nested").submit([painted(0)])

outer = recorder.Recorder(folder + "/outer", on_saved=on_saved)
outer.submit([painted(0)])
outer.flush()
print("done", flush=True)
"""


def test_recorders_made_by_threads_that_wait_for_the_exit_are_still_closed_by_it(
    tmp_path: Path,
) -> None:
    # The exit's close must not wait for the thread that made a Recorder when it is an idle
    # pool thread or another recorder's worker: they end only after that close.
    with Child(_NEVER_CLOSED_BY_THREADS_THAT_WAIT, tmp_path) as child:
        assert child.wait(60) == 0, child.stderr
    assert child.stdout.split() == ["done"]
    for folder in ("pool", "nested", "outer"):
        assert (tmp_path / folder / "rl-video-episode-0.mp4").exists(), folder


_TWO_LEFT_OPEN = """
import sys
import recorder
from helpers import painted

folder = sys.argv[1]

def on_saved(info):
    sys.exit(3)  # kept, and raised by the exit's close of this Recorder

first = recorder.Recorder(folder + "/first", on_saved=on_saved)
second = recorder.Recorder(folder + "/second")
first.submit([painted(0)])
ep = second.episode(0)
ep.append(painted(0))  # open: only a close saves it
"""


def test_a_callbacks_sys_exit_raised_by_the_exits_close_does_not_skip_the_next_recorder(
    tmp_path: Path,
) -> None:
    with Child(_TWO_LEFT_OPEN, tmp_path) as child:
        assert child.wait(60) == 0, child.stderr
    assert "SystemExit: 3" in child.stderr  # logged
    for folder in ("first", "second"):
        assert (tmp_path / folder / "rl-video-episode-0.mp4").exists(), folder
