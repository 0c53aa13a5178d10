"""Property tests (issue 6), with hypothesis.

* Clip plans: random triggers (sets of indices), video_lengths, episode lengths and step
  offsets give the clips gymnasium's ``save_video`` rules give. The oracle is a small model of
  those rules, itself checked against gymnasium's own function (with moviepy swapped for a
  recorder of frames); the Recorder runs with a fake encoder that records which frame went in
  which clip, through ``submit()`` and through ``episode()`` in its three idioms (``offer()``,
  ``wants_frame`` with and without ``skip()``), rendering only when wanted; the streamed
  plans are checked against gymnasium's ``save_video`` itself.
* Frames: random shapes, dtypes and memory layouts give either a TypeError/ValueError at the
  call (nothing queued) or a whole, correct video (decoded back with PyAV).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoders
from helpers import decode, examples, flat, gymnasium_clips
from hypothesis import event, given
from hypothesis import strategies as st

from recorder import Episode, Recorder, capped_cubic_video_schedule

SETTINGS = examples(150)
_counter = itertools.count()


def fresh(tmp_path: Path) -> Path:
    return tmp_path / f"example-{next(_counter)}"


# -- the oracle --------------------------------------------------------------------------------

Plan = dict[str, list[int]]  # clip name -> the frame indices it holds, in order
# (episode trigger's indices, step trigger's indices, video_length); None: no trigger / no limit
Rules = tuple[frozenset[int] | None, frozenset[int] | None, int | None]


def model_plan(
    length: int, rules: Rules, episode_index: int, step_start: int, prefix: str = "rl-video"
) -> Plan:
    """gymnasium.utils.save_video's rules, as a model (frame 0 is the reset frame)."""
    episode_set, step_set, video_length = rules
    frames = list(range(length))
    plan: Plan = {}
    episode_fires = (
        episode_index in episode_set
        if episode_set is not None
        else step_set is None and capped_cubic_video_schedule(episode_index)
    )
    if episode_fires:
        plan[f"{prefix}-episode-{episode_index}"] = frames[:video_length]
    if step_set is not None:
        for step, k in enumerate(range(1, length), start=step_start):
            if step in step_set:
                end = None if video_length is None else k + video_length
                plan[f"{prefix}-step-{step}"] = frames[k:end]
    return plan


def trigger(indices: frozenset[int] | None) -> Callable[[int], bool] | None:
    return None if indices is None else indices.__contains__


def gymnasium_plan(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    length: int,
    rules: Rules,
    episode_index: int,
    step_start: int,
) -> Plan:
    """What gymnasium's own save_video writes, with moviepy replaced by a frame recorder."""
    episode_set, step_set, video_length = rules
    clips = gymnasium_clips(
        monkeypatch,
        list(range(length)),  # frame k stands for itself
        folder,
        10,
        episode_trigger=trigger(episode_set),
        step_trigger=trigger(step_set),
        video_length=video_length,
        episode_index=episode_index,
        step_starting_index=step_start,
    )
    return {Path(name).stem: frames for name, frames in clips.items()}


# -- strategies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    episode_set: frozenset[int] | None
    step_set: frozenset[int] | None
    video_length: int | None
    episodes: tuple[tuple[int, int, int], ...]  # (episode_index, step_start, length)

    @property
    def rules(self) -> Rules:
        return self.episode_set, self.step_set, self.video_length


@st.composite
def cases(draw: st.DrawFn) -> Case:
    episode_set = draw(st.none() | st.frozensets(st.integers(0, 12), max_size=8))
    step_set = draw(st.none() | st.frozensets(st.integers(0, 120), max_size=25))
    video_length = draw(st.none() | st.integers(1, 12))
    episodes = []
    index = draw(st.integers(0, 6))
    step = draw(st.integers(0, 30))
    for _ in range(draw(st.integers(1, 4))):
        length = draw(st.integers(1, 30))
        episodes.append((index, step, length))
        # As a training loop counts: the next episode starts after this one's steps.
        index += draw(st.integers(1, 3))
        step += length - 1 + draw(st.integers(0, 5))
    return Case(episode_set, step_set, video_length, tuple(episodes))


def planned(tmp_path: Path, case: Case, fake: FakeEncoders) -> Recorder:
    """A Recorder with *case*'s triggers and video_length, encoding with *fake*."""
    return Recorder(
        fresh(tmp_path),
        episode_trigger=trigger(case.episode_set),
        step_trigger=trigger(case.step_set),
        video_length=case.video_length,
        encoder_factory=fake,
        sidecars=False,
    )


# -- clip plans --------------------------------------------------------------------------------


@SETTINGS
@given(case=cases())
def test_model_is_gymnasium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    for episode_index, step_start, length in case.episodes:
        expected = model_plan(length, case.rules, episode_index, step_start)
        got = gymnasium_plan(
            monkeypatch, fresh(tmp_path), length, case.rules, episode_index, step_start
        )
        assert got == expected


@SETTINGS
@given(case=cases())
def test_submit_plans_like_gymnasium(tmp_path: Path, case: Case) -> None:
    fake = FakeEncoders()
    expected: Plan = {}
    names: list[str] = []
    with planned(tmp_path, case, fake) as rec:
        for episode_index, step_start, length in case.episodes:
            plan = model_plan(length, case.rules, episode_index, step_start)
            expected.update(plan)
            handles = rec.submit([flat(k, 4, 6) for k in range(length)], episode_index, step_start)
            assert [h.name for h in handles] == list(plan)  # episode clip first, then steps
            names += [h.name for h in handles]
    assert fake.plan() == expected
    assert rec.stats().videos_saved == len(names) == len(expected)


IDIOMS = ("skip", "no-skip", "offer")


def stream(ep: Episode, length: int, idiom: str) -> list[int]:
    """Stream frames 0..length-1 into *ep* the way *idiom* does; the frames rendered."""
    rendered: list[int] = []
    for k in range(length):

        def render(k: int = k) -> np.ndarray:
            rendered.append(k)
            return flat(k, 4, 6)

        if idiom == "offer":
            ep.offer(render)
        elif ep.wants_frame:
            ep.append(render())
        elif idiom == "skip":
            ep.skip()
    return rendered


@pytest.mark.parametrize("idiom", IDIOMS)
@SETTINGS
@given(case=cases())
def test_streaming_plans_like_gymnasium_and_renders_only_what_is_wanted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case, idiom: str
) -> None:
    """All three idioms give save_video's clips, names and frames (gymnasium as the oracle)."""
    fake = FakeEncoders()
    expected: Plan = {}
    stalled = 0
    with planned(tmp_path, case, fake) as rec:
        for episode_index, step_start, length in case.episodes:
            folder = fresh(tmp_path)
            plan = gymnasium_plan(
                monkeypatch, folder, length, case.rules, episode_index, step_start
            )
            expected.update(plan)
            with rec.episode(episode_index, step_start) as ep:
                rendered = stream(ep, length, idiom)
            # wants_frame is exact: a frame is rendered iff some clip holds it.
            assert rendered == sorted({k for frames in plan.values() for k in frames})
            assert [h.name for h in ep.handles] == list(plan)  # episode clip first
            # Without skip(), a reset frame alone cannot be told from a loop that stopped
            # after one read: the only stall, and it is counted.
            no_clip_possible = case.step_set is None and not plan
            if idiom == "no-skip" and length == 1 and not plan and not no_clip_possible:
                stalled += 1
    assert fake.plan() == expected
    assert rec.stats().episodes_stalled == stalled
    event(f"stalled: {bool(stalled)}")


# -- frames: a clear error at the call, or a correct video ------------------------------------

# uint8 most of the time; the others are taken as gymnasium takes them (values in 0..255).
DTYPES = [np.uint8] * 14 + [np.int8, np.uint16, np.int64, np.float32, np.float64, np.bool_]


@dataclass(frozen=True)
class FrameCase:
    frame: np.ndarray
    value: int  # every colour channel holds it (when uint8)
    count: int


@st.composite
def frames(draw: st.DrawFn) -> FrameCase:
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.sampled_from([0, 1, 2, 2, 3, 3, 3, 3, 4]))
    sizes = st.integers(1, 33) | st.just(0)
    shape = [draw(sizes if ndim in (2, 3) else st.integers(0, 3)) for _ in range(min(ndim, 2))]
    if ndim >= 3:
        shape.append(draw(st.sampled_from([3, 3, 4, 4, 1, 0, 2, 5])))
    if ndim == 4:
        shape.append(draw(st.integers(1, 3)))
    value = draw(st.integers(0, 255))
    base = np.full(shape[:ndim], value, dtype=np.uint8)
    if ndim == 3 and shape[2] == 4:
        base[..., 3] = draw(st.integers(0, 255))  # alpha: dropped, never blended
    base = base.astype(dtype)
    layout = draw(st.sampled_from(["c", "fortran", "flipped", "strided"]))
    if layout == "fortran":
        base = np.asfortranarray(base)
    elif layout == "flipped" and ndim >= 1:
        base = base[::-1]
    elif layout == "strided" and ndim >= 2:
        wide = np.repeat(np.repeat(base, 2, axis=0), 2, axis=1)
        base = wide[::2, ::2]
    return FrameCase(base, value, draw(st.integers(1, 3)))


def expected_error(frame: np.ndarray) -> type[Exception] | None:
    """What recorder accepts: HxW, HxWx1, HxWx3 or HxWx4 numbers in 0..255 (not bool), not
    empty."""
    if frame.dtype == np.bool_:
        return TypeError
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        return ValueError
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        return ValueError
    kept = frame[..., :3] if frame.ndim == 3 else frame  # the alpha channel is dropped
    if kept.min() < 0:  # an int8 of a value above 127
        return ValueError
    return None


@examples(80)
@given(case=frames(), streaming=st.booleans())
def test_any_frame_gives_a_clear_error_or_a_correct_video(
    tmp_path: Path, case: FrameCase, streaming: bool
) -> None:
    frame, error = case.frame, expected_error(case.frame)
    event("valid" if error is None else f"{error.__name__}")
    folder = fresh(tmp_path)
    with Recorder(folder, episode_trigger=lambda e: True, sidecars=False) as rec:
        if error is not None:

            def call() -> None:
                if streaming:
                    with rec.episode(0) as ep:
                        ep.append(frame)
                else:
                    rec.submit([frame] * case.count)

            with pytest.raises(error) as info:
                call()
            assert str(info.value)  # says what is wrong
            assert rec.stats().frames_submitted == 0
            handles = []
        elif streaming:
            with rec.episode(0) as ep:
                for _ in range(case.count):
                    ep.append(frame)
            handles = ep.handles
        else:
            handles = rec.submit([frame] * case.count)
    if error is not None:
        assert not folder.exists() or not [p for p in folder.iterdir() if p.suffix == ".mp4"]
        return
    (handle,) = handles
    saved = handle.result()
    height, width = frame.shape[:2]
    assert (saved.height, saved.width, saved.frames) == (height, width, case.count)
    assert (saved.encoded_height, saved.encoded_width) == (height + height % 2, width + width % 2)
    video = decode(saved.path)
    assert len(video.frames) == case.count
    for decoded in video.frames:
        assert decoded.shape == (saved.encoded_height, saved.encoded_width, 3)
        # A flat gray frame survives yuv420p within a few levels (padding repeats the edge).
        assert np.abs(decoded.astype(int) - case.value).max() <= 4
