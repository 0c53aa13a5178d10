"""Fault injection (issue 6): a failing encoder, a full disk, permissions, a vanished folder, a
dead worker. Each time close() returns in time, the error reaches the caller (handle, stats(),
the ``recorder`` logger, flush()/close()), no temporary file and no thread remains, and every
other video is complete (decoded back with PyAV).

Each test runs with the videos encoded in encoder processes (the default) and in the worker
threads (``encode_in``); injected encoder faults reach the encoder processes through their
test hook (``fakes.Faults``)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gc
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FAULTS_ENV, Faults, FaultyEncoder, Gate
from helpers import Child, always, assert_saved_whole, decode, painted, require_processes, run_child

from recorder import Recorder, VideoSpec
from recorder._testing import (
    ENCODER_HOOK,
    MAX_ERRORS,
    arena_released,
    finish_seam,
    set_finish_seam,
    stop_idle_encoders,
)

FRAMES = 10


def temporaries(folder: Path) -> list[str]:
    return (
        sorted(n for n in os.listdir(folder) if n.endswith(".rec-tmp")) if folder.exists() else []
    )


def recorder_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "recorder" and r.levelno >= logging.ERROR]


Inject = Callable[..., tuple[Faults, dict[str, Any]]]


@pytest.fixture(params=["process", "thread"])
def encode_in(request: pytest.FixtureRequest) -> Iterator[str]:
    """Where the videos are encoded: in encoder processes (the default), in worker threads."""
    if request.param == "thread":
        yield "thread"
        return
    require_processes()
    stop_idle_encoders()  # an idle process of an earlier test would not have this one's faults
    yield "process"
    stop_idle_encoders()  # ... nor may a later test get them


@pytest.fixture
def inject(
    encode_in: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Inject]:
    """``inject(**faults)``: :class:`Faults`, and the Recorder keywords that put them where
    *encode_in* encodes. Checks afterwards that the encoders ran there."""
    made: list[Faults] = []

    def inject(**options: Any) -> tuple[Faults, dict[str, Any]]:
        faults = Faults(str(tmp_path_factory.mktemp("faults") / "log"), **options)
        made.append(faults)
        if encode_in == "thread":
            return faults, {"encode_in": "thread", "encoder_factory": faults}
        monkeypatch.setenv(ENCODER_HOOK, "fakes:child_faults")
        monkeypatch.setenv(FAULTS_ENV, json.dumps(dataclasses.asdict(faults)))
        return faults, {"encode_in": "process"}

    yield inject
    for faults in made:
        pids = {pid for _, pid in faults.events("made")}
        assert pids, "no encoder was made"
        if encode_in == "thread":
            assert pids == {os.getpid()}
        else:
            assert os.getpid() not in pids, "the faults ran in this process"


def names(events: list[tuple[str, int]]) -> list[str]:
    """The video names of :meth:`Faults.events`."""
    return [name for name, _ in events]


def submit_episodes(rec: Recorder, count: int, frames: int = FRAMES) -> list[Any]:
    return [
        rec.submit([painted(i) for i in range(frames)], episode_index=e)[0] for e in range(count)
    ]


def assert_complete(folder: Path, names: list[str], frames: int = FRAMES) -> None:
    """The videos *names* decode whole, and only they (with their sidecars) are in *folder*."""
    assert_saved_whole(folder, dict.fromkeys(names, frames))


# -- an encoder failing at frame k of one video --------------------------------------------------


@pytest.mark.parametrize(
    ("fail_at", "on_close"), [(0, False), (4, False), (FRAMES - 1, False), (None, True)]
)
def test_encoder_fails_at_frame_k_of_one_video(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    inject: Inject,
    fail_at: int | None,
    on_close: bool,
) -> None:
    faults, where = inject(video="rl-video-episode-1", fail_at=fail_at, at_close=on_close)
    rec = Recorder(tmp_path, episode_trigger=always, workers=2, **where)
    handles = submit_episodes(rec, 4)
    start = time.monotonic()
    with pytest.raises(OSError, match="No space left") as info:
        rec.close(timeout=30)
    assert time.monotonic() - start < 30
    error = info.value
    assert error.errno == errno.ENOSPC
    assert any("rl-video-episode-1.mp4" in note for note in error.__notes__)
    assert handles[1].exception() is error
    stats = rec.stats()
    assert stats.errors == (error,)
    assert (stats.videos_saved, stats.videos_failed, stats.videos_in_progress) == (3, 1, 0)
    assert [r for r in recorder_errors(caplog) if "rl-video-episode-1" in r.getMessage()]
    assert names(faults.events("aborted")) == ["rl-video-episode-1"]  # its encoder released
    assert temporaries(tmp_path) == []
    assert_complete(tmp_path, ["rl-video-episode-0", "rl-video-episode-2", "rl-video-episode-3"])


def test_encoder_error_is_raised_by_flush_once_and_recording_goes_on(
    tmp_path: Path, inject: Inject
) -> None:
    _, where = inject(video="rl-video-episode-0", fail_at=2)
    with Recorder(tmp_path, episode_trigger=always, **where) as rec:
        submit_episodes(rec, 1)
        with pytest.raises(OSError, match="No space left"):
            rec.flush(timeout=30)
        rec.flush(timeout=30)  # reported once
        (later,) = rec.submit([painted(i) for i in range(FRAMES)], episode_index=1)
    assert later.result().frames == FRAMES
    assert temporaries(tmp_path) == []
    assert_complete(tmp_path, ["rl-video-episode-1"])


def test_an_encoder_error_in_an_episode_still_open_is_raised_by_flush(
    tmp_path: Path, inject: Inject
) -> None:
    # The episode goes on (or its close was forgotten): its video's failure must not wait for
    # frames that may never come. An encoder process answers it later than a thread raises it.
    _, where = inject(video="rl-video-episode-0", fail_at=2)
    with Recorder(tmp_path, episode_trigger=always, **where) as rec:
        with rec.episode(0) as ep:
            for i in range(FRAMES):
                ep.append(painted(i))
            with pytest.raises(OSError, match="No space left"):
                rec.flush(timeout=30)
            stats = rec.stats()
            assert (stats.videos_failed, stats.videos_in_progress) == (1, 0)
            assert isinstance(ep.handles[0].exception(timeout=0), OSError)
            ep.append(painted(0))  # the episode goes on; its failed video takes no more
        rec.flush(timeout=30)  # reported once
    stats = rec.stats()
    # The failed video's frames are dropped, none counted as encoded into a saved video.
    assert (stats.videos_saved, stats.frames_dropped) == (0, stats.frames_submitted)
    assert temporaries(tmp_path) == []


# -- a full disk, for real: RLIMIT_FSIZE in a subprocess ----------------------------------------

EFBIG_CHILD = """
    import json, logging, resource, signal, sys, threading, time
    import numpy as np
    from helpers import painted
    from recorder import Recorder

    logging.basicConfig(level=logging.WARNING)
    # Without SIG_IGN the kernel kills the process at the limit (SIGXFSZ); with it, the write
    # fails with EFBIG, as a full disk fails with ENOSPC.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    rec = Recorder(sys.argv[1], episode_trigger=lambda e: True, workers=2, encode_in=sys.argv[3])
    handles = []
    for e in range(4):
        if e == 1:  # incompressible frames: this video grows past the limit
            # (fresh noise each frame: x264 finds a rolled copy of one image and compresses it)
            frames = [rng.integers(0, 256, noise.shape, dtype=np.uint8) for i in range(30)]
        else:
            frames = [painted(i) for i in range(10)]
        handles += rec.submit(frames, episode_index=e)
    start = time.monotonic()
    try:
        rec.close(timeout=60)
        raised = None
    except BaseException as e:
        raised = {"type": type(e).__name__, "errno": getattr(e, "errno", None),
                  "notes": getattr(e, "__notes__", [])}
    stats = rec.stats()
    print(json.dumps({
        "close_seconds": time.monotonic() - start,
        "raised": raised,
        "handles": {h.name: None if h.exception() is None else type(h.exception()).__name__
                    for h in handles},
        "errors": [getattr(e, "errno", None) for e in stats.errors],
        "saved": stats.videos_saved, "failed": stats.videos_failed,
        "threads": [t.name for t in threading.enumerate() if t.name.startswith("recorder-")],
        "encode_in": rec.encode_in,
    }))
"""


def test_file_too_large_with_real_pyav(tmp_path: Path, encode_in: str) -> None:
    folder = tmp_path / "videos"
    proc = run_child(EFBIG_CHILD, folder, 256 * 1024, encode_in, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["encode_in"] == encode_in
    assert report["raised"]["errno"] == errno.EFBIG
    assert any("rl-video-episode-1.mp4" in note for note in report["raised"]["notes"])
    assert report["close_seconds"] < 60
    assert report["handles"]["rl-video-episode-1"] is not None
    assert [report["handles"][f"rl-video-episode-{e}"] for e in (0, 2, 3)] == [None] * 3
    assert report["errors"] == [errno.EFBIG]
    assert (report["saved"], report["failed"]) == (3, 1)
    assert report["threads"] == []
    assert "failed to record" in proc.stderr  # the recorder logger
    assert temporaries(folder) == []
    assert_complete(folder, ["rl-video-episode-0", "rl-video-episode-2", "rl-video-episode-3"])


# -- permission denied -----------------------------------------------------------------------
# A real one first: the folder made read-only mid-run. Root ignores modes, so as root the
# recording runs in a child that drops to an unprivileged user; the rest inject the error.

EACCES_CHILD = """
    import json, os, sys, threading
    folder, encode_in = sys.argv[1], sys.argv[2]
    from helpers import painted
    import recorder
    # Imported first: the interpreter's own files may not be readable by the user below.
    rec = recorder.Recorder(folder, episode_trigger=lambda e: True, encode_in=encode_in)
    (first,) = rec.submit([painted(i) for i in range(6)], episode_index=0)
    first.result(timeout=60)  # the encoder process runs now, started by this user
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)  # nobody (the workers too): file modes apply now
    print("saved", flush=True)
    assert sys.stdin.readline().strip() == "go"  # the parent has made the folder read-only
    (second,) = rec.submit([painted(i) for i in range(6)], episode_index=1)
    raised = None
    try:
        rec.close(timeout=60)
    except OSError as e:
        raised = e
    print(json.dumps({
        "raised": None if raised is None else [type(raised).__name__, raised.errno],
        "second": repr(second.exception()),
        "same": second.exception() is raised,
        "encode_in": rec.encode_in,
        "threads": [t.name for t in threading.enumerate() if t is not threading.main_thread()],
    }), flush=True)
"""


READ_ONLY_CHILD = """
    import json, os, sys
    folder, writable = sys.argv[1], sys.argv[2]
    from helpers import painted
    import recorder
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)  # nobody: file modes apply now
    try:
        recorder.Recorder(folder)
        raised = None
    except OSError as e:
        raised = [type(e).__name__, e.errno, str(e)]
    with recorder.Recorder(writable) as rec:  # the next Recorder works
        (handle,) = rec.submit([painted(i) for i in range(3)])
    print(json.dumps({"raised": raised, "frames": handle.result().frames}), flush=True)
"""


def test_a_read_only_folder_is_an_error_when_the_recorder_is_made() -> None:
    base = Path(tempfile.mkdtemp(prefix="recorder-eacces-"))
    try:
        base.chmod(0o755)
        (base / "videos").mkdir(mode=0o555)
        (base / "videos").chmod(0o555)
        (base / "other").mkdir()
        (base / "other").chmod(0o777)
        with Child(READ_ONLY_CHILD, base / "videos", base / "other", cwd=base) as child:
            assert child.wait(timeout=90) == 0, child.stderr
        report = json.loads(child.seen[-1])
        kind, number, message = report["raised"]
        assert (kind, number) == ("PermissionError", errno.EACCES)
        assert "cannot write into video_folder" in message
        assert report["frames"] == 3
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_permission_denied_for_real_when_the_folder_turns_read_only(encode_in: str) -> None:
    # Under a world-traversable root: pytest's own tmp folder is private to root.
    base = Path(tempfile.mkdtemp(prefix="recorder-eacces-"))
    try:
        base.chmod(0o755)
        folder = base / "videos"
        folder.mkdir()
        folder.chmod(0o777)
        with Child(EACCES_CHILD, folder, encode_in, cwd=base) as child:
            assert child.expect() == "saved"
            folder.chmod(0o555)
            child.say("go")
            assert child.wait(timeout=90) == 0, child.stderr
        report = json.loads(child.seen[-1])
        assert report["encode_in"] == encode_in
        assert report["raised"] == ["PermissionError", errno.EACCES]
        assert report["same"], report  # the handle holds the very error close() raised
        assert report["threads"] == []
        assert "failed to record" in child.stderr
        assert temporaries(folder) == []
        assert_complete(folder, ["rl-video-episode-0"], frames=6)
    finally:
        with contextlib.suppress(FileNotFoundError):
            (base / "videos").chmod(0o755)
        shutil.rmtree(base)


# Tests may run as root, for whom chmod denies nothing: below, the PermissionError is injected.


def deny_mkstemp(monkeypatch: pytest.MonkeyPatch, when: Callable[[str, str], bool]) -> None:
    real = tempfile.mkstemp

    def mkstemp(suffix: str | None = None, prefix: str | None = None, **kwargs: Any) -> Any:
        if when(prefix or "", suffix or ""):
            raise PermissionError(errno.EACCES, "Permission denied", kwargs.get("dir"))
        return real(suffix, prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_permission_denied_creating_the_video(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    encode_in: str,
) -> None:
    deny_mkstemp(
        monkeypatch,
        lambda prefix, suffix: prefix == ".rl-video-episode-1." and suffix == ".rec-tmp",
    )
    rec = Recorder(tmp_path, episode_trigger=always, workers=2, encode_in=encode_in)
    handles = submit_episodes(rec, 3)
    with pytest.raises(PermissionError) as info:
        rec.close(timeout=30)
    assert handles[1].exception() is info.value
    assert rec.stats().errors == (info.value,)
    assert recorder_errors(caplog)
    assert temporaries(tmp_path) == []
    assert_complete(tmp_path, ["rl-video-episode-0", "rl-video-episode-2"])


def test_permission_denied_opening_the_encoder(tmp_path: Path, inject: Inject) -> None:
    # The temporary file exists by then (like av.open failing with EACCES): it is removed.
    _, where = inject(video="rl-video-episode-0", at_open=True, errno=errno.EACCES)
    rec = Recorder(tmp_path, episode_trigger=always, **where)
    handles = submit_episodes(rec, 2)
    with pytest.raises(PermissionError):
        rec.close(timeout=30)
    assert isinstance(handles[0].exception(), PermissionError)
    assert temporaries(tmp_path) == []
    assert_complete(tmp_path, ["rl-video-episode-1"])


def test_permission_denied_writing_the_sidecar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encode_in: str
) -> None:
    deny_mkstemp(
        monkeypatch,
        lambda prefix, suffix: prefix == ".rl-video-episode-0." and suffix == ".json.rec-tmp",
    )
    rec = Recorder(tmp_path, episode_trigger=always, encode_in=encode_in)
    handles = submit_episodes(rec, 2)
    with pytest.raises(PermissionError) as info:
        rec.close(timeout=30)
    assert any("rl-video-episode-0.mp4" in note for note in info.value.__notes__)
    # The video itself is whole and saved; only its description is missing.
    assert handles[0].result().frames == FRAMES
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == list(range(FRAMES))
    assert not (tmp_path / "rl-video-episode-0.json").exists()
    assert rec.stats().errors == (info.value,)
    assert temporaries(tmp_path) == []


def test_a_failed_videos_error_kept_does_not_keep_the_frame_memory(
    tmp_path: Path, encode_in: str
) -> None:
    # A user keeps the handles (or the error close() raised): their traceback must not hold a
    # view of the arena, which would keep up to max_queue_bytes mapped after close().
    folder = tmp_path / "videos"
    rec = Recorder(folder, episode_trigger=always, encode_in=encode_in)
    rec.submit([painted(i) for i in range(FRAMES)], episode_index=0)
    rec.flush(timeout=30)
    shutil.rmtree(folder)  # the next video cannot be created
    (handle,) = rec.submit([painted(i) for i in range(FRAMES)], episode_index=1)
    with pytest.raises(FileNotFoundError) as info:
        rec.close(timeout=30)
    assert handle.exception() is info.value  # both kept
    assert arena_released(rec)


# -- video_folder removed mid-run -------------------------------------------------------------


@pytest.mark.parametrize("recreate", [False, True])
def test_video_folder_removed_mid_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, inject: Inject, recreate: bool
) -> None:
    folder = tmp_path / "videos"
    with Gate() as gate:
        # PyAV opens the file at the first packet, after x264's lookahead: pause well after it.
        _, where = inject(pause="rl-video-episode-1", pause_at=30, gate=gate.address)
        rec = Recorder(folder, episode_trigger=always, **where)
        (first,) = rec.submit([painted(i) for i in range(FRAMES)], episode_index=0)
        rec.flush(timeout=30)
        assert decode(first.result().path).indices == list(range(FRAMES))
        (cut,) = rec.submit([painted(i) for i in range(40)], episode_index=1)
        assert gate.reached()
        (tmp,) = temporaries(folder)
        # Half-written: an mp4 goes into its fragment file first (the temporary file at close).
        (fragment,) = [n for n in os.listdir(folder) if n.endswith(".rec-frag")]
        assert fragment.startswith(tmp.removesuffix(".rec-tmp"))
        assert (folder / fragment).stat().st_size > 0
        shutil.rmtree(folder)
        if recreate:
            folder.mkdir()
        gate.open()
    (after,) = rec.submit([painted(i) for i in range(FRAMES)], episode_index=2)
    start = time.monotonic()
    with pytest.raises((FileNotFoundError, ExceptionGroup)) as info:
        rec.close(timeout=30)
    assert time.monotonic() - start < 30
    raised = info.value.exceptions if isinstance(info.value, ExceptionGroup) else (info.value,)
    assert all(isinstance(e, FileNotFoundError) for e in raised)
    assert len(recorder_errors(caplog)) == len(raised)
    assert isinstance(cut.exception(), FileNotFoundError)
    stats = rec.stats()
    assert stats.videos_in_progress == 0
    assert list(stats.errors) == list(raised)
    if recreate:
        # A folder put back is used again: the video that started after it is whole.
        assert after.result().frames == FRAMES
        assert stats.videos_failed == 1
        assert decode(folder / "rl-video-episode-2.mp4").indices == list(range(FRAMES))
        assert temporaries(folder) == []
        assert not (folder / "rl-video-episode-1.mp4").exists()
    else:
        assert isinstance(after.exception(), FileNotFoundError)
        assert stats.videos_failed == 2
        assert not folder.exists()


# -- an unexpected exception inside a worker ---------------------------------------------------


def break_finish(rec: Recorder, name: str, go: threading.Event | None = None) -> None:
    """Make the worker finishing *name* die of an exception no per-clip handler catches (once
    *go* is set, if given)."""
    original = finish_seam(rec)

    def finish(clip: Any) -> None:
        if clip.name == name:
            if go is not None:
                assert go.wait(30)
            raise SystemExit("a bug in the worker")
        original(clip)

    set_finish_seam(rec, finish)


def test_a_dying_worker_fails_its_video_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, encode_in: str
) -> None:
    rec = Recorder(tmp_path, episode_trigger=always, workers=2, encode_in=encode_in)
    break_finish(rec, "rl-video-episode-1")
    handles = submit_episodes(rec, 4)
    error = handles[1].exception(timeout=30)
    assert isinstance(error, RuntimeError)
    # The handle leads to the real bug.
    assert isinstance(error.__cause__, SystemExit)
    assert error.__cause__.args == ("a bug in the worker",)
    # The surviving worker takes new work.
    (later,) = rec.submit([painted(i) for i in range(FRAMES)], episode_index=4)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="worker thread died"):
        rec.close(timeout=30)
    assert time.monotonic() - start < 30
    assert later.result().frames == FRAMES
    assert any(r.levelno == logging.CRITICAL for r in recorder_errors(caplog))
    stats = rec.stats()
    assert (stats.videos_started, stats.videos_saved, stats.videos_failed) == (5, 4, 1)
    assert temporaries(tmp_path) == []  # its half-finished file was deleted
    assert_complete(tmp_path, [f"rl-video-episode-{e}" for e in (0, 2, 3, 4)])


def test_the_last_worker_dying_fails_everything_pending_and_never_hangs(
    tmp_path: Path, inject: Inject
) -> None:
    faults, where = inject()
    rec = Recorder(tmp_path, episode_trigger=always, workers=1, **where)
    go = threading.Event()
    break_finish(rec, "rl-video-episode-0", go)
    handles = submit_episodes(rec, 3)  # all queued while the worker waits to die
    go.set()
    assert isinstance(handles[0].exception(timeout=30), RuntimeError)
    with pytest.raises(RuntimeError, match="worker threads died"):
        rec.submit([painted(0)], episode_index=9)
    start = time.monotonic()
    with pytest.raises(ExceptionGroup) as info:
        rec.close(timeout=30)
    assert time.monotonic() - start < 30
    assert len(info.value.exceptions) == 3
    assert all(isinstance(h.exception(), RuntimeError) for h in handles)
    assert rec.stats().videos_in_progress == 0
    assert names(faults.events("aborted")) == names(faults.events("made"))
    assert os.listdir(tmp_path) == []


def test_on_saved_raising_system_exit_counts_the_video_once(tmp_path: Path, encode_in: str) -> None:
    def on_saved(info: Any) -> None:
        if info.index == 1:
            raise SystemExit("sys.exit() in a user callback")

    rec = Recorder(
        tmp_path, episode_trigger=always, workers=2, on_saved=on_saved, encode_in=encode_in
    )
    handles = submit_episodes(rec, 4)
    with pytest.raises(SystemExit) as info:
        rec.close(timeout=30)
    assert info.value.args == ("sys.exit() in a user callback",)  # itself, not wrapped
    assert any("in on_saved for" in note for note in info.value.__notes__)
    stats = rec.stats()
    assert stats.videos_started == stats.videos_saved + stats.videos_dropped + stats.videos_failed
    # The file is whole and under its final name: its handle says so.
    assert handles[1].result().frames == FRAMES
    assert_complete(tmp_path, [f"rl-video-episode-{e}" for e in range(4)])


def test_a_failed_video_releases_its_encoder(tmp_path: Path) -> None:
    # Found by scripts/bench_soak.py: RSS grew by ~1.5 MB per failed 48x112 video, for good.
    # In the worker threads only: an encoder process's encoders are not this process's.
    encoders: list[weakref.ref[FaultyEncoder]] = []
    faults = Faults(str(tmp_path / "faults.log"), fail_at=2)

    def factory(spec: VideoSpec) -> FaultyEncoder:
        encoder = faults(spec)
        encoders.append(weakref.ref(encoder))
        return encoder

    rec = Recorder(tmp_path / "videos", episode_trigger=always, encoder_factory=factory)
    rec.submit([painted(i) for i in range(FRAMES)])
    with pytest.raises(OSError, match="No space left"):
        rec.close(timeout=30)
    gc.collect()
    assert len(rec.stats().errors) == 1  # the error is kept for the caller...
    assert [ref() for ref in encoders] == [None]  # ...not the encoder it came from


def test_errors_kept_are_bounded_and_the_rest_counted(tmp_path: Path, inject: Inject) -> None:
    # A disk that stays full fails every video: the errors (each with its traceback) must
    # not pile up without bound, yet flush() says how many there were.
    _, where = inject(fail_at=0)
    rec = Recorder(tmp_path, episode_trigger=lambda e: True, **where)
    try:
        for e in range(MAX_ERRORS + 5):
            rec.submit([painted(0)], episode_index=e)
        with pytest.raises(ExceptionGroup) as info:
            rec.flush(timeout=30)
        group = info.value
        assert len(group.exceptions) == MAX_ERRORS
        assert str(group).startswith(f"{MAX_ERRORS + 5} videos failed")
        assert any("5 more" in note for note in group.__notes__)
        # The first ones are raised; stats() keeps the newest.
        assert "episode-0." in str(group.exceptions[0])
        stats = rec.stats()
        assert stats.videos_failed == MAX_ERRORS + 5
        assert len(stats.errors) == MAX_ERRORS
        assert f"episode-{MAX_ERRORS + 4}." in str(stats.errors[-1])
        rec.flush(timeout=30)  # all reported: nothing raised twice
    finally:
        rec.close(timeout=30)
