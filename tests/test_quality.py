"""Quality at the default settings: never worse than gymnasium's own writer minus 1 dB.

Real encode and decode of the same frames by ``recorder.Recorder`` (every codec setting left at
its default) and by ``gymnasium.utils.save_video.save_video`` (moviepy, libx264 preset medium,
crf 23, yuv420p); PSNR on RGB, per frame, against the frame of the same index the encoder was
given: the source frame for recorder, for gymnasium the frame moviepy handed to ffmpeg (moviepy
looks frames up by a float time and sometimes repeats the one before instead: a timing fault,
not a coding one, kept out of the comparison so that it does not flatter recorder). x264's
output is a function of its settings and input (also with threads), so this is deterministic,
and no timing test. ``scripts/bench_quality.py`` reports the same comparison with
sizes and speeds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

import recorder

pytest.importorskip("moviepy", reason="gymnasium's save_video writes with moviepy")

FPS = 30
FRAMES = 30
MARGIN_DB = 1.0


def cartpole_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """CartPole-v1 ``rgb_array`` renders (600x400) of a seeded random policy."""
    import gymnasium as gym

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    rng = np.random.default_rng(seed)
    frames: list[np.ndarray] = []
    try:
        env.reset(seed=seed)
        while len(frames) < count:
            frames.append(np.asarray(env.render()))
            _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
            if terminated or truncated:
                env.reset()
    finally:
        env.close()
    return frames


def noisy_ramp_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """96x128 RGB: one fixed image, grey 128 plus Gaussian noise (sigma 16, independent per
    pixel and channel, ``numpy.random.default_rng(seed)``), brightened by an offset that rises
    linearly from -80 to +80 over the frames; rounded and clipped to 0..255.

    The same definition as ``scripts/bench_quality.py``'s.
    """
    image = 128 + np.random.default_rng(seed).normal(0, 16, (96, 128, 3))
    offsets = np.linspace(-80, 80, count)
    return [np.clip(np.rint(image + o), 0, 255).astype(np.uint8) for o in offsets]


def decode(path: Path, height: int, width: int) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24")[:height, :width] for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def misaligned(source: list[np.ndarray], decoded: list[np.ndarray]) -> list[int]:
    """Indices of decoded frames closer (PSNR) to the source frame before or after than to
    the one of their own index: a frame dropped or repeated inside the video shows here.

    The ramp's frames differ by ~5.5 levels each, several times the ~2 levels of brightness
    the decoded videos are off by, so a shifted frame is not mistaken for an aligned one.
    """
    bad = []
    for i, frame in enumerate(decoded):
        own = psnr(source[i], frame)
        if any(psnr(source[j], frame) > own for j in (i - 1, i + 1) if 0 <= j < len(source)):
            bad.append(i)
    return bad


def moviepy_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The frames moviepy's ``write_videofile`` feeds ffmpeg for *frames* (its own loop)."""
    from moviepy import ImageSequenceClip

    clip = ImageSequenceClip(list(frames), fps=FPS)
    try:
        return list(clip.iter_frames(fps=FPS, dtype="uint8"))
    finally:
        clip.close()


def always(_: int) -> bool:
    return True


@pytest.mark.parametrize("make_frames", [cartpole_frames, noisy_ramp_frames])
def test_default_quality_is_at_least_gymnasiums_minus_1_db(
    tmp_path: Path, make_frames: Callable[[int], list[np.ndarray]]
) -> None:
    from gymnasium.utils.save_video import save_video

    frames = make_frames(FRAMES)
    height, width = frames[0].shape[:2]

    with recorder.Recorder(tmp_path / "recorder", fps=FPS, episode_trigger=always) as rec:
        (handle,) = rec.submit(frames, episode_index=0)
        rec.flush()
    ours = decode(handle.result().path, height, width)

    save_video(list(frames), str(tmp_path / "gymnasium"), fps=FPS, episode_trigger=always)
    theirs = decode(tmp_path / "gymnasium" / "rl-video-episode-0.mp4", height, width)

    fed = moviepy_frames(frames)

    assert len(ours) == FRAMES
    assert len(theirs) == len(fed)
    assert FRAMES - 1 <= len(theirs) <= FRAMES  # moviepy may lose the last frame
    assert misaligned(frames, ours) == []
    assert misaligned(fed, theirs) == []
    n = min(len(ours), len(theirs))  # the frames both files have, matched by index
    ours_min = min(psnr(frames[i], ours[i]) for i in range(n))
    theirs_min = min(psnr(fed[i], theirs[i]) for i in range(n))
    assert ours_min >= theirs_min - MARGIN_DB, (ours_min, theirs_min)
