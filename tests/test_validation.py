"""Bad input: a clear TypeError/ValueError at the call that received it; the recorder goes on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from helpers import decode, painted, run_child

import recorder
from recorder import Recorder
from recorder._testing import (
    FRAGMENT_SUFFIX,
    MAX_PREFIX_BYTES,
    NAME_MAX,
    RECOVER_SUFFIX,
    TMP_SUFFIX,
    as_image,
    writer_module,
)


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[Recorder]:
    r = Recorder(
        tmp_path / "v",
        episode_trigger=lambda e: True,
        step_trigger=lambda s: s == 1,
        video_length=3,
    )
    yield r
    # The recorder is still usable after every rejected call, and wrote nothing bad.
    (h,) = [
        h for h in r.submit([painted(i) for i in range(2)], episode_index=99) if h.kind == "episode"
    ]
    r.close()
    assert decode(h.result().path).indices == [0, 1]
    for p in (tmp_path / "v").iterdir():
        assert p.suffix in (".mp4", ".json", ".jsonl")
        assert not p.name.startswith(".")


GOOD = painted(0)

BAD_FRAMES: dict[str, tuple[Any, type[Exception], str]] = {
    # gymnasium's writer would save these black: the hint scales them.
    "float-0..1": (GOOD.astype(np.float32) / 255, ValueError, r"\(frame \* 255\)"),
    "float-over-255": (GOOD + 300.0, ValueError, "0..255, got 340..340; e.g. np.clip"),
    "float-nan": (np.full((4, 4, 3), np.nan), ValueError, "0..255"),
    "int64-over-255": (GOOD.astype(np.int64) + 256, ValueError, "0..255"),
    "bool": (GOOD > 100, TypeError, r"astype\(np.uint8\) \* 255"),
    "complex": (GOOD.astype(np.complex64), TypeError, "uint8"),
    "1-d": (np.zeros(10, np.uint8), ValueError, "HxW"),
    "4-d": (np.zeros((1, 4, 4, 3), np.uint8), ValueError, "HxW"),
    "2-channels": (np.zeros((4, 4, 2), np.uint8), ValueError, "channels"),
    "5-channels": (np.zeros((4, 4, 5), np.uint8), ValueError, "channels"),
    "zero-height": (np.zeros((0, 4, 3), np.uint8), ValueError, "empty"),
    "zero-width": (np.zeros((4, 0, 3), np.uint8), ValueError, "empty"),
    "none": (None, TypeError, "array"),
    "string": ("frame", TypeError, "array"),
    "list-out-of-range": ([[300, 0], [0, 0]], ValueError, "0..255"),
    "ragged-list": ([[1, 2], [3]], TypeError, "array"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frame_in_append(rec: Recorder, case: str) -> None:
    frame, error, match = BAD_FRAMES[case]
    with rec.episode(0) as ep:
        with pytest.raises(error, match=match):
            ep.append(frame)
        ep.append(painted(0))  # the episode goes on
    assert ep.handles[0].result().frames == 1


def test_bad_frame_messages_do_not_suggest_an_overflow() -> None:
    with pytest.raises(ValueError, match=r"0\.\.255") as over:
        as_image(GOOD + 300.0)
    assert "* 255" not in str(over.value)  # these are 0..255 already, only too large


def test_float_and_int_frames_are_taken_as_gymnasium_takes_them(tmp_path: Path) -> None:
    # gymnasium's writer (moviepy) casts them: floats in 0..255 are truncated, ints kept.
    assert as_image(np.full((2, 2, 3), 10.75, np.float32)).tolist() == [[[10] * 3] * 2] * 2
    assert as_image(np.full((2, 2), 1.0)).dtype == np.uint8  # a 0/1 image is not a fraction
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        floats = rec.submit([painted(i) + np.float32(0.75) for i in range(3)], episode_index=0)
        ints = rec.submit([painted(i).astype(np.int64) for i in range(3)], episode_index=1)
        with rec.episode(2) as ep:
            for i in range(3):
                ep.offer(lambda i=i: painted(i).astype(np.float64).tolist())
    for handle in (floats[0], ints[0], ep.handles[0]):
        assert decode(handle.result().path).indices == [0, 1, 2]


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frame_in_submit_queues_nothing(rec: Recorder, case: str) -> None:
    frame, error, _ = BAD_FRAMES[case]
    with pytest.raises(error, match="frame 2"):
        rec.submit([painted(0), painted(1), frame, painted(3)], episode_index=0)
    assert rec.stats().videos_started == 0


def test_shape_change_within_a_clip(rec: Recorder) -> None:
    with rec.episode(0) as ep:
        ep.append(painted(0, 48, 112))
        with pytest.raises(ValueError, match="shape changed"):
            ep.append(painted(1, 50, 112))
        with pytest.raises(ValueError, match="shape changed"):
            ep.append(painted(1, channels=1))
        ep.append(painted(1))
    with pytest.raises(ValueError, match="frame 1 has shape"):
        rec.submit([painted(0), painted(1, 50, 112)])


def test_empty_frame_list(rec: Recorder) -> None:
    with pytest.raises(ValueError, match="empty"):
        rec.submit([])


@pytest.mark.parametrize("frames", [42, "abc", (f for f in [GOOD]), {"a": GOOD}, GOOD[0]])
def test_frames_not_a_sequence(rec: Recorder, frames: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="frames"):
        rec.submit(frames)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"episode_index": -1}, ValueError),
        ({"step_starting_index": -5}, ValueError),
        ({"episode_index": 1.5}, TypeError),
        ({"episode_index": True}, TypeError),
    ],
)
def test_bad_indices(rec: Recorder, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="index"):
        rec.submit([GOOD], **kwargs)
    with pytest.raises(error, match="index"):
        rec.episode(**kwargs)


def test_trigger_exception_propagates_from_the_call(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    def trigger(i: int) -> bool:
        if i == 3:
            raise Boom
        return True

    with Recorder(tmp_path, episode_trigger=trigger, step_trigger=trigger, video_length=2) as r:
        with pytest.raises(Boom):
            r.episode(3)
        with pytest.raises(Boom):
            r.submit([painted(i) for i in range(6)], episode_index=0, step_starting_index=0)
        with r.episode(0) as ep:
            for i in range(4):
                ep.append(painted(i))
            with pytest.raises(Boom):  # frame 4 is step 3
                ep.append(painted(4))
        r.submit([painted(i) for i in range(2)], episode_index=5)
    assert (tmp_path / "rl-video-episode-5.mp4").exists()


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"fps": 0}, ValueError, "fps"),
    ({"fps": -30}, ValueError, "fps"),
    ({"fps": float("nan")}, ValueError, "fps"),
    ({"fps": float("inf")}, ValueError, "fps"),
    ({"fps": "30"}, TypeError, "fps"),
    ({"video_length": 0}, ValueError, "video_length"),
    ({"video_length": -3}, ValueError, "video_length"),
    ({"video_length": 2.5}, TypeError, "video_length"),
    ({"name_prefix": "a/b"}, ValueError, "name_prefix"),
    ({"name_prefix": "../up"}, ValueError, "name_prefix"),
    ({"name_prefix": ".."}, ValueError, "name_prefix"),
    ({"name_prefix": "a\\b"}, ValueError, "name_prefix"),
    ({"name_prefix": "a\0b"}, ValueError, "name_prefix"),
    ({"name_prefix": 3}, TypeError, "name_prefix"),
    ({"workers": 0}, ValueError, "workers"),
    ({"max_queue_bytes": 0}, ValueError, "max_queue_bytes"),
    ({"on_full": "wait"}, ValueError, "on_full"),
    ({"episode_trigger": 5}, TypeError, "episode_trigger"),
    ({"codec": "mjpeg"}, ValueError, "codec"),
    ({"fps": 1e-4}, ValueError, "at least 1/1001"),  # mp4's rate would round to 0
    ({"codec": "gif", "fps": 120}, ValueError, "hundredths"),
    ({"fps": 1e9}, ValueError, "fps must be at most 100,000"),  # past the encoders' time bases
    ({"fps": 10**400}, ValueError, "fps must be at most 100,000"),  # no float holds it
    ({"codec": "av1", "fps": 240.5}, ValueError, "SVT-AV1 takes at most 240 fps"),
    ({"fps": 0.003, "frame_stride": 10}, ValueError, "at least 1/1001"),  # the videos' fps
    ({"fps": 0.5, "frame_stride": 1000}, ValueError, "at least 1/1001"),  # rounds up to 1/1001
    ({"codec": "vp9", "fps": 1000.5}, ValueError, "WebM stores timestamps in milliseconds"),
    ({"codec": "gif", "fps": 0.0015}, ValueError, "frame delays up to 655.35 s"),  # wraps
    ({"codec": "gif", "fps": 1, "frame_stride": 1000}, ValueError, "up to 655.35 s"),
    ({"codec": "vp9", "preset": "\u0663"}, ValueError, "cpu-used level"),  # int() reads it
    ({"crf": 99}, ValueError, "crf for codec h264 must lie in 0..51, got 99"),
    ({"crf": 20.5}, TypeError, "crf must be an int"),
    ({"preset": "turbo"}, ValueError, "preset 'turbo' is not an x264/x265 preset"),
    ({"preset": "warp-speed"}, ValueError, "is not an x264/x265 preset"),
    ({"codec": "vp9", "preset": "fast"}, ValueError, "cpu-used level, an integer -8..8"),
    ({"codec": "vp9", "preset": 4}, TypeError, "preset must be a str"),
    ({"codec": "h265", "crf": 60}, ValueError, "crf for codec h265 must lie in 0..51"),
    ({"codec": "vp9", "crf": 64}, ValueError, "0..63"),
    ({"codec": "av1", "preset": "fast"}, ValueError, "SVT-AV1 preset, an integer 0..13"),
    ({"codec": "av1", "preset": "14"}, ValueError, "SVT-AV1 preset, an integer 0..13"),
    ({"codec": "av1", "crf": 70}, ValueError, "crf for codec av1 must lie in 0..63"),
    ({"frame_stride": 0}, ValueError, "frame_stride must be >= 1"),
    ({"codec": "gif", "crf": 10}, ValueError, "crf does not apply to codec gif"),
    ({"codec": "gif", "preset": "fast"}, ValueError, "preset does not apply to codec gif"),
    ({"on_saved": 5}, TypeError, "on_saved must be callable or None, got 5"),
    ({"name_prefix": "x" * 300}, ValueError, "name_prefix must be at most 166 bytes, got 300"),
    ({"name_prefix": "é" * 84}, ValueError, "got 168"),  # bytes, not characters
    ({"name_prefix": ".run"}, ValueError, "must not start with '.'"),
    ({"video_folder": 3}, TypeError, "video_folder must be a str or os.PathLike"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_OPTIONS)
def test_bad_options(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Recorder(**{"video_folder": tmp_path / "x", **kwargs})
    assert not (tmp_path / "x").exists() or not os.listdir(tmp_path / "x")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"preset": "turbo"},
        {"name": "vp9", "preset": "fast"},
        {"name": "h265", "crf": 60},
        {"name": "gif", "crf": 10},
        {"crf": 99},
        {"threads": "2"},
        {"options": {"crf": 20}},
    ],
)
def test_codec_refuses_what_its_encoder_would(kwargs: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        recorder.Codec(**kwargs)


def test_codec_settings_its_encoder_takes_pass(tmp_path: Path) -> None:
    codecs = [
        recorder.Codec("h264", crf=51, preset="veryfast"),
        recorder.Codec("vp9", crf=63, preset="-8"),
        recorder.Codec("h265", crf=0, preset="placebo"),
        recorder.Codec("gif"),
    ]
    for i, codec in enumerate(codecs):
        with Recorder(tmp_path / str(i), codec=codec, episode_trigger=lambda e: True) as rec:
            (handle,) = rec.submit([painted(k) for k in range(8)])
        assert decode(handle.result().path).indices == list(range(8))


def test_a_fraction_is_an_fps_as_for_gymnasiums_save_video(tmp_path: Path) -> None:
    with Recorder(tmp_path, fps=Fraction(30000, 1001), episode_trigger=lambda _: True) as rec:
        (own,) = rec.submit([GOOD, GOOD], episode_index=0)
        (given,) = rec.submit([GOOD, GOOD], episode_index=1, fps=Fraction(15))
    assert own.result().fps == pytest.approx(29.97, abs=0.001)
    assert given.result().fps == 15.0


def test_bad_fps_per_episode(rec: Recorder) -> None:
    with pytest.raises(ValueError, match="fps"):
        rec.submit([GOOD], fps=0)
    with pytest.raises(ValueError, match="fps"):
        rec.episode(0, fps=float("nan"))
    with pytest.raises(ValueError, match="at least 1/1001"):
        rec.submit([GOOD], fps=1e-4)
    rec.submit([GOOD], fps=1 / 1000)  # the slowest rate an mp4 here is given


def test_fps_a_gif_cannot_store_is_refused_at_the_call(tmp_path: Path) -> None:
    from helpers import TinyEnv

    from recorder.wrappers import RecordVideo

    with Recorder(tmp_path, codec="gif", episode_trigger=lambda e: True) as gif:
        with pytest.raises(ValueError, match="hundredths"):
            gif.episode(0, fps=100.5)
        with pytest.raises(ValueError, match="hundredths"):
            RecordVideo(TinyEnv(), str(tmp_path / "w"), fps=144, recorder=gif)
        with pytest.raises(ValueError, match="browsers play delays under 2 as 10"):
            gif.submit([GOOD, GOOD], fps=60)  # delays of 2 and 1: played 5x too slowly
        handle = gif.submit([GOOD, GOOD], fps=50)[0]
    with pytest.raises(ValueError, match="hundredths"):  # its private Recorder is closed again
        RecordVideo(TinyEnv(), str(tmp_path / "p"), fps=144, recorder_kwargs={"codec": "gif"})
    assert handle.result().fps == 50


EXTREME_FPS = [("h264", 99_999.9991), ("h265", 99_999.9991), ("vp9", 999.9991),
               ("gif", 100 / 65535 + 1e-9)]  # fmt: skip


@pytest.mark.parametrize(("codec", "fps"), EXTREME_FPS)
def test_the_extreme_fps_taken_are_ones_every_encoder_writes(
    tmp_path: Path, codec: str, fps: float
) -> None:
    # Refused past them at the call (above); at them, with the widest frame-rate fraction (a
    # denominator of 1001), the encoder opens, the file decodes and every frame has its time.
    with Recorder(tmp_path, codec=codec, fps=fps, encode_in="thread", health=False) as rec:
        (handle,) = rec.submit([painted(i) for i in range(3)])
    path = handle.result().path
    if codec != "gif":  # its colours are coarse; its times are what is checked here
        assert decode(path).indices == [0, 1, 2]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(frame.time) for frame in container.decode(stream)]
    assert times == pytest.approx([i / fps for i in range(3)], rel=0.02, abs=1e-3)


def test_an_episodes_own_fps_is_checked_as_its_videos_get_it(tmp_path: Path) -> None:
    # With frame_stride=10 the videos play at fps / 10: that is the rate an mp4 must store.
    with Recorder(tmp_path, frame_stride=10, episode_trigger=lambda e: True) as rec:
        with pytest.raises(ValueError, match="at least 1/1001"):
            rec.episode(0, fps=0.003)
        with pytest.raises(ValueError, match="at least 1/1001"):
            rec.submit([GOOD], fps=0.003)
        with pytest.raises(ValueError, match="fps must be at most 100,000"):
            rec.submit([GOOD], fps=1e19)
        (handle,) = rec.submit([GOOD] * 10, fps=0.01)  # 0.001 fps: the slowest taken
    assert handle.result().frames == 1
    assert rec.stats().videos_failed == 0
    from helpers import TinyEnv

    from recorder.wrappers import RecordVideo

    with pytest.raises(ValueError, match="at least 1/1001"):
        RecordVideo(TinyEnv(), str(tmp_path / "w"), fps=0.003, frame_stride=10)


def test_files_never_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "inner"
    with pytest.raises(ValueError, match="name_prefix"):
        Recorder(folder, name_prefix="..rl")
    with Recorder(folder, name_prefix=" odd .name-", episode_trigger=lambda e: True) as r:
        r.submit([GOOD], episode_index=123456789)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "inner",
        "inner/ odd .name--episode-123456789.json",
        "inner/ odd .name--episode-123456789.mp4",
        "inner/manifest.jsonl",
    ]


def test_a_folder_that_is_a_file_is_refused_at_the_call(tmp_path: Path) -> None:
    from helpers import TinyEnv

    from recorder.wrappers import RecordVideo

    file = tmp_path / "videos"
    file.write_text("not a folder")
    with pytest.raises(ValueError, match=r"video_folder .*videos' exists and is not a folder"):
        Recorder(file)
    with pytest.raises(ValueError, match="is not a folder"):
        RecordVideo(TinyEnv(), str(file))
    with Recorder(tmp_path / "shared") as shared, pytest.raises(ValueError, match="not a folder"):
        RecordVideo(TinyEnv(), str(file), recorder=shared)
    assert file.read_text() == "not a folder"


def test_offer_given_a_frame_names_its_type_not_its_pixels(rec: Recorder) -> None:
    frame = np.zeros((400, 600, 3), np.uint8)
    with rec.episode(0) as ep:
        with pytest.raises(TypeError) as raised:
            ep.offer(frame)  # type: ignore[arg-type]
        ep.offer(lambda: GOOD)  # the episode goes on
    message = str(raised.value)
    assert "ndarray of shape (400, 600, 3) and dtype uint8" in message
    assert "env.render, not env.render()" in message
    assert len(message) < 200
    assert "\n" not in message


def test_async_offer_given_a_frame_names_its_type(tmp_path: Path) -> None:
    import anyio

    async def main() -> str:
        async with recorder.AsyncRecorder(tmp_path) as rec, rec.episode(0) as ep:
            with pytest.raises(TypeError, match=r"env\.render") as raised:
                await ep.offer(np.zeros((400, 600, 3), np.uint8))  # type: ignore[arg-type]
        return str(raised.value)

    message = anyio.run(main)
    assert "ndarray of shape (400, 600, 3)" in message
    assert len(message) < 200


@pytest.mark.parametrize(
    ("codec", "shape", "match"),
    [
        ("h264", (16, 20000, 3), "20000x16 .* at most 16384 pixels a side"),
        ("h264", (16385, 16, 3), "padded to 16x16386"),
        ("h265", (8, 8, 3), "at least 16 pixels a side"),
        ("h265", (16, 4100, 3), "at most 4096 pixels a side when a side is under 32"),
        ("h265", (32, 48, 3), "no width from 33 to 48 pixels"),  # libx265 would corrupt memory
        ("h265", (200, 33, 3), r"33x200 .*, padded to 34x200, .* no width from 33 to 48"),
        ("gif", (2, 65535), "padded to 65536x2"),
        ("av1", (2, 2, 3), "at least 4 pixels a side"),
        ("av1", (8706, 8, 3), "at most 8704 pixels high"),
    ],
)
def test_frames_the_codec_cannot_take_are_refused_at_the_call(
    tmp_path: Path, codec: str, shape: tuple[int, ...], match: str
) -> None:
    frame = np.zeros(shape, np.uint8)
    with Recorder(tmp_path, codec=codec, episode_trigger=lambda e: True) as r:
        with pytest.raises(ValueError, match=match):
            r.submit([frame])
        with r.episode(0) as ep:
            with pytest.raises(ValueError, match=match):
                ep.append(frame)
            for _ in range(8):  # the episode goes on
                ep.append(np.zeros((16, 16, 3), np.uint8))
        assert r.stats().videos_started == 1
    assert ep.handles[0].result().frames == 8


def test_the_limit_is_the_codecs(tmp_path: Path) -> None:
    # libvpx takes what libx264 does not (measured: up to 65536 a side).
    with Recorder(tmp_path, codec="vp9", episode_trigger=lambda e: True) as r:
        (handle,) = r.submit([np.zeros((16, 20000, 3), np.uint8)])
    assert decode(handle.result().path).width == 20000


def test_a_wrapper_refuses_a_frame_its_codec_cannot_take(tmp_path: Path) -> None:
    from helpers import TinyEnv

    from recorder.wrappers import RecordVideo

    class Wide(TinyEnv):
        def render(self) -> Any:
            return np.zeros((16, 20000, 3), np.uint8)

    env = RecordVideo(Wide(), str(tmp_path / "w"), episode_trigger=lambda e: True)
    with pytest.raises(ValueError, match="16384 pixels a side"):
        env.reset()
    with pytest.warns(UserWarning, match="zero frames"):  # as gymnasium warns
        env.close()
    assert not list((tmp_path / "w").iterdir())


def test_the_longest_prefix_and_index_make_names_that_fit(tmp_path: Path) -> None:
    prefix = "é" * (MAX_PREFIX_BYTES // 2) + "x" * (MAX_PREFIX_BYTES % 2)
    index = 10**20 - 1
    stem = f"{prefix}-env-{index}-episode-{index}"  # the vector wrappers' longest
    random = "x" * 8  # tempfile's names
    names = [f".{stem}.{random}{TMP_SUFFIX}", f".{stem}.{random}.json{TMP_SUFFIX}"]
    for ext in (".mp4", ".webm", ".gif"):  # every codec's container (webm: vp9)
        names += [
            f".{stem}.{random}{ext}{FRAGMENT_SUFFIX}",
            f".{stem}-partial{ext}.{random}{RECOVER_SUFFIX}",
            f"{stem}-partial-99{ext}",
        ]
    for name in names:
        assert len(os.fsencode(name)) <= NAME_MAX, name
    with Recorder(tmp_path, name_prefix=prefix, episode_trigger=lambda e: True) as r:
        (handle,) = r.submit([GOOD], episode_index=index)
        with pytest.raises(ValueError, match="episode_index must be < 10\\*\\*20"):
            r.submit([GOOD], episode_index=index + 1)
    assert handle.result().path.name == f"{prefix}-episode-{index}.mp4"


@pytest.mark.parametrize(
    ("timeout", "error"), [(float("nan"), ValueError), (-1, ValueError), ("1", TypeError)]
)
def test_timeouts_that_mean_nothing_are_refused_at_the_call(
    rec: Recorder, timeout: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="timeout"):
        rec.flush(timeout=timeout)
    with pytest.raises(error, match="timeout"):
        rec.close(timeout=timeout)
    assert not rec.closed  # nothing was closed
    with pytest.raises(error, match="timeout"):
        recorder.flush(timeout=timeout)
    rec.flush(timeout=float("inf"))  # no limit, as None


def test_async_close_refuses_a_nan_timeout(tmp_path: Path) -> None:
    import anyio

    async def main() -> None:
        async with recorder.AsyncRecorder(tmp_path) as rec:
            with pytest.raises(ValueError, match="timeout"):
                await rec.aclose(timeout=float("nan"))
            assert not rec.closed

    anyio.run(main)


# The encoder writes through /proc/self/fd/N (the file it was given, whatever its name became):
# an error there must still say which video it is.
FULL_DISK_CHILD = """
import json, resource, signal, sys
import numpy as np
from recorder import Recorder

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
noise = np.random.default_rng(0).integers(0, 256, (30, 96, 128, 3), dtype=np.uint8)
rec = Recorder(sys.argv[1], codec=sys.argv[2], episode_trigger=lambda e: True)
(handle,) = rec.submit(list(noise))
error = handle.exception()
rec.close() if error is None else None
print(json.dumps({"str": str(error), "notes": getattr(error, "__notes__", [])}))
"""


@pytest.mark.parametrize("codec", ["vp9", "gif"])
def test_a_full_disk_error_names_the_video(tmp_path: Path, codec: str) -> None:
    import json

    proc = run_child(FULL_DISK_CHILD, tmp_path, codec, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert "File too large" in report["str"], report
    ext = ".webm" if codec == "vp9" else ".gif"
    named = report["notes"][0]
    assert named.startswith("/proc/self/fd/")
    assert f" is the temporary file {tmp_path}/.rl-video-episode-0." in named
    assert f"while recording {tmp_path}/rl-video-episode-0{ext}" in report["notes"]


def test_a_temporary_file_that_cannot_be_locked_is_not_left_behind(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import errno

    def no_locks(fd: int, *, block: bool = True) -> bool:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(writer_module, "lock_file", no_locks)
    (handle,) = [h for h in rec.submit([GOOD], episode_index=0) if h.kind == "episode"]
    with pytest.raises(OSError, match="No locks available"):
        handle.result()
    with pytest.raises(OSError, match="No locks available"):
        rec.flush()
    assert [p.name for p in (tmp_path / "v").iterdir()] == []
    monkeypatch.undo()  # the fixture records again
