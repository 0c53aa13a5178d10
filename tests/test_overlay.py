"""Overlays (issue 31): text drawn from each frame's info onto a copy of the frame, in the
encoder process or worker thread, in a top-left band; decoded back, only the band differs."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from helpers import TinyEnv, always

import recorder
from recorder import Codec, Recorder
from recorder._testing import (
    arena_released,
    encoder_module,
    overlay_band,
    overlay_font_size,
    overlay_module,
    overlay_planes_from,
)
from recorder.wrappers import RecordVideo

LOSSLESS = Codec("h264", crf=0)  # x264's lossless mode: the planes decode as encoded


def frames_of(count: int, shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """Noisy frames: a pixel changed anywhere shows in the planes."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def planes(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The Y, U and V planes of each frame of a yuv420p video, as encoded."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yuv = frame.to_ndarray(format="yuv420p")
            h, w = frame.height, frame.width
            u = yuv[h : h + h // 4].reshape(h // 2, w // 2)
            v = yuv[h + h // 4 :].reshape(h // 2, w // 2)
            out.append((yuv[:h], u, v))
    return out


def record(folder: Path, frames: list[np.ndarray], **kwargs: Any) -> Path:
    infos = [
        {"step": i, "reward": 0.5 * i, "return": 0.25 * i * (i + 1)} for i in range(len(frames))
    ]
    with Recorder(folder, episode_trigger=always, codec=LOSSLESS, **kwargs) as rec:
        rec.submit(frames, infos=infos)
    return folder / "rl-video-episode-0.mp4"


def text_of(i: int) -> str:
    return f"step {i} · reward {0.5 * i} · return {0.25 * i * (i + 1)}"


@pytest.mark.parametrize("encode_in", ["process", "thread"])
@pytest.mark.parametrize("shape", [(64, 64, 3), (84, 84), (120, 200, 3)])
def test_overlay_pixels_differ_from_the_original_only_in_the_text_band(
    tmp_path: Path, shape: tuple[int, ...], encode_in: str
) -> None:
    frames = frames_of(6, shape)
    originals = [f.copy() for f in frames]
    plain = planes(record(tmp_path / "plain", frames, encode_in=encode_in))
    drawn = planes(
        record(
            tmp_path / "drawn", frames, encode_in=encode_in, overlay=("step", "reward", "return")
        )
    )
    assert all((f == o).all() for f, o in zip(frames, originals, strict=True))  # never changed
    assert len(plain) == len(drawn) == 6
    for i, (a, b) in enumerate(zip(plain, drawn, strict=True)):
        height, width = overlay_band(shape, text_of(i))
        assert 0 < height < shape[0]
        assert 0 < width <= shape[1]
        assert height % 2 == width % 2 == 0  # whole 2x2 blocks: the chroma around is the scene's
        band = np.zeros(a[0].shape, bool)
        band[:height, :width] = True
        assert (a[0][~band] == b[0][~band]).all(), f"frame {i}: luma changed outside the band"
        assert (a[0][band] != b[0][band]).mean() > 0.5, f"frame {i}: no text in the band"
        for p, q in zip(a[1:], b[1:], strict=True):  # chroma: one sample per 2x2 block
            inside = band[::2, ::2]
            assert (p[~inside] == q[~inside]).all(), f"frame {i}: chroma changed outside"
        # Light text on a darkened band: the band is darker than the scene, its text bright.
        assert b[0][band].mean() < a[0][band].mean()
        assert b[0][band].max() > 200


@pytest.mark.parametrize("shape", [(120, 200, 3), (400, 600, 3), (300, 300)])
def test_text_on_the_converted_planes_looks_as_text_on_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: tuple[int, ...]
) -> None:
    # Large frames get the text on their yuv420p planes, small ones on an RGB (or gray) copy:
    # the two ways give the same band, within rounding.
    assert np.prod(shape) >= overlay_planes_from  # the default way for these: the planes
    frames = frames_of(3, shape)
    drawn = {}
    for way, least in (("planes", overlay_planes_from), ("copy", 1 << 40)):
        monkeypatch.setattr(encoder_module, "PLANES_FROM", least)
        path = record(tmp_path / way, frames, encode_in="thread", overlay=("step", "reward"))
        drawn[way] = planes(path)
    for i, (on_planes, on_copy) in enumerate(zip(drawn["planes"], drawn["copy"], strict=True)):
        height, width = overlay_band(shape, f"step {i} · reward {0.5 * i}")
        y, y_copy = (p[0][:height, :width].astype(int) for p in (on_planes, on_copy))
        assert np.abs(y - y_copy).mean() < 1.5, f"frame {i}: luma of the band"
        assert (y[y_copy > 200] > 190).all(), f"frame {i}: the text's pixels"
        # Below the band, the scene itself (chroma: one row per two of luma).
        assert (on_planes[0][height:] == on_copy[0][height:]).all()
        for p, q in zip(on_planes[1:], on_copy[1:], strict=True):
            assert (p[height // 2 :] == q[height // 2 :]).all()


def test_frames_shared_by_overlapping_clips_get_the_text_once(tmp_path: Path) -> None:
    # Both clips encode the same queued frames: drawn onto those in place, the second clip
    # would darken the band again.
    frames = frames_of(8, (64, 96, 3))
    with Recorder(
        tmp_path,
        episode_trigger=always,
        step_trigger=lambda s: s == 2,
        codec=LOSSLESS,
        overlay="i",
    ) as rec:
        rec.submit(frames, infos=[{"i": i} for i in range(8)])
    episode = planes(tmp_path / "rl-video-episode-0.mp4")
    step = planes(tmp_path / "rl-video-step-2.mp4")
    assert len(episode) == 8
    assert len(step) == 5
    for a, b in zip(episode[3:], step, strict=True):
        assert all((p == q).all() for p, q in zip(a, b, strict=True))


def test_a_callable_overlay_runs_on_a_worker_with_a_read_only_info(tmp_path: Path) -> None:
    frames = frames_of(4, (64, 96, 3))
    infos = [{"i": i} for i in range(4)]
    threads: set[str] = set()

    def text(info: Any) -> str:
        threads.add(threading.current_thread().name)
        return f"i {info['i']}"

    for name, overlay in (("keys", ("i",)), ("callable", text)):
        with Recorder(
            tmp_path / name, episode_trigger=always, codec=LOSSLESS, overlay=overlay
        ) as rec:
            rec.submit(frames, infos=infos)
    assert threads
    assert all(t.startswith("recorder-worker") for t in threads)
    # The same text either way: the same pixels.
    keys, called = (planes(tmp_path / n / "rl-video-episode-0.mp4") for n in ("keys", "callable"))
    assert all(
        (p == q).all() for a, b in zip(keys, called, strict=True) for p, q in zip(a, b, strict=True)
    )

    def mutates(info: Any) -> str:
        info["i"] = 0
        return "never"

    with Recorder(tmp_path / "bad", episode_trigger=always, overlay=mutates) as rec:
        (handle,) = rec.submit(frames, infos=infos)
        with pytest.raises(TypeError, match="does not support item assignment"):
            rec.flush()
    assert handle.result().frames == 4  # saved, without the text it could not make

    def appends(info: Any) -> str:
        info["action"].append(9)  # a vector: written to the timeline after the overlay
        return "never"

    vectors = [{"action": [i, i]} for i in range(4)]
    with Recorder(tmp_path / "nested", episode_trigger=always, overlay=appends) as rec:
        (handle,) = rec.submit(frames, infos=vectors)
        with pytest.raises(AttributeError, match="append"):
            rec.flush()
    timeline = json.loads(handle.result().path.with_suffix(".timeline.json").read_text())
    assert timeline["columns"]["action"] == [[i, i] for i in range(4)]


def test_an_overlay_that_raises_for_a_frame_leaves_that_frame_bare_and_says_so(
    tmp_path: Path,
) -> None:
    # The wrappers' reset frames have no reward: a formatter that assumes one raises there.
    frames = frames_of(6, (64, 96, 3))
    infos: list[dict[str, Any] | None] = [{"step": None}]
    infos += [{"step": i, "reward": 1.0} for i in range(5)]

    def text(info: Any) -> str:
        return f"{info['step']} / {info['reward']:.2f}"

    with Recorder(tmp_path, episode_trigger=always, codec=LOSSLESS, overlay=text) as rec:
        (handle,) = rec.submit(frames, infos=infos)
        (bare,) = rec.submit(frames, infos=infos, episode_index=1)  # a second video: said again
        with pytest.raises(ExceptionGroup) as raised:
            rec.flush()
        rec.flush()  # reported once
        (later,) = rec.submit(frames[:2], infos=infos[1:3], episode_index=2)
    errors = raised.value.exceptions
    assert [type(e) for e in errors] == [KeyError, KeyError]
    said = [note for e in errors for note in e.__notes__ if note.startswith("in overlay=")]
    assert sorted(n.split(" (")[0] for n in said) == [
        f"in overlay=, for a frame of rl-video-episode-{e}.mp4" for e in (0, 1)
    ]
    assert (handle.result().frames, bare.result().frames, later.result().frames) == (6, 6, 2)
    assert rec.stats().videos_failed == 0
    assert arena_released(rec)  # the errors kept hold no view of the frame memory
    with Recorder(tmp_path / "plain", episode_trigger=always, codec=LOSSLESS) as rec:
        rec.submit(frames)
    drawn = planes(tmp_path / "rl-video-episode-0.mp4")
    plain = planes(tmp_path / "plain" / "rl-video-episode-0.mp4")
    assert all((p == q).all() for p, q in zip(drawn[0], plain[0], strict=True))  # no text
    assert not all((p == q).all() for p, q in zip(drawn[1], plain[1], strict=True))  # text


BAD_OVERLAYS = {
    "a number": (3, TypeError, r"overlay must be a key or a sequence of keys .* got 3 \(int\)"),
    "a key not a str": ((1,), TypeError, r"overlay's keys must be str, got 1 \(int\)"),
    "no key": ((), ValueError, r"overlay names no key"),
    "an empty key": (("",), ValueError, r"overlay's keys must not be empty"),
}


@pytest.mark.parametrize(("overlay", "error", "match"), BAD_OVERLAYS.values(), ids=BAD_OVERLAYS)
def test_a_bad_overlay_is_refused_at_the_call(
    tmp_path: Path, overlay: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Recorder(tmp_path, overlay=overlay)


def test_overlay_without_pillow_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PIL", "PIL.Image", "PIL.ImageDraw", "PIL.ImageFont"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails, as when not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'recorder\[overlay\]'"):
        Recorder(tmp_path, overlay=True)
    with Recorder(tmp_path) as rec:  # without an overlay Pillow is not needed
        rec.submit([frames_of(1, (8, 8, 3))[0]], infos=[{"i": 0}])


def test_overlay_with_a_pillow_too_old_says_so_at_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import PIL

    monkeypatch.setattr(PIL, "__version__", "10.0.1")  # its default font takes no size
    with pytest.raises(ImportError, match=r"Pillow 10.1 or later .* found 10.0.1"):
        Recorder(tmp_path, overlay=True)


@pytest.mark.parametrize("shape", [(120, 200, 3), (84, 84)])
def test_a_video_of_many_characters_draws_each_text_as_a_new_band_would(
    shape: tuple[int, ...],
) -> None:
    # More distinct characters than a band keeps (MAX_GLYPHS): it starts again on the way,
    # its cells in every form with it.
    chars = [c for c in map(chr, range(0x100, 0x500)) if c.isprintable()]
    assert len(chars) > overlay_module.MAX_GLYPHS
    band = overlay_module.TextBand(shape)
    for i in range(0, len(chars), 9):
        text = f"{''.join(chars[i : i + 9])} · {i}"
        fresh = overlay_module.TextBand(shape)
        assert (band.mask(text) == fresh.mask(text)).all(), text
        assert (band.luma(text) == fresh.luma(text)).all(), text
    assert band.luma(text).min() == 16  # limited range: no ink is luma 16
    assert band.luma(text).max() > 200


@pytest.mark.parametrize(
    "shape", [(64, 64, 3), (84, 84, 3), (128, 128, 3), (400, 600, 3), (480, 640, 3), (720, 1280, 3)]
)
def test_the_text_is_readable_and_the_band_small_from_64x64_to_720p(
    shape: tuple[int, ...],
) -> None:
    text = "step 12 · reward 1.0 · return 13.0"
    size = overlay_font_size(shape[0], shape[1])
    height, width = overlay_band(shape, text)
    assert size >= 8  # pixels: Aileron's smallest legible size here
    assert height >= size  # at least a line
    if shape[0] >= 400:
        assert size >= shape[0] // 30  # it grows with the frame: about 3% of its height
        assert height <= 0.06 * shape[0]
        assert width <= 0.4 * shape[1]
    else:  # small frames: the text breaks at its separators into lines that fit
        assert width <= shape[1]
        assert height * width <= 0.3 * shape[0] * shape[1]


class Larger(TinyEnv):
    """TinyEnv at 64x96: room for the band and the scene around it."""

    def render(self) -> Any:
        return np.full((64, 96, 3), 10 * self.t, dtype=np.uint8)


def test_the_wrappers_draw_their_info_and_a_shared_recorder_owns_its_overlay(
    tmp_path: Path,
) -> None:
    def run(folder: str, **kwargs: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        env = RecordVideo(
            Larger(),
            str(tmp_path / folder),
            episode_trigger=always,
            recorder_kwargs={"codec": LOSSLESS},
            **kwargs,
        )
        env.reset()
        for _ in range(3):
            env.step(1)
        env.close()
        return planes(tmp_path / folder / "rl-video-episode-0.mp4")

    plain, drawn = run("plain"), run("drawn", overlay=("step", "reward", "return"))
    # Private Recorder, no sidecars (gymnasium's files only): the info is drawn all the same.
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["rl-video-episode-0.mp4"]
    assert len(plain) == len(drawn) == 4
    for k, (a, b) in enumerate(zip(plain, drawn, strict=True)):
        text = "return 0.0" if k == 0 else f"step {k - 1} · reward 0.0 · return 0.0"
        height, width = overlay_band((64, 96, 3), text)
        assert height < 64
        assert (a[0][height:] == b[0][height:]).all()
        assert (a[0][:, width:] == b[0][:, width:]).all()
        assert (a[0][:height, :width] != b[0][:height, :width]).any()
    with recorder.Recorder(tmp_path / "shared") as rec:
        with pytest.raises(TypeError, match=r"overlay belongs to the shared Recorder"):
            RecordVideo(TinyEnv(), str(tmp_path / "shared"), recorder=rec, overlay=True)
        with pytest.raises(TypeError, match=r"give overlay once, not in recorder_kwargs too"):
            RecordVideo(
                TinyEnv(),
                str(tmp_path / "twice"),
                overlay=True,
                recorder_kwargs={"overlay": True},
            )
