"""Partial clips survive a crash (issue 13, part 4): fragment files, ``recorder.recover``.

A subprocess records with real PyAV and is SIGKILLed mid-clip, on a pipe handshake: it says
"ready" once every frame given so far is encoded (``flush()`` inside the open episode) and
waits on stdin. With ``encode_in="process"`` its encoder process outlives it briefly and
finishes the fragment file; with ``encode_in="thread"`` everything dies at once, as in a
power loss. The frames the leftover can give are counted here from its boxes, independently
of the recover module's own parser.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import struct
import time
from pathlib import Path
from typing import Any

import av
import pytest
from helpers import Child, always, decode, hidden_names, painted, wait_for_writers

import recorder
from recorder import Codec, Recorder, VideoSpec
from recorder.__main__ import main
from recorder._testing import PyAVEncoder, drop_episode, format_of, recover_module

FPS = 10  # a keyframe, so a fragment, every 20 frames (KEYFRAME_SECONDS)

CRASH = r"""
    import sys
    mode, folder = sys.argv[1], sys.argv[2]
    from helpers import painted
    import recorder

    rec = recorder.Recorder(folder, fps=10, episode_trigger=lambda e: True, encode_in=mode)
    rec.submit([painted(i) for i in range(12)], episode_index=0)
    rec.flush()
    ep = rec.episode(1)
    for i in range(55):  # keyframe 40 leaves x264 veryfast's 10-frame lookahead
        ep.append(painted(i))
    rec.flush()  # every frame given so far is encoded
    print("ready", flush=True)
    sys.stdin.readline()  # killed here
"""


def crash(tmp_path: Path, mode: str) -> Path:
    """Run the recording subprocess, SIGKILL it mid-clip; returns its video folder."""
    folder = tmp_path / "videos"
    with Child(CRASH, mode, folder) as child:
        assert child.expect() == "ready", child.stderr
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    return folder


def complete_fragment_frames(path: Path) -> int:
    """Samples of the whole ``moof`` + ``mdat`` pairs at the top level of a fragmented mp4."""
    data = path.read_bytes()
    pos, frames, pending = 0, 0, None
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8 or pos + size > len(data):
            break
        if kind == b"moof":
            pending = trun_samples(data[pos + 8 : pos + size])
        elif kind == b"mdat" and pending is not None:
            frames, pending = frames + pending, None
        pos += size
    return frames


def trun_samples(moof: bytes) -> int:
    total = 0
    for kind, body in children(moof):
        if kind == b"traf":
            total += sum(
                struct.unpack(">I", inner[4:8])[0]
                for name, inner in children(body)
                if name == b"trun"
            )
    return total


def children(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8:
            break
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    return out


def top_level_boxes(path: Path) -> list[bytes]:
    return [kind for kind, _ in children(path.read_bytes())]


def assert_plain_faststart(path: Path, frames: int) -> None:
    boxes = top_level_boxes(path)
    assert b"moof" not in boxes, boxes  # not fragmented
    assert boxes.index(b"moov") < boxes.index(b"mdat"), boxes  # +faststart
    assert decode(path).indices == list(range(frames))


# -- a crash, then recover ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_sigkill_mid_clip_then_recover(tmp_path: Path, mode: str) -> None:
    folder = crash(tmp_path, mode)
    wait_for_writers(folder)
    (fragment,) = [n for n in os.listdir(folder) if n.endswith(".rec-frag")]
    assert fragment.startswith(".rl-video-episode-1.")
    survived = complete_fragment_frames(folder / fragment)
    # Frames 0-39 are 2 whole fragments once keyframe 40 is muxed (out of the encoder's
    # lookahead: docs/reliability.md). The encoder process that
    # outlived the training process also flushed the frames after it that it had been given
    # (a worker announces them in batches: the last may not have left the ring).
    assert survived >= 40
    if mode == "process":
        assert survived > 40
    # Every file under a final name is whole.
    assert_plain_faststart(folder / "rl-video-episode-0.mp4", 12)
    leftovers = hidden_names(folder)

    report = recorder.recover(folder)

    (video,) = report.recovered
    assert video.source == fragment
    assert video.path == folder / "rl-video-episode-1-partial.mp4"
    assert video.frames >= survived
    assert_plain_faststart(video.path, video.frames)
    sidecar = json.loads((folder / "rl-video-episode-1-partial.json").read_text())
    assert sidecar["frames"] == video.frames
    assert sidecar["partial"] is True
    assert sidecar["recovered_from"] == fragment
    assert sidecar["episode_index"] == 1
    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [r["path"] for r in manifest] == [
        "rl-video-episode-0.mp4",
        "rl-video-episode-1-partial.mp4",
    ]
    assert not report.skipped
    assert sorted([video.source] + [r.name for r in report.removed]) == leftovers
    assert all(r.name.endswith(".rec-tmp") for r in report.removed)
    assert hidden_names(folder) == []
    # Idempotent.
    again = recorder.recover(folder)
    assert again.nothing_done
    assert again == recorder.RecoveryReport(folder)
    assert_plain_faststart(folder / "rl-video-episode-0.mp4", 12)


# -- live writers, names, the CLI ---------------------------------------------------------------


def age(path: Path, seconds: float = 60) -> None:
    """Make *path* look *seconds* old (a leftover of a writer that died a while ago)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def open_encoder(folder: Path, name: str) -> PyAVEncoder:
    """A video being written in this process, as a recorder would (its tmp file first)."""
    tmp = folder / f".{name}.abcd1234.rec-tmp"
    tmp.touch()
    fd = os.open(tmp, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.close(fd)  # only the fragment file stays locked, by the encoder
    return PyAVEncoder(VideoSpec(str(tmp), FPS, Codec(), format_of(painted(0))))


def test_a_live_writer_is_never_touched(tmp_path: Path) -> None:
    encoder = open_encoder(tmp_path, "rl-video-episode-3")
    for i in range(25):
        encoder.write(painted(i))
    # An empty temporary file whose writer (here: this test) holds the lock.
    held = tmp_path / ".rl-video-step-7.efgh5678.rec-tmp"
    held.touch()
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}

    report = recorder.recover(tmp_path)

    assert not report.recovered
    assert not report.removed
    assert {s.name for s in report.skipped} == set(before)
    assert {s.reason for s in report.skipped} == {"its writer is alive"}
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before

    # The writers die: the encoder's process finishes its fragment file (as an orphaned
    # encoder process does), the test's lock goes.
    encoder.salvage()
    os.close(fd)
    report = recorder.recover(tmp_path)
    assert [(v.path.name, v.frames) for v in report.recovered] == [
        ("rl-video-episode-3-partial.mp4", 25)
    ]
    assert decode(tmp_path / "rl-video-episode-3-partial.mp4").indices == list(range(25))
    assert [(r.name, r.reason) for r in report.removed] == [
        (".rl-video-episode-3.abcd1234.rec-tmp", "its video was in the fragment file"),
    ]
    # Empty and just made, unlocked: a writer's that may be about to lock it; left alone.
    assert [(r.name, r.reason) for r in report.skipped] == [
        (held.name, "just created: its writer may be starting")
    ]
    age(held)  # its writer died a while ago
    report = recorder.recover(tmp_path)
    assert [(r.name, r.reason) for r in report.removed] == [(held.name, "empty")]
    assert hidden_names(tmp_path) == []
    assert recorder.recover(tmp_path).nothing_done


def test_recover_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "rl-video-episode-3-partial.mp4").write_bytes(b"mine")
    (tmp_path / "rl-video-episode-3-partial-2.json").write_bytes(b"{}")
    encoder = open_encoder(tmp_path, "rl-video-episode-3")
    for i in range(12):
        encoder.write(painted(i))
    encoder.salvage()
    (video,) = recorder.recover(tmp_path).recovered
    assert video.path.name == "rl-video-episode-3-partial-3.mp4"
    assert video.sidecar.name == "rl-video-episode-3-partial-3.json"
    assert (tmp_path / "rl-video-episode-3-partial.mp4").read_bytes() == b"mine"
    assert (tmp_path / "rl-video-episode-3-partial-2.json").read_bytes() == b"{}"
    assert decode(video.path).indices == list(range(12))


def test_a_partial_video_has_the_mode_open_gives(tmp_path: Path) -> None:
    encoder = open_encoder(tmp_path, "rl-video-episode-3")
    for i in range(12):
        encoder.write(painted(i))
    encoder.salvage()
    old = os.umask(0o027)
    try:
        (video,) = recorder.recover(tmp_path).recovered
        (tmp_path / "opened").write_bytes(b"")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (video.path, video.sidecar)}
    assert modes == dict.fromkeys(modes, stat.S_IMODE((tmp_path / "opened").stat().st_mode))
    assert modes[video.path.name] == 0o640


def test_a_fragment_file_without_a_whole_fragment_is_removed(tmp_path: Path) -> None:
    encoder = open_encoder(tmp_path, "rl-video-episode-0")
    for i in range(5):  # less than a fragment: still in the muxer's memory
        encoder.write(painted(i))
    fragment = next(n for n in os.listdir(tmp_path) if n.endswith(".rec-frag"))
    copy = tmp_path / ".rl-video-episode-1.zzzz9999.mp4.rec-frag"
    copy.write_bytes((tmp_path / fragment).read_bytes())  # what a SIGKILL now would leave
    encoder.abort()
    (tmp_path / ".rl-video-episode-0.abcd1234.rec-tmp").unlink()  # as the recorder does
    assert complete_fragment_frames(copy) == 0
    age(copy)  # its writer died a while ago (an empty one just made is left alone)
    report = recorder.recover(tmp_path)
    assert not report.recovered
    assert [(r.name, r.reason) for r in report.removed] == [
        (copy.name, "no complete fragment: no frame")
    ]
    assert os.listdir(tmp_path) == []


def test_a_corrupt_fragment_file_is_reported_and_the_others_recovered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoder = open_encoder(tmp_path, "rl-video-episode-1")
    for i in range(25):
        encoder.write(painted(i))
    encoder.salvage()
    (good,) = (p for p in tmp_path.iterdir() if p.name.endswith(".rec-frag"))
    whole = good.read_bytes()
    # A moof whose traf claims a 64-bit size its parent has no room for: corrupt, not cut.
    bad_moof = struct.pack(">I4sI4sI", 20, b"moof", 1, b"traf", 0)
    corrupt = tmp_path / ".rl-video-episode-2.zzzz9999.mp4.rec-frag"
    corrupt.write_bytes(whole + bad_moof + whole[-64:])
    garbage = tmp_path / ".rl-video-episode-3.yyyy8888.mp4.rec-frag"
    garbage.write_bytes(b"not a video at all, " * 50)

    assert main(["recover", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        f"skipped {garbage.name}: cannot be recovered: not an mp4: it does not start with an "
        "ftyp box\n" in out
    )
    assert out.endswith(f"2 recovered, 1 skipped, 1 removed in {tmp_path}\n")
    assert garbage.exists()  # left as it is, for whoever put it there
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".mp4")) == [
        "rl-video-episode-1-partial.mp4",
        "rl-video-episode-2-partial.mp4",  # every fragment before the corrupt box
    ]
    assert decode(tmp_path / "rl-video-episode-1-partial.mp4").indices == list(range(25))
    assert decode(tmp_path / "rl-video-episode-2-partial.mp4").indices == list(range(25))


def test_other_hidden_files_are_ignored(tmp_path: Path) -> None:
    names = [
        ".index.html.abcd1234.rec-tmp",  # the gallery writing its page
        ".rl-video-episode-0.abcd1234.json.rec-tmp",  # a sidecar being written
        ".notes",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert recorder.recover(tmp_path) == recorder.RecoveryReport(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(names)


def test_cli_recover(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    encoder = open_encoder(tmp_path, "rl-video-episode-2")
    for i in range(15):
        encoder.write(painted(i))
    encoder.salvage()
    assert main(["recover", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    recovered = "recovered .rl-video-episode-2.abcd1234.mp4.rec-frag"
    assert lines == [
        f"{recovered} -> rl-video-episode-2-partial.mp4 (15 frames)",
        "removed .rl-video-episode-2.abcd1234.rec-tmp: its video was in the fragment file",
        f"1 recovered, 0 skipped, 1 removed in {tmp_path}",
    ]
    assert main(["recover", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"0 recovered, 0 skipped, 0 removed in {tmp_path}\n"
    assert main(["recover", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err


# -- the normal path: plain faststart files, no fragment file left ----------------------------


@pytest.mark.parametrize("encode_in", ["process", "thread"])
@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_final_files_are_plain_faststart_mp4(tmp_path: Path, encode_in: str, codec: str) -> None:
    with Recorder(
        tmp_path, fps=FPS, episode_trigger=lambda e: True, codec=codec, encode_in=encode_in
    ) as rec:
        (handle,) = rec.submit([painted(i) for i in range(35)])
    info = handle.result()
    assert info.frames == 35
    assert info.size_bytes == info.path.stat().st_size
    assert_plain_faststart(info.path, 35)
    with av.open(str(info.path)) as container:
        stream = container.streams.video[0]
        assert float(stream.average_rate) == FPS
        assert stream.frames == 35
    assert hidden_names(tmp_path) == []


@pytest.mark.parametrize("encode_in", ["process", "thread"])
def test_no_fragment_file_after_a_drop_or_cancel(tmp_path: Path, encode_in: str) -> None:
    rec = Recorder(tmp_path, fps=FPS, episode_trigger=lambda e: True, encode_in=encode_in)
    ep = rec.episode(0)
    for i in range(25):
        ep.append(painted(i))
    rec.flush()  # encoded: its fragment file exists
    assert [n for n in os.listdir(tmp_path) if n.endswith(".rec-frag")]
    drop_episode(ep, "dropped by the test")  # how submit() drops a clip it cannot finish
    rec.flush()
    assert ep.handles[0].dropped
    assert hidden_names(tmp_path) == []
    ep = rec.episode(1)
    for i in range(25):
        ep.append(painted(i))
    rec.flush()
    rec.close(cancel=True)
    assert ep.handles[0].dropped
    assert os.listdir(tmp_path) == []


def old_leftover(tmp_path: Path) -> Path:
    """A dead writer's temporary file, a minute old, in ``tmp_path/videos``: a whole mp4 of 6
    frames (as left by a writer killed between its remux and its rename)."""
    with recorder.Recorder(tmp_path / "made", episode_trigger=always, sidecars=False) as rec:
        (handle,) = rec.submit([painted(i) for i in range(6)])
    folder = tmp_path / "videos"
    folder.mkdir()
    leftover = folder / ".rl-video-episode-3.abcd1234.rec-tmp"
    leftover.write_bytes(handle.result().path.read_bytes())
    age(leftover)
    return leftover


def test_a_leftover_its_writer_renamed_meanwhile_is_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # recover opens a leftover by name, then locks it: by then its writer may have finished
    # and given the file its final name (the descriptor is the saved video's).
    leftover = old_leftover(tmp_path)
    folder = leftover.parent
    final = folder / "rl-video-episode-3.mp4"
    lock = recover_module.lock_file

    def writer_finishes_first(fd: int, *, block: bool = True) -> bool:
        if leftover.exists():
            os.replace(leftover, final)
        return lock(fd, block=block)

    monkeypatch.setattr(recover_module, "lock_file", writer_finishes_first)
    assert recorder.recover(folder).nothing_done
    assert sorted(os.listdir(folder)) == ["rl-video-episode-3.mp4"]
    assert decode(final).indices == list(range(6))


def test_a_partial_whose_sidecar_cannot_be_written_is_not_left_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk after the copy: nothing is said recovered, nothing left to duplicate later.
    leftover = old_leftover(tmp_path)
    folder = leftover.parent
    write_sidecar = recover_module.write_sidecar

    def full(*args: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recover_module, "write_sidecar", full)
    report = recorder.recover(folder)
    assert not report.recovered
    assert [s.reason for s in report.skipped] == [
        "cannot be recovered: [Errno 28] No space left on device"
    ]
    assert sorted(os.listdir(folder)) == [leftover.name]
    monkeypatch.setattr(recover_module, "write_sidecar", write_sidecar)
    (video,) = recorder.recover(folder).recovered
    assert video.path.name == "rl-video-episode-3-partial.mp4"
    assert decode(video.path).indices == list(range(6))
