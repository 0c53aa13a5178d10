"""Quality at the default settings: never worse than gymnasium's own writer minus 1 dB.

Real encode and decode of the same frames by ``recorder.Recorder`` (every codec setting left at
its default, and at adaptive quality's fastest rung) and by
``gymnasium.utils.save_video.save_video`` (moviepy, libx264 preset medium, crf 23, yuv420p);
PSNR on RGB, per frame, against the frame of the same index the encoder was given: the source
frame for recorder, for gymnasium the frame moviepy handed to ffmpeg (moviepy looks frames up by
a float time and sometimes repeats the one before instead: a timing fault, not a coding one,
kept out of the comparison so that it does not flatter recorder). x264's output is a function
of its settings and input (also with threads), so this is deterministic, and no timing test.
``scripts/bench_quality.py`` reports the same comparison with sizes and speeds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import always, decode, psnr

import recorder
from recorder._testing import adaptive_rungs

# The benchmarks' frame makers, so that the test and bench_quality measure the same frames.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from _benchutil import cartpole_frames, noisy_ramp_frames

pytest.importorskip("moviepy", reason="gymnasium's save_video writes with moviepy")

FPS = 30
FRAMES = 30
MARGIN_DB = 1.0


def unpadded(path: Path, height: int, width: int) -> list[np.ndarray]:
    """The video's frames without the encoder's padding."""
    return [frame[:height, :width] for frame in decode(path).frames]


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


# The defaults (the first rung, while the queue has room), and the settings of adaptive
# quality's fastest rung (ultrafast, "point" chroma), which a backlog gets.
SETTINGS = {"defaults": None, "fastest rung": adaptive_rungs(recorder.Codec())[-1]}


@pytest.mark.parametrize("codec", SETTINGS.values(), ids=SETTINGS)
@pytest.mark.parametrize("make_frames", [cartpole_frames, noisy_ramp_frames])
def test_default_quality_is_at_least_gymnasiums_minus_1_db(
    tmp_path: Path, make_frames: Callable[[int], list[np.ndarray]], codec: recorder.Codec | None
) -> None:
    from gymnasium.utils.save_video import save_video

    frames = make_frames(FRAMES)
    height, width = frames[0].shape[:2]

    kwargs = {} if codec is None else {"codec": codec}
    with recorder.Recorder(tmp_path / "recorder", fps=FPS, episode_trigger=always, **kwargs) as rec:
        (handle,) = rec.submit(frames, episode_index=0)
        rec.flush()
    ours = unpadded(handle.result().path, height, width)

    save_video(list(frames), str(tmp_path / "gymnasium"), fps=FPS, episode_trigger=always)
    theirs = unpadded(tmp_path / "gymnasium" / "rl-video-episode-0.mp4", height, width)

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
