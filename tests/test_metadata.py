"""JSON sidecars and the per-folder manifest."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from helpers import Child, always, painted

from recorder import AsyncRecorder, Keep, Recorder
from recorder._testing import (
    build_gallery,
    folder_locked,
    keep_module,
    publishing,
    read_manifest,
    scan,
    writer_module,
)
from recorder.ray import SinkServer


def test_sidecar_describes_the_video_and_the_episode(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, fps=20, step_trigger=lambda s: s == 11, video_length=3)
    with rec, rec.episode(4, step_starting_index=10, metadata={"seed": 7}) as ep:
        for i in range(6):
            ep.append(painted(i, 41, 101))
        ep.metadata["return"] = 12.5
    (handle,) = ep.handles
    info = handle.result()
    side = json.loads((tmp_path / "rl-video-step-11.json").read_text())
    assert side["path"] == "rl-video-step-11.mp4"
    assert side["frames"] == 3
    assert side["fps"] == 20.0
    assert (side["width"], side["height"]) == (101, 41)
    assert (side["encoded_width"], side["encoded_height"]) == (102, 42)
    assert side["codec"] == "h264"
    assert side["episode_index"] == 4
    assert side["first_step"] == 11
    assert side["duration"] == 3 / 20
    assert side["size_bytes"] == info.path.stat().st_size
    assert side["encode_seconds"] > 0
    # The clip ended (video_length) before the return was known: the sidecar says what was.
    assert side["metadata"] == {"seed": 7}
    assert info.metadata == {"seed": 7}


def test_metadata_set_before_the_episode_ends_is_recorded(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, episode_trigger=lambda e: True)
    with rec, rec.episode(0, metadata={"checkpoint": "ckpt-3"}) as ep:
        ep.append(painted(0))
        ep.metadata["return"] = 1.0
    side = json.loads((tmp_path / "rl-video-episode-0.json").read_text())
    assert side["metadata"] == {"checkpoint": "ckpt-3", "return": 1.0}


def strict_json(text: str) -> Any:
    """JSON as the standard has it: NaN and Infinity are not numbers there."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))


def test_numpy_values_are_stored_as_json_numbers(tmp_path: Path) -> None:
    given = {
        "return": np.float32(10.5),
        "steps": np.int64(3),
        "solved": np.bool_(True),
        "obs": np.array([0.5, 1.5]),
        "pair": (1, 2),
        "checkpoint": Path("ckpt/3"),
    }
    stored = {
        "return": 10.5,
        "steps": 3,
        "solved": True,
        "obs": [0.5, 1.5],
        "pair": [1, 2],
        "checkpoint": "ckpt/3",
    }
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        (handle,) = rec.submit([painted(0)], metadata=given)
        with rec.episode(1) as ep:
            ep.append(painted(0))
            ep.metadata.update(given)
    for h, index in ((handle, 0), (ep.handles[0], 1)):
        info = h.result()
        assert info.metadata == stored
        assert type(info.metadata["return"]) is float  # on_saved sees what the files hold
        assert type(info.metadata["solved"]) is bool
        side = strict_json((tmp_path / f"rl-video-episode-{index}.json").read_text())
        assert side["metadata"] == stored
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert [strict_json(line)["metadata"] for line in lines] == [stored, stored]


def test_keep_ranks_by_the_values_the_sidecars_hold(tmp_path: Path) -> None:
    # np.float32 returns: ranked as the numbers the gallery plots from the sidecars.
    keep = {"best": 1, "by": "return"}
    with Recorder(tmp_path, keep=keep) as rec:
        for i, score in enumerate([np.float32(1.5), np.float32(7.25), np.float64(3.0)]):
            rec.submit([painted(i)], episode_index=i, metadata={"return": score})
    (kept,) = tmp_path.glob("*.json")
    assert strict_json(kept.read_text())["metadata"] == {"return": 7.25}
    ranked = [r for r in read_manifest(tmp_path) if r.get("event") == "keep"]
    assert [r["score"] for r in ranked] == [1.5, 7.25, 3.0]


def test_nan_and_infinities_are_stored_as_null(tmp_path: Path) -> None:
    given = {"loss": float("nan"), "return": -np.inf, "curve": [1.0, np.float32("nan")]}
    keep = {"best": 1, "by": "return"}  # no finite score: kept, unranked, as the sidecar says
    with Recorder(tmp_path, keep=keep) as rec:
        (handle,) = rec.submit([painted(0)], metadata=given)
    stored = {"loss": None, "return": None, "curve": [1.0, None]}
    assert handle.result().metadata == stored
    assert strict_json((tmp_path / "rl-video-episode-0.json").read_text())["metadata"] == stored
    (line,) = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert strict_json(line)["metadata"] == stored


class Opaque:
    pass


CYCLE: dict[str, Any] = {}
CYCLE["self"] = CYCLE

UNSTORABLE: list[tuple[Any, type[Exception], str]] = [
    ({(1, 2): 3}, TypeError, r"metadata has the key \(1, 2\) \(tuple\): JSON object keys are str"),
    ({"a": {"b": {1: 2}}}, TypeError, r"metadata\['a'\]\['b'\] has the key 1 \(int\)"),
    (CYCLE, ValueError, r"metadata\['self'\] refers back to a container it is in"),
    ({"o": Opaque()}, TypeError, r"metadata\['o'\] is .*Opaque.*, which JSON cannot store"),
    ({"s": [{1, 2}]}, TypeError, r"metadata\['s'\]\[0\] is \{1, 2\} \(set\)"),
    ({"z": 1j}, TypeError, "complex"),
    # JSON would write it, but the gallery and keep's ranking read numbers as floats.
    ({"return": 10**400}, ValueError, r"metadata\['return'\] is an int of 1329 bits"),
    ({"a": {"b": [2**1024]}}, ValueError, r"metadata\['a'\]\['b'\]\[0\] is an int of 1025"),
    ([("a", 1)], TypeError, "metadata must be a mapping, got"),
]


@pytest.mark.parametrize(("metadata", "error", "match"), UNSTORABLE)
def test_metadata_json_cannot_store_is_refused_at_the_call(
    tmp_path: Path, metadata: Any, error: type[Exception], match: str
) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        with pytest.raises(error, match=match):
            rec.submit([painted(0)], metadata=metadata)
        with pytest.raises(error, match=match):
            rec.episode(1, metadata=metadata)
        assert rec.stats().videos_started == 0
        (handle,) = rec.submit([painted(0)], metadata={"fine": 1})  # the recorder goes on
    assert handle.result().metadata == {"fine": 1}
    assert strict_json((tmp_path / "rl-video-episode-0.json").read_text())["metadata"] == {
        "fine": 1
    }


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ((1, 2), 3, TypeError),
        ("a", {"b": {1: 2}}, TypeError),
        ("self", CYCLE, ValueError),
        ("o", Opaque(), TypeError),
        ("s", [{1, 2}], TypeError),
    ],
)
def test_metadata_added_during_the_episode_is_checked_when_it_ends(
    tmp_path: Path, key: Any, value: Any, error: type[Exception]
) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        ep = rec.episode(0, metadata={"seed": 7})
        ep.append(painted(0))
        ep.metadata[key] = value
        ep.metadata["return"] = 2.5
        with pytest.raises(error, match=r"^ep\.metadata") as raised:
            ep.close()
    assert "episode 0's videos are saved without it" in raised.value.__notes__
    # Saved, with what could be stored: no video whose sidecar or manifest line went missing.
    info = ep.handles[0].result()
    assert info.metadata == {"seed": 7, "return": 2.5}
    assert strict_json((tmp_path / "rl-video-episode-0.json").read_text())["metadata"] == {
        "seed": 7,
        "return": 2.5,
    }
    assert [r["name"] for r in read_manifest(tmp_path)] == ["rl-video-episode-0"]
    assert rec.stats().errors == ()


def test_bad_metadata_at_the_end_of_a_with_block(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, episode_trigger=lambda e: True)
    episodes = []

    def record(index: int, fail: bool) -> None:
        with rec.episode(index) as ep:
            episodes.append(ep)
            ep.append(painted(index))
            ep.metadata["o"] = Opaque()
            if fail:
                raise KeyError("the user's")

    with rec:
        with pytest.raises(TypeError, match=r"ep\.metadata\['o'\] is .*JSON cannot store"):
            record(0, fail=False)
        # The block's own exception goes first; the metadata's is a note on it.
        with pytest.raises(KeyError, match="the user's") as raised:
            record(1, fail=True)
    assert any("when episode 1 ended: ep.metadata['o']" in n for n in raised.value.__notes__)
    assert [ep.handles[0].result().metadata for ep in episodes] == [{}, {}]


def test_async_episode_checks_its_metadata_when_it_ends(tmp_path: Path) -> None:
    async def record(rec: AsyncRecorder) -> None:
        async with rec.episode(0) as ep:
            await ep.append(painted(0))
            ep.metadata["o"] = Opaque()

    async def main() -> None:
        async with AsyncRecorder(tmp_path, episode_trigger=lambda e: True) as rec:
            with pytest.raises(TypeError, match=r"ep\.metadata\['o'\]"):
                await record(rec)
            with pytest.raises(ValueError, match="reference cycle"):
                rec.episode(1, metadata=CYCLE)

    anyio.run(main)
    assert strict_json((tmp_path / "rl-video-episode-0.json").read_text())["metadata"] == {}


def test_a_clip_ended_early_stores_what_was_set_when_it_started(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, episode_trigger=lambda e: True, video_length=2)
    with rec, rec.episode(0) as ep:
        ep.metadata["seed"] = np.int64(5)  # before its first frame: the clip stores it
        for i in range(4):
            ep.append(painted(i))
        ep.metadata["return"] = 1.0  # after it ended
    assert ep.handles[0].result().metadata == {"seed": 5}


def test_sidecar_records_the_settings_used_and_where_the_episode_starts(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, episode_trigger=lambda e: True)  # codec defaults
    with rec:
        rec.submit([painted(i) for i in range(3)], episode_index=2, step_starting_index=40)
    side = json.loads((tmp_path / "rl-video-episode-2.json").read_text())
    # The reset frame is followed by step 40: the clip is placed in the run's step count.
    assert (side["episode_index"], side["first_step"]) == (2, 40)
    # Adaptive quality: an empty queue allows the most size-efficient preset, all along.
    assert (side["crf"], side["preset"], side["encoder"]) == (23, "veryfast", "libx264")
    assert side["preset_changes"] == []
    assert side["pix_fmt"] == "yuv420p"
    assert side["dropped_frames"] == 0
    with Recorder(tmp_path / "gif", episode_trigger=lambda e: True, codec="gif") as rec:
        rec.submit([painted(0)])
    side = json.loads((tmp_path / "gif" / "rl-video-episode-0.json").read_text())
    assert (side["crf"], side["preset"]) == (None, None)  # nothing of the kind applies


def test_manifest_one_line_per_video_from_many_writers(tmp_path: Path) -> None:
    script = (
        "import sys, numpy as np, recorder\n"
        "with recorder.Recorder(sys.argv[1], name_prefix=sys.argv[2],"
        " episode_trigger=lambda e: True) as rec:\n"
        "    for e in range(5):\n"
        "        rec.submit([np.zeros((16, 16, 3), np.uint8)] * 2, episode_index=e)\n"
    )

    def threaded(prefix: str) -> None:
        with Recorder(tmp_path, name_prefix=prefix, episode_trigger=lambda e: True) as rec:
            for e in range(5):
                rec.submit([painted(e)] * 2, episode_index=e)

    threads = [threading.Thread(target=threaded, args=(f"thread{i}",)) for i in range(2)]
    with Child(script, tmp_path, "proc0") as first, Child(script, tmp_path, "proc1") as second:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert (first.wait(), second.wait()) == (0, 0)
    records = read_manifest(tmp_path)
    assert len(records) == 20
    assert sorted(r["path"] for r in records) == sorted(p.name for p in tmp_path.glob("*.mp4"))


def test_sidecars_can_be_turned_off(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True, sidecars=False) as rec:
        rec.submit([painted(0)])
    assert [p.name for p in tmp_path.iterdir()] == ["rl-video-episode-0.mp4"]


def test_a_video_and_its_sidecar_are_one_step_for_other_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two writers of one name (Recorders, processes) could leave one's sidecar beside the
    # other's video: the folder is locked from the video's rename to its manifest line.
    seen = []
    write, append = writer_module.write_sidecar, writer_module.append_manifest

    def write_sidecar(info: Any, record: dict[str, Any]) -> str:
        seen.append(("sidecar", info.path.exists(), folder_locked(tmp_path)))
        return write(info, record)

    def append_manifest(folder: Any, record: dict[str, Any]) -> None:
        seen.append(("manifest", True, folder_locked(tmp_path)))
        append(folder, record)

    monkeypatch.setattr(writer_module, "write_sidecar", write_sidecar)
    monkeypatch.setattr(writer_module, "append_manifest", append_manifest)
    with Recorder(tmp_path, episode_trigger=always) as rec:
        rec.submit([painted(0)] * 2)
    assert seen == [("sidecar", True, (True, True)), ("manifest", True, (True, True))]
    assert folder_locked(tmp_path) == (False, False)


def test_a_child_forked_while_the_folder_was_locked_does_not_keep_it_locked(
    tmp_path: Path,
) -> None:
    # The flock is the open file's, which a child shares: it closes its copy at the fork.
    read_end, write_end = os.pipe()
    started_read, started_write = os.pipe()
    with publishing(tmp_path):
        pid = os.fork()
        if pid == 0:  # the child (its fork hooks run) says so, waits for the parent's word
            os.close(write_end)
            os.write(started_write, b"1")
            os.read(read_end, 1)
            os._exit(0)
    os.close(read_end)
    os.close(started_write)
    try:
        assert os.read(started_read, 1) == b"1"
        os.close(started_read)
        assert folder_locked(tmp_path) == (False, False)  # the child still alive
        with Recorder(tmp_path, episode_trigger=always) as rec:
            (handle,) = rec.submit([painted(0)] * 2)
        assert handle.result(timeout=10).frames == 2
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


def test_an_earlier_sidecar_that_cannot_be_deleted_is_an_error_not_a_failed_video(
    tmp_path: Path,
) -> None:
    (tmp_path / "rl-video-episode-0.json").mkdir()  # not deletable as a file
    rec = Recorder(tmp_path, episode_trigger=always, sidecars=False)
    (handle,) = rec.submit([painted(0)] * 2)
    assert handle.result(timeout=10).frames == 2
    with pytest.raises(IsADirectoryError):
        rec.close()
    assert (rec.stats().videos_saved, rec.stats().videos_failed) == (1, 0)


def test_a_sidecar_that_cannot_be_written_leaves_none_rather_than_an_earlier_videos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Recorder(tmp_path, episode_trigger=always) as rec:
        rec.submit([painted(0)] * 5)
    sidecar = tmp_path / "rl-video-episode-0.json"
    assert json.loads(sidecar.read_text())["frames"] == 5

    def full(info: Any, record: dict[str, Any]) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_module, "write_sidecar", full)
    rec = Recorder(tmp_path, episode_trigger=always)
    (handle,) = rec.submit([painted(0)] * 2)
    with pytest.raises(OSError, match="No space left"):
        rec.close()
    assert handle.result().frames == 2  # the video is saved; its sidecar is not there
    assert not sidecar.exists()


def test_keep_deletes_a_video_and_its_sidecars_in_one_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    companions = keep_module.companions

    def watched(video: Path) -> list[Path]:
        seen.append(folder_locked(tmp_path))
        return companions(video)

    monkeypatch.setattr(keep_module, "companions", watched)
    with Recorder(tmp_path, episode_trigger=always, keep=Keep(best=1, by="return")) as rec:
        for e in range(2):
            rec.submit([painted(e)] * 2, episode_index=e, metadata={"return": float(e)})
    assert seen == [(True, True)]
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["rl-video-episode-1.mp4"]


def test_a_new_video_takes_away_what_described_the_earlier_one_of_its_name(
    tmp_path: Path,
) -> None:
    # A second run into the same folder: its video without per-frame info must not show the
    # first run's timeline; one without sidecars must not keep the first run's sidecar.
    beside = ("rl-video-episode-0.json", "rl-video-episode-0.timeline.json",
              "rl-video-episode-0.vtt")  # fmt: skip
    with Recorder(tmp_path, episode_trigger=always) as rec, rec.episode(0) as ep:
        for i in range(5):
            ep.append(painted(i), info={"reward": float(i)})
    assert all((tmp_path / name).exists() for name in beside)
    with Recorder(tmp_path, episode_trigger=always) as rec, rec.episode(0) as ep:
        for i in range(3):
            ep.append(painted(i))
    assert [(tmp_path / name).exists() for name in beside] == [True, False, False]
    (entry,) = scan(tmp_path)
    assert (entry.timeline, entry.captions, entry.info["frames"]) == (None, None, 3)
    with Recorder(tmp_path, episode_trigger=always) as rec, rec.episode(0) as ep:
        ep.append(painted(0), info={"reward": 1.0})
    assert all((tmp_path / name).exists() for name in beside)
    with Recorder(tmp_path, episode_trigger=always, sidecars=False) as rec:
        rec.submit([painted(0)], episode_index=0)
    assert not any((tmp_path / name).exists() for name in beside)


@pytest.mark.parametrize("mask", [0o027, 0o002])
def test_final_files_have_the_mode_of_gymnasium_s_under_a_umask(tmp_path: Path, mask: int) -> None:
    from gymnasium.utils.save_video import save_video

    frames = [painted(i) for i in range(4)]
    old = os.umask(mask)
    try:
        save_video(frames, str(tmp_path / "gym"), fps=10, episode_trigger=always)  # moviepy
        with Recorder(tmp_path / "rec", fps=10, episode_trigger=always) as rec:
            rec.submit(frames)
        build_gallery(tmp_path / "rec")
        (tmp_path / "sink").mkdir()
        SinkServer(str(tmp_path / "sink")).deliver("p", "d0", "v.mp4", b"bytes", {})
    finally:
        os.umask(old)
    reference = stat.S_IMODE((tmp_path / "gym" / "rl-video-episode-0.mp4").stat().st_mode)
    assert reference == 0o666 & ~mask
    modes = {
        f"{p.parent.name}/{p.name}": stat.S_IMODE(p.stat().st_mode)
        for folder in ("rec", "sink")
        for p in (tmp_path / folder).iterdir()
        if not p.name.startswith(".")  # the sink's lock file
    }
    assert modes == dict.fromkeys(
        [
            "rec/rl-video-episode-0.mp4",
            "rec/rl-video-episode-0.json",
            "rec/manifest.jsonl",
            "rec/index.html",
            "sink/p-v.mp4",
            "sink/p-v.json",
            "sink/manifest.jsonl",
        ],
        reference,
    )
