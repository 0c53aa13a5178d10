"""Videos decode back to exactly what was given: count, order, size, fps, fidelity."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import always, decode, painted, psnr

import recorder
from recorder import Recorder


def test_round_trip_count_order_size_fps(tmp_path: Path) -> None:
    frames = [painted(i) for i in range(45)]
    with Recorder(tmp_path, fps=15, episode_trigger=always) as rec:
        (handle,) = rec.submit(frames, episode_index=7)
    info = handle.result()
    assert info.path == tmp_path / "rl-video-episode-7.mp4"
    assert (info.frames, info.width, info.height, info.fps) == (45, 112, 48, 15.0)
    assert info.size_bytes == info.path.stat().st_size > 0
    video = decode(info.path)
    assert video.indices == list(range(45))
    assert (video.width, video.height) == (112, 48)
    assert video.fps == pytest.approx(15.0)
    assert video.duration == pytest.approx(45 / 15, abs=0.1)
    assert info.duration == pytest.approx(3.0)


def test_streamed_episode_round_trip(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=always) as rec, rec.episode(0) as ep:
        for i in range(30):
            assert ep.wants_frame
            ep.append(painted(i))
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == list(range(30))


@pytest.mark.parametrize(
    ("make", "expected_shape"),
    [
        (lambda i: painted(i, channels=4), (48, 112)),
        (lambda i: painted(i, channels=1), (48, 112)),
        (lambda i: painted(i, channels=1)[..., None], (48, 112)),
        (lambda i: np.ascontiguousarray(painted(i)[::-1, ::-1])[::-1, ::-1], (48, 112)),
        (lambda i: painted(i).tolist(), (48, 112)),
        (lambda i: np.ma.masked_array(painted(i), mask=False), (48, 112)),  # its data
    ],
    ids=["rgba", "gray", "gray-hwx1", "non-contiguous", "nested-lists", "masked"],
)
def test_accepted_frame_kinds(tmp_path: Path, make, expected_shape) -> None:  # type: ignore[no-untyped-def]
    with Recorder(tmp_path, episode_trigger=always) as rec:
        (handle,) = rec.submit([make(i) for i in range(12)])
    video = decode(handle.result().path)
    assert video.indices == list(range(12))
    assert (video.height, video.width) == expected_shape


def test_array_like_with_dunder_array(tmp_path: Path) -> None:
    class Tensor:  # what a CPU torch tensor offers numpy
        def __init__(self, a: np.ndarray) -> None:
            self.a = a
            self.dtype = a.dtype

        def __array__(self, dtype=None, copy=None) -> np.ndarray:  # type: ignore[no-untyped-def]
            return self.a

    with Recorder(tmp_path, episode_trigger=always) as rec:
        (handle,) = rec.submit([Tensor(painted(i)) for i in range(5)])
    assert decode(handle.result().path).indices == list(range(5))


def test_odd_size_is_padded_not_resized(tmp_path: Path) -> None:
    frames = [painted(i, height=41, width=101) for i in range(6)]
    with Recorder(tmp_path, episode_trigger=always) as rec:
        (handle,) = rec.submit(frames)
    info = handle.result()
    assert (info.width, info.height, info.encoded_width, info.encoded_height) == (101, 41, 102, 42)
    video = decode(info.path)
    assert (video.width, video.height) == (102, 42)
    assert video.indices == list(range(6))
    # The original pixels are where they were: no resize.
    diff = np.abs(video.frames[3][:41, :101].astype(int) - frames[3].astype(int))
    assert diff.mean() < 4


def cartpole_frames(n: int) -> list[np.ndarray]:
    import gymnasium as gym

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    env.action_space.seed(0)
    frames = [env.render()]
    for _ in range(n - 1):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        frames.append(env.render())
        if term or trunc:
            env.reset()
    env.close()
    return frames


def test_fidelity_psnr_at_default_quality(tmp_path: Path) -> None:
    frames = cartpole_frames(40)
    yy, xx = np.mgrid[0:120, 0:160]
    smooth = [
        np.stack([(xx + 3 * i) % 256, (yy * 2) % 256, (xx + yy) // 2 % 256], -1).astype(np.uint8)
        for i in range(20)
    ]
    with Recorder(tmp_path, episode_trigger=always) as rec:
        (cart,) = rec.submit(frames, episode_index=0)
        (grad,) = rec.submit(smooth, episode_index=1)
    for handle, source in ((cart, frames), (grad, smooth)):
        video = decode(handle.result().path)
        assert len(video.frames) == len(source)
        values = [psnr(d, s) for d, s in zip(video.frames, source, strict=True)]
        assert min(values) >= 30, values


@pytest.mark.parametrize(("codec", "ext"), [("vp9", ".webm"), ("gif", ".gif"), ("h265", ".mp4")])
def test_other_codecs(tmp_path: Path, codec: str, ext: str) -> None:
    with Recorder(tmp_path, episode_trigger=always, codec=codec, fps=20) as rec:
        (handle,) = rec.submit([painted(i) for i in range(15)])
    info = handle.result()
    assert info.path.suffix == ext
    assert info.codec == codec
    video = decode(info.path)
    assert video.indices == list(range(15))


@pytest.mark.parametrize("channels", [3, 1, 4])
def test_a_gif_keeps_thin_black_lines_black_and_flat_colours_right_on_average(
    tmp_path: Path, channels: int
) -> None:
    # CartPole's look: a white background, a 2-pixel black track, a 1-pixel line, a pole of
    # an off-palette colour. swscale's error diffusion turned the lines yellow (252, 252, 0).
    rgb = np.full((120, 160, 3), 255, np.uint8)
    rgb[80:82] = 0
    rgb[40] = 0
    rgb[10:30, 20:60] = (202, 152, 101)
    frame = {3: rgb, 1: rgb[..., 0], 4: np.dstack([rgb, np.full((120, 160), 255, np.uint8)])}
    with Recorder(tmp_path, episode_trigger=always, codec="gif", health=False) as rec:
        (handle,) = rec.submit([frame[channels]] * 3)
    video = decode(handle.result().path)
    out = video.frames[1].astype(int)
    assert (out[80:82] == 0).all()
    assert (out[40] == 0).all()
    assert (np.abs(out[100:, :] - (252, 252, 255)) <= 3).all()  # rgb8's nearest to white
    want = (202, 152, 101) if channels != 1 else (202, 202, 202)
    mean = out[10:30, 20:60].reshape(-1, 3).mean(0)
    assert np.abs(mean - want).max() <= 2, mean  # (the palette's levels, not 255 / 7 apart)


@pytest.mark.parametrize("codec", ["h264", "h265", "vp9", "av1"])
def test_yuv_videos_say_how_their_colours_were_converted(tmp_path: Path, codec: str) -> None:
    # Untagged, Chromium took 720-line h264 for BT.709: pure green showed as (0, 216, 2).
    with Recorder(tmp_path, episode_trigger=always, codec=codec, health=False) as rec:
        (handle,) = rec.submit([painted(i, 64, 64) for i in range(3)])
    with av.open(str(handle.result().path)) as container:
        context = container.streams.video[0].codec_context
        tags = (context.colorspace, context.color_range, context.color_primaries, context.color_trc)
    assert tags == (6, 1, 1, 1)  # BT.601 (smpte170m) matrix, limited range, BT.709 primaries


def test_crf_changes_quality_and_size(tmp_path: Path) -> None:
    frames = cartpole_frames(20)
    sizes = {}
    for crf in (15, 40):
        with Recorder(tmp_path / str(crf), episode_trigger=always, crf=crf) as rec:
            (handle,) = rec.submit(frames)
        sizes[crf] = handle.result().size_bytes
    assert sizes[15] > sizes[40]


def test_non_integer_fps(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=always, fps=12.5) as rec:
        (handle,) = rec.submit([painted(i) for i in range(25)])
    video = decode(handle.result().path)
    assert video.fps == pytest.approx(12.5)
    assert video.duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(
    "codec",
    [recorder.Codec("h264", preset="veryfast"), recorder.Codec("h264", preset="medium"), "h265"],
    ids=["h264-veryfast", "h264-medium", "h265"],
)
def test_b_frames_do_not_delay_the_picture(tmp_path: Path, codec: recorder.Codec | str) -> None:
    # Encoders with B-frames hold frames back; the fragment file has no edit list for it, so
    # the picture started 1-2 frames late and the timeline's captions ran ahead of it.
    with Recorder(tmp_path, fps=1, episode_trigger=always, codec=codec, health=False) as rec:
        (handle,) = rec.submit([painted(i) for i in range(10)])
    with av.open(str(handle.result().path)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * stream.time_base) for f in container.decode(stream)]
        assert container.start_time == 0
        assert container.duration == pytest.approx(10 * av.time_base, rel=0.001)
    assert times == pytest.approx([float(i) for i in range(10)])


@pytest.mark.parametrize("fps", [2000, 4000])
def test_a_b_frame_video_at_thousands_of_fps_keeps_every_frame(tmp_path: Path, fps: int) -> None:
    # The edit list that starts it at 0 is in the movie's time scale (1000 by default): a
    # 1.5 ms shift cut to 1 ms left a frame outside it.
    with Recorder(tmp_path, fps=fps, episode_trigger=always, codec="h265", health=False) as rec:
        (handle,) = rec.submit([painted(i) for i in range(3)])
    assert decode(handle.result().path).indices == [0, 1, 2]


def test_mp4_has_faststart_moov_before_mdat(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=always) as rec:
        (handle,) = rec.submit([painted(i) for i in range(10)])
    data = handle.result().path.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_no_temporary_file_remains(tmp_path: Path) -> None:
    with Recorder(tmp_path, step_trigger=lambda s: s % 3 == 0, video_length=4, workers=2) as rec:
        for e in range(3):
            rec.submit([painted(i) for i in range(10)], episode_index=e, step_starting_index=e * 9)
    names = os.listdir(tmp_path)
    assert names
    assert all(n.endswith((".mp4", ".json", ".jsonl")) and not n.startswith(".") for n in names)


def test_public_names() -> None:
    for name in recorder.__all__:
        assert hasattr(recorder, name), name
    public = {n for n in dir(recorder) if not n.startswith("_")}
    modules = {"wrappers", "ray", "integrations"}  # optional submodules, once imported
    assert public - modules <= set(recorder.__all__) | modules
    assert {"recover", "RecoveryReport", "RecoveredVideo", "Leftover"} <= set(recorder.__all__)


@pytest.mark.parametrize("encode_in", ["thread", "process"])
def test_h265_clips_of_one_and_two_frames_are_saved(tmp_path: Path, encode_in: str) -> None:
    # libx265, flushed with so few frames, leaves their dts uninitialised: about half of such
    # clips failed to mux before their packets' dts was made sane.
    with Recorder(tmp_path, codec="h265", episode_trigger=always, encode_in=encode_in) as rec:
        handles = [
            handle
            for i in range(12)
            for handle in rec.submit([painted(k) for k in range(1 + i % 2)], episode_index=i)
        ]
    for i, handle in enumerate(handles):
        assert decode(handle.result().path).indices == list(range(1 + i % 2))
