"""Security (issue 6): nothing outside video_folder, nothing followed, no shell, real JSON.

* Whatever the prefix, indices or user metadata: a ValueError/TypeError at the call, or every
  path created, opened for writing or renamed lies inside video_folder (checked with an audit
  hook and a snapshot of the folder's surroundings).
* A file or symlink already at a final name is replaced, never followed or written through;
  temporary files are created exclusively; manifest.jsonl is not followed when a symlink.
* No subprocess and no shell, ever.
* Sidecars and the manifest are written by the json module: hostile strings round-trip.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import FakeEncoders
from helpers import decode, examples, painted
from hypothesis import given
from hypothesis import strategies as st

from recorder import Recorder
from recorder._testing import (
    encoder_process_code,
    process_module,
    stop_idle_encoders,
    threads_of,
)

_counter = itertools.count()

# -- watching what the process touches -----------------------------------------------------------

_audit: list[tuple[str, tuple[Any, ...]]] | None = None  # events while a watch is on
_audit_lock = threading.Lock()
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
WATCHED = {"open", "os.rename", "os.remove", "os.mkdir", "os.symlink", "os.link", "os.chmod"}
PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork"}
PROCESS_EVENTS |= {"os.spawn", "os.startfile", "pty.spawn"}


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _audit is not None and (event in WATCHED or event in PROCESS_EVENTS):
        with _audit_lock:
            if _audit is not None:
                _audit.append((event, args))


# Audit hooks cannot be removed; this one costs one comparison while no watch is on.
sys.addaudithook(_hook)


@contextmanager
def watching() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Record the audit events of every thread while the block runs."""
    global _audit
    events: list[tuple[str, tuple[Any, ...]]] = []
    _audit = events
    try:
        yield events
    finally:
        _audit = None


def written_paths(events: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, str]]:
    """(event, absolute path) opened for writing, created, renamed (both ends) or removed."""
    paths: list[tuple[str, Any]] = []
    for event, args in events:
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if writing:
                paths.append((event, path))
        elif event == "os.rename":
            paths += [(event, args[0]), (event, args[1])]
        elif event in ("os.remove", "os.mkdir", "os.symlink", "os.link", "os.chmod"):
            paths.append((event, args[0]))
    return [
        (event, os.path.abspath(os.fsdecode(p)))
        for event, p in paths
        if isinstance(p, str | bytes | os.PathLike)
    ]


def tree(root: Path) -> set[str]:
    """Every path under *root* (symlinks not followed)."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.join(dirpath, name))
    return found


def inside(path: str, folder: Path | str) -> bool:
    return os.path.commonpath([path, str(folder)]) == str(folder)


# -- nothing outside video_folder ------------------------------------------------------------

HOSTILE_PREFIXES = [
    "..",
    "../x",
    "../../etc/passwd",
    "/abs",
    "a/../..",
    "..\\x",
    "a\0b",
    "",
    ".",
    "...",
    "~",
    "$HOME",
    "`id`",
    "$(touch pwned)",
    "; rm -rf /",
    "x" * 300,  # too long a file name: the video fails, as an error, inside the folder
    "C:evil",
    "\n",
    "é🎥",
]


def record_with(folder: Path, prefix: str, indices: list[int], metadata: dict[str, Any]) -> None:
    """Record with a fake encoder (writes a few bytes) and sidecars; errors are values."""
    try:
        rec = Recorder(
            folder,
            episode_trigger=lambda e: True,
            step_trigger=lambda s: s % 2 == 0,
            video_length=2,
            name_prefix=prefix,
            encoder_factory=FakeEncoders(),
        )
    except (ValueError, TypeError) as e:
        if not str(e):
            raise AssertionError("an error that does not say what is wrong") from e
        return
    frames = [np.full((4, 4, 3), 7, np.uint8)] * 3
    with rec:
        handles = []
        for index in indices:
            try:
                handles += rec.submit(
                    frames, episode_index=index, step_starting_index=index, metadata=metadata
                )
            except ValueError as e:  # an index too long for a file name: refused at the call
                assert "must be < 10**20" in str(e)  # noqa: PT017 - not every index fails
        # Names too long for the file system are refused at the call: every video is saved.
        rec.flush()
    for handle in handles:
        assert handle.result().path.is_file()
    assert rec.stats().errors == ()


def assert_contained(tmp_path: Path, prefix: str, indices: list[int], meta: dict[str, Any]) -> None:
    root = tmp_path / f"case-{next(_counter)}"
    folder = root / "inner" / "videos"
    root.mkdir()
    before = tree(tmp_path)
    with watching() as events:
        record_with(folder, prefix, indices, meta)
    # video_folder is created with its parents ("created if missing"): nothing else.
    created = tree(tmp_path) - before
    outside = [p for p in created if not inside(p, folder) and not inside(str(folder), p)]
    assert not outside, outside
    touched = [
        (event, p)
        for event, p in written_paths(events)
        if not inside(p, folder) and not (event == "os.mkdir" and inside(str(folder), p))
    ]
    assert not touched, touched
    assert not [e for e, _ in events if e in PROCESS_EVENTS]


@pytest.mark.parametrize("prefix", HOSTILE_PREFIXES)
def test_hostile_prefixes_stay_inside_or_fail_at_the_call(tmp_path: Path, prefix: str) -> None:
    assert_contained(tmp_path, prefix, [0, 3], {"path": "../../outside", "name": "/etc/passwd"})


def test_separators_in_prefixes_are_refused(tmp_path: Path) -> None:
    for prefix in ["../x", "/abs", "a/b", "a\\b", "a\0b", ".."]:
        with pytest.raises(ValueError, match="name_prefix"):
            Recorder(tmp_path / "v", name_prefix=prefix)
    with pytest.raises(TypeError):
        Recorder(tmp_path / "v", name_prefix=b"rl-video")  # type: ignore[arg-type]


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@examples(100)
@given(
    prefix=st.text(
        alphabet=st.sampled_from(list("./\\\0~$`;-_ aZ9é\n")) | st.characters(codec="utf-8"),
        max_size=12,
    ),
    indices=st.lists(st.integers(0, 10**30), min_size=1, max_size=3, unique=True),
    metadata=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
)
def test_no_file_outside_the_folder_whatever_the_input(
    tmp_path: Path, prefix: str, indices: list[int], metadata: dict[str, Any]
) -> None:
    assert_contained(tmp_path, prefix, indices, metadata)


# -- existing files and symlinks are replaced, never followed --------------------------------


def test_symlinks_at_final_names_are_replaced_not_followed(tmp_path: Path) -> None:
    folder, outside = tmp_path / "videos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    targets = {}
    for name in ["rl-video-episode-0.mp4", "rl-video-episode-0.json", "rl-video-step-0.mp4"]:
        target = outside / f"target-{name}"
        target.write_bytes(b"precious")
        (folder / name).symlink_to(target)
        targets[name] = target
    (folder / "rl-video-episode-1.mp4").symlink_to(outside / "does-not-exist")  # dangling
    with Recorder(folder, episode_trigger=lambda e: True, step_trigger=lambda s: s == 0) as rec:
        rec.submit([painted(i) for i in range(4)], episode_index=0, step_starting_index=0)
        rec.submit([painted(i) for i in range(2)], episode_index=1, step_starting_index=9)
    for target in targets.values():
        assert target.read_bytes() == b"precious"
    assert sorted(os.listdir(outside)) == sorted(t.name for t in targets.values())
    for name in ["rl-video-episode-0.mp4", "rl-video-step-0.mp4", "rl-video-episode-1.mp4"]:
        assert stat.S_ISREG(os.lstat(folder / name).st_mode), name
    assert decode(folder / "rl-video-episode-0.mp4").indices == [0, 1, 2, 3]
    assert decode(folder / "rl-video-step-0.mp4").indices == [1, 2, 3]
    assert decode(folder / "rl-video-episode-1.mp4").indices == [0, 1]
    assert json.loads((folder / "rl-video-episode-0.json").read_text())["frames"] == 4


def test_an_existing_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    # A hard link elsewhere shares the old file's inode: writing into the file would show there.
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "rl-video-episode-0.mp4").write_bytes(b"old video")
    os.link(folder / "rl-video-episode-0.mp4", tmp_path / "hard-link")
    with Recorder(folder, episode_trigger=lambda e: True) as rec:
        rec.submit([painted(i) for i in range(3)])
    assert (tmp_path / "hard-link").read_bytes() == b"old video"
    assert decode(folder / "rl-video-episode-0.mp4").indices == [0, 1, 2]


def folder_and_precious_file(tmp_path: Path) -> tuple[Path, Path]:
    """An empty video folder, and a file beside it holding b"precious"."""
    folder, outside = tmp_path / "videos", tmp_path / "outside"
    folder.mkdir()
    outside.write_bytes(b"precious")
    return folder, outside


def test_temporary_files_are_created_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every temporary name comes from mkstemp (O_CREAT | O_EXCL): the first name it picks is
    # taken here by a symlink, so it must move on to another name, not follow it.
    folder, outside = folder_and_precious_file(tmp_path)
    real = tempfile._get_candidate_names  # type: ignore[attr-defined]
    planted: list[str] = []

    class Names:
        def __init__(self) -> None:
            self.inner = real()
            self.first = True

        def __iter__(self) -> Names:
            return self

        def __next__(self) -> str:
            if self.first:
                self.first = False
                return "taken"
            return str(next(self.inner))

    def candidate_names() -> Names:
        return Names()

    for stem, suffix in [
        ("rl-video-episode-0", ".rec-tmp"),
        ("rl-video-episode-0", ".json.rec-tmp"),
    ]:
        link = folder / f".{stem}.taken{suffix}"
        link.symlink_to(outside)
        planted.append(link.name)
    monkeypatch.setattr(tempfile, "_get_candidate_names", candidate_names)
    with Recorder(folder, episode_trigger=lambda e: True) as rec:
        (h,) = rec.submit([painted(i) for i in range(3)])
    assert outside.read_bytes() == b"precious"
    assert decode(h.result().path).indices == [0, 1, 2]
    assert all(os.path.islink(folder / name) for name in planted)  # left alone


def test_a_temporary_file_swapped_for_a_symlink_is_not_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone who can write to the folder replaces the fresh temporary file with a symlink
    # between its creation and PyAV opening it (PyAV opens at the first packet, several frames
    # later): the video must not land in the symlink's target.
    folder, outside = folder_and_precious_file(tmp_path)
    real = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, path = real(*args, **kwargs)
        if kwargs.get("suffix") == ".rec-tmp":
            os.unlink(path)
            os.symlink(outside, path)
        return fd, path

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    rec = Recorder(folder, episode_trigger=lambda e: True)
    (h,) = rec.submit([painted(i) for i in range(3)])
    with contextlib.suppress(OSError):  # refusing, with an error, is fine
        rec.close(timeout=30)
    assert outside.read_bytes() == b"precious"
    final = folder / "rl-video-episode-0.mp4"
    assert not final.is_symlink()
    if h.exception() is None:
        assert decode(final).indices == [0, 1, 2]


def test_manifest_symlink_is_not_followed(tmp_path: Path) -> None:
    # O_NOFOLLOW: appending to manifest.jsonl fails (ELOOP) rather than write through it. The
    # videos and their sidecars are saved; the error is reported for each of them.
    folder, outside = tmp_path / "videos", tmp_path / "outside.jsonl"
    folder.mkdir()
    outside.write_text("precious\n")
    (folder / "manifest.jsonl").symlink_to(outside)
    rec = Recorder(folder, episode_trigger=lambda e: True)
    handles = [rec.submit([painted(i) for i in range(2)], episode_index=e)[0] for e in range(2)]
    with pytest.raises(ExceptionGroup) as info:
        rec.close(timeout=30)
    assert all(isinstance(e, OSError) and e.errno == errno.ELOOP for e in info.value.exceptions)
    assert outside.read_text() == "precious\n"
    assert (folder / "manifest.jsonl").is_symlink()
    for h in handles:
        assert decode(h.result().path).indices == [0, 1]
        assert json.loads(h.result().path.with_suffix(".json").read_text())["frames"] == 2


def test_manifest_fifo_does_not_hang_the_recorder(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    fifo = folder / "manifest.jsonl"
    os.mkfifo(fifo)
    rec = Recorder(folder, episode_trigger=lambda e: True)
    try:
        (h,) = rec.submit([painted(i) for i in range(2)])
        raised: BaseException | None = None
        try:
            rec.close(timeout=2)
        except OSError as e:
            raised = e
        # The manifest's own error, at once; not a timeout.
        assert isinstance(raised, OSError)
        assert not isinstance(raised, TimeoutError)
        assert decode(h.result(timeout=10).path).indices == [0, 1]
    finally:
        # Let a worker stuck in open() go: a reader appears, and disappears.
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        for thread in threads_of(rec):
            thread.join(10)
        if not rec.closed:
            rec.close(timeout=10)


# -- no shell; the one process started is the encoder ------------------------------------------


def record_with_hostile_metadata(folder: Path, **kwargs: Any) -> None:
    for codec in ["h264", "gif"]:
        with Recorder(
            folder / codec,
            episode_trigger=lambda e: True,
            codec=codec,
            workers=2,
            on_saved=lambda info: None,
            **kwargs,
        ) as rec:
            for e in range(2):
                with rec.episode(e, metadata={"cmd": "$(reboot)"}) as ep:
                    for i in range(3):
                        ep.append(painted(i))
    assert len(list((folder / "h264").glob("*.mp4"))) == 2
    assert len(list((folder / "gif").glob("*.gif"))) == 2


def refuse_processes(monkeypatch: pytest.MonkeyPatch, allow: Any = None) -> None:
    popen = subprocess.Popen

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a process was started: {args!r}")

    def only_allowed(*args: Any, **kwargs: Any) -> Any:
        if allow is None or not allow(*args, **kwargs):
            refuse(*args, **kwargs)
        return popen(*args, **kwargs)

    for module, name in [
        (os, "system"),
        (os, "popen"),
        (os, "posix_spawnp"),
        (os, "fork"),
        (os, "execv"),
        (os, "execve"),
    ]:
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(subprocess, "Popen", only_allowed)


def test_no_process_is_started_when_encoding_in_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_processes(monkeypatch)
    monkeypatch.setattr(os, "posix_spawn", lambda *a, **k: pytest.fail(f"spawned {a!r}"))
    with watching() as events:
        record_with_hostile_metadata(tmp_path, encode_in="thread")
    assert not [e for e, _ in events if e in PROCESS_EVENTS]


def test_the_only_process_started_is_the_encoder_without_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop_idle_encoders()  # the idle encoder processes of earlier tests would be reused
    seen: list[tuple[Any, dict[str, Any]]] = []

    def allow(args: Any, **kwargs: Any) -> bool:
        seen.append((args, kwargs))
        # Our interpreter running our fixed code, given only the socket, the nice level and
        # sys.path: nothing from the metadata, names or folder reaches a command line.
        return (
            isinstance(args, list)
            and args[:3] == [sys.executable, "-c", encoder_process_code()]
            and args[3].isdigit()
            and args[4] == str(process_module.target_nice(10))
            and args[5:] == [p for p in sys.path if p]
            and not kwargs.get("shell", False)
        )

    refuse_processes(monkeypatch, allow)
    with watching() as events:
        record_with_hostile_metadata(tmp_path)
    assert 1 <= len(seen) <= 2  # workers=2: at most two encoder processes, reused by the gif one
    started = [a for e, a in events if e in PROCESS_EVENTS]
    assert len(started) == len(seen)
    assert all(str(a[0]) == sys.executable for a in started)


# -- JSON written by the json module ------------------------------------------------------------

NASTY = {
    "quote": 'say "hi"',
    "newline": "line 1\nline 2\r\n",
    "script": "</script><script>alert(1)</script>",
    "backslash": "C:\\path\\",
    "json": '{"injected": true}',
    "nul": "a\0b",
    "unicode": "é 🎥 \u2028 \u2029",
    "nested": {"list": [1, "two", None, True], "deep": {"x": -1.5}},
    "big": 10**30,
}


def test_sidecar_and_manifest_round_trip_hostile_strings(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        for e in range(2):
            rec.submit([painted(i) for i in range(2)], episode_index=e, metadata=NASTY)
    for e in range(2):
        record = json.loads((tmp_path / f"rl-video-episode-{e}.json").read_text(encoding="utf-8"))
        assert record["metadata"] == NASTY
    lines = (tmp_path / "manifest.jsonl").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""  # newline-terminated, one line per video: newlines were escaped
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["metadata"] for r in records] == [NASTY, NASTY]


@examples(40)
@given(metadata=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_any_json_metadata_round_trips(tmp_path: Path, metadata: dict[str, Any]) -> None:
    folder = tmp_path / f"case-{next(_counter)}"
    with Recorder(folder, episode_trigger=lambda e: True, encoder_factory=FakeEncoders()) as rec:
        rec.submit([np.zeros((4, 4, 3), np.uint8)], metadata=metadata)
    assert json.loads((folder / "rl-video-episode-0.json").read_text())["metadata"] == metadata
    # JSON Lines are separated by "\n" only: str.splitlines() would also split at U+0085 or
    # U+2028, which ensure_ascii=False leaves raw inside strings.
    (line, end) = (folder / "manifest.jsonl").read_text().split("\n")
    assert end == ""
    assert json.loads(line)["metadata"] == metadata


def test_metadata_with_a_lone_surrogate_round_trips(tmp_path: Path) -> None:
    checkpoint = os.fsdecode(b"/runs/ckpt-\xff.pt")  # '\udcff' in it
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        rec.submit([painted(0)], metadata={"checkpoint": checkpoint})
    record = json.loads((tmp_path / "rl-video-episode-0.json").read_text())
    assert record["metadata"]["checkpoint"] == checkpoint
