"""Inputs as users really pass them: frames in other forms, copies of wrappers, long names,
folders that cannot be written. A clear error at the call, or the video as given."""

from __future__ import annotations

import copy
import os
import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

import anyio
import gymnasium as gym
import numpy as np
import pytest
from helpers import decode

import recorder
from recorder import Recorder
from recorder._testing import build_gallery
from recorder.wrappers import RecordVideo


def frame(value: int, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_float_frames_with_fractions_below_1_are_refused_below_2_taken_with_a_warning(
    tmp_path: Path,
) -> None:
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    with Recorder(tmp_path, episode_trigger=lambda e: True, health=False) as rec:
        with pytest.raises(ValueError, match=r"fractions in 0\.\.1"):
            rec.submit([image] * 2)
        for index, scale in enumerate((1.01, 1.9)):  # jitter above 1, or a dark fade in 0..255
            with pytest.warns(UserWarning, match=r"taken as 0\.\.255 \(nearly black\)"):
                (h,) = rec.submit([image * scale] * 2, index)
            assert h.result().frames == 2
        (h,) = rec.submit([image * 255] * 2, 5)  # the same image in 0..255: no warning
    assert abs(decode(h.result().path).frames[0].mean() - image.mean() * 255) < 8


class _Tensor:
    """What a torch tensor that requires grad does when numpy asks for its data."""

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise RuntimeError("Can't call numpy() on Tensor that requires grad.")

    def detach(self) -> _Tensor:
        return self


class _DLPackOnly:
    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> Any:
        return self._array.__dlpack_device__()


class _Batch:
    """A batch of frames that is an array-like but no sequence (a torch tensor, say)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._array


def test_frames_in_other_forms_are_taken_or_refused_at_the_call(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True, health=False) as rec:
        with rec.episode(0) as ep:
            with pytest.raises(TypeError, match=r"detach\(\)"):
                ep.append(_Tensor())
            ep.append(_DLPackOnly(frame(200)))
        with pytest.raises(TypeError, match=r"detach\(\)"):
            rec.submit(_Tensor())  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"one HxWxC frame: pass \[frame\]"):
            rec.submit(frame(0))
        (batch,) = rec.submit(_Batch(np.stack([frame(60)] * 3)), 1)  # type: ignore[arg-type]
    (h,) = ep.handles
    assert h.result().frames == 1
    assert abs(decode(h.result().path).frames[0].mean() - 200) < 4
    assert batch.result().frames == 3
    assert abs(decode(batch.result().path).frames[2].mean() - 60) < 4


def test_pil_images_that_are_not_rgb_or_gray_are_refused_with_the_conversion(
    tmp_path: Path,
) -> None:
    from PIL import Image

    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (255, 0, 0)
    with Recorder(tmp_path, episode_trigger=lambda e: True, health=False) as rec:
        for mode in ("P", "CMYK", "YCbCr"):
            with pytest.raises(TypeError, match=r"mode '\w+'.*convert\('RGB'\)"):
                rec.submit([Image.fromarray(rgb).convert(mode)])
        (h,) = rec.submit([Image.fromarray(rgb)] * 2)
    left = decode(h.result().path).frames[0][16, 4]
    assert left[0] > 200
    assert left[2] < 60


def test_async_append_that_waits_for_room_records_the_frame_as_it_was_at_the_call(
    tmp_path: Path,
) -> None:
    shared = np.zeros((32, 32, 3), np.uint8)  # one render buffer, two env tasks

    async def env_task(ep: Any, value: int) -> None:
        for _ in range(12):
            shared[:] = value
            await ep.append(shared)

    async def main() -> None:
        async with (
            recorder.AsyncRecorder(
                tmp_path, episode_trigger=lambda e: True, on_full="block",
                max_queue_bytes=2 * shared.nbytes,
            ) as rec,
            rec.episode(0) as a,
            rec.episode(1) as b,
            anyio.create_task_group() as tg,
        ):  # fmt: skip
            tg.start_soon(env_task, a, 50)
            tg.start_soon(env_task, b, 200)

    anyio.run(main)
    for index, value in ((0, 50), (1, 200)):
        means = [f.mean() for f in decode(tmp_path / f"rl-video-episode-{index}.mp4").frames]
        assert len(means) == 12
        assert all(abs(m - value) < 6 for m in means), means


def _cartpole() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1", render_mode="rgb_array")


def test_a_wrapper_above_one_with_a_shared_recorder_has_a_spec(tmp_path: Path) -> None:
    with Recorder(tmp_path, on_full="block") as rec:
        env = gym.wrappers.RecordEpisodeStatistics(RecordVideo(_cartpole(), tmp_path, recorder=rec))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            spec = env.spec
        assert spec is not None
        assert spec.additional_wrappers[0].kwargs["recorder"] is rec
        env.close()


class _Trainer:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # what makes it impossible to deep-copy
        self.saved: list[Path] = []

    def on_saved(self, info: recorder.VideoInfo) -> None:
        self.saved.append(info.path)


def test_on_saved_as_a_method_of_an_object_holding_a_lock(tmp_path: Path) -> None:
    trainer = _Trainer()
    env = RecordVideo(_cartpole(), tmp_path / "v", on_saved=trainer.on_saved)
    env.reset(seed=0)
    env.step(0)
    env.close()
    assert trainer.saved == [tmp_path / "v" / "rl-video-episode-0.mp4"]


class _Painter(gym.Env[np.ndarray, int]):
    """An env whose state copies and pickles (CartPole's pygame clock does neither)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012
    observation_space = gym.spaces.Box(0, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode: str = "rgb_array") -> None:
        self.render_mode = render_mode
        self.t = 0

    def reset(
        self, *, seed: int | None = None, options: Any = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return np.zeros(2, np.float32), 1.0, self.t >= 10, False, {}

    def render(self) -> np.ndarray:
        return frame(10 * self.t)


def test_a_copied_or_unpickled_wrapper_records_on_its_own(tmp_path: Path) -> None:
    env = RecordVideo(_Painter(), tmp_path / "x", episode_trigger=lambda e: True)
    env.video_folder = str(tmp_path / "a")  # gymnasium's attributes, assigned: the copy's too
    env.name_prefix = "eval"
    env.frames_per_sec = 5
    env.reset(seed=0)
    env.step(0)  # a clip open: the copy has none, and its own Recorder
    twin = copy.deepcopy(env)
    assert twin._sink.recorder is not env._sink.recorder
    assert twin.episode_id == env.episode_id == 0
    assert (twin.video_folder, twin.name_prefix, twin.frames_per_sec) == (
        env.video_folder, "eval", 5,
    )  # fmt: skip
    twin.reset(seed=1)
    twin.step(0)
    twin.close()
    env.close()
    assert sorted(p.name for p in (tmp_path / "a").glob("*.mp4")) == [
        "eval-episode-0.mp4",
        "eval-episode-1.mp4",
    ]
    assert decode(tmp_path / "a" / "eval-episode-1.mp4").fps == 5
    plain = RecordVideo(_Painter(), tmp_path / "b")  # default triggers: they pickle
    again = pickle.loads(pickle.dumps(plain))
    again.reset(seed=0)
    again.step(0)
    again.close()
    plain.close()
    assert [p.name for p in (tmp_path / "b").glob("*.mp4")] == ["rl-video-episode-0.mp4"]


def test_a_recorder_is_not_pickled_and_copies_are_itself(tmp_path: Path) -> None:
    with Recorder(tmp_path) as rec:
        assert copy.copy(rec) is rec
        assert copy.deepcopy(rec) is rec
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(rec)


def test_every_clip_of_a_wrapper_with_the_longest_prefix_is_recorded(tmp_path: Path) -> None:
    prefix = "x" * recorder._testing.MAX_PREFIX_BYTES
    env = RecordVideo(
        _cartpole(), tmp_path / "v", name_prefix=prefix, episode_trigger=lambda e: True
    )
    for episode in range(12):  # episode 10 has a longer name than episode 9
        env.reset(seed=episode)
        env.step(0)
    with pytest.raises(ValueError, match="a clip name must be at most 220 bytes"):
        env.start_recording("x" * 221)
    env.close()
    assert len(list((tmp_path / "v").glob("*.mp4"))) == 12


def test_a_folder_no_file_can_be_made_in_is_an_error_at_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.access
    folders = {tmp_path / "v", tmp_path / "w"}
    monkeypatch.setattr(
        os, "access", lambda path, *a, **k: Path(path) not in folders and real(path, *a, **k)
    )
    with pytest.raises(PermissionError, match="cannot write into video_folder"):
        Recorder(tmp_path / "v")
    with pytest.raises(PermissionError, match="cannot write into"):
        RecordVideo(_cartpole(), tmp_path / "w")
    monkeypatch.undo()
    with Recorder(tmp_path / "v") as rec:  # writable again: usable
        (h,) = rec.submit([frame(0)])
    assert h.result().frames == 1


def test_the_gallery_links_captions_whose_name_is_not_utf8(tmp_path: Path) -> None:
    prefix = os.fsdecode(b"caf\xe9")
    with Recorder(tmp_path, name_prefix=prefix) as rec:
        rec.submit([frame(i) for i in range(3)], infos=[{"reward": 1.0}] * 3)
    page = build_gallery(tmp_path).read_text()
    assert 'src="caf%E9-episode-0.vtt"' in page


def test_clip_dropped_error_pickles_and_copies() -> None:
    error = recorder.ClipDroppedError("rl-video-episode-0", "queue full")
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(again) is recorder.ClipDroppedError
        assert (again.name, again.reason, str(again)) == (error.name, error.reason, str(error))


def test_the_async_methods_show_their_own_return_types() -> None:
    import inspect
    import typing

    for name, returns in (("submit", "list[AsyncClipHandle]"), ("episode", "AsyncEpisode")):
        method = getattr(recorder.AsyncRecorder, name)
        signature = inspect.signature(method)
        assert signature.return_annotation == returns
        assert list(signature.parameters) == list(
            inspect.signature(getattr(Recorder, name)).parameters
        )
        assert "return" in typing.get_type_hints(method)  # resolves (was a NameError)
    assert {"wrappers", "ray", "integrations", "AsyncRecorder"} <= set(dir(recorder))
    assert "vector" in dir(recorder.wrappers)


USER_CODE = """
import gymnasium as gym

import recorder
import recorder.wrappers

env = recorder.wrappers.RecordVideo(gym.make("CartPole-v1", render_mode="rgb_array"), "videos")
venv = gym.make_vec("CartPole-v1", num_envs=2, render_mode="rgb_array")
v = recorder.wrappers.vector.RecordVideo(venv, "videos")


def log_to(run: object) -> None:
    recorder.integrations.wandb(run)
"""


def test_the_lazily_loaded_modules_type_check_in_user_code(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "user.py").write_text(USER_CODE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         str(tmp_path / "user.py")],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


class _LongSession:
    producer = "p" * 64  # the longest name recorder.ray takes
    timeout = 30.0

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, name: str, data: bytes, record: dict[str, Any]) -> Any:
        import concurrent.futures

        (self.folder / name).write_bytes(data)
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        future.set_result(str(self.folder / name))
        return future


class _LongSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> _LongSession:
        return _LongSession(self.folder)


def test_a_sinks_producer_and_prefix_too_long_together_are_an_error_at_the_call(
    tmp_path: Path,
) -> None:
    (tmp_path / "sink").mkdir()
    rec = Recorder(
        tmp_path / "spool", name_prefix="x" * recorder._testing.MAX_PREFIX_BYTES,
        episode_trigger=lambda e: True, sink=_LongSink(tmp_path / "sink"),  # type: ignore[arg-type]
    )  # fmt: skip
    try:
        with pytest.raises(ValueError, match="over 220 bytes"):
            rec.submit([frame(0)])
        rec.flush(timeout=30)  # nothing failed in the background
        assert rec.stats().videos_started == 0
    finally:
        rec.close()


def test_threads_refused_at_shutdown_are_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Python 3.12.0-3.12.2 do once the main thread has ended (gh-113964).
    real = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name.startswith("recorder-"):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        real(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(RuntimeError, match=r"3\.12\.3 or later"):
        Recorder(tmp_path)
    monkeypatch.undo()
    with Recorder(tmp_path) as rec:
        (handle,) = rec.submit([frame(0)])
    assert handle.result().frames == 1


def test_a_wrapper_with_a_keep_policy_and_no_trigger_pickles(tmp_path: Path) -> None:
    env = RecordVideo(_Painter(), tmp_path / "v", recorder_kwargs={"keep": recorder.Keep(best=3)})
    again = pickle.loads(pickle.dumps(env))
    assert again.episode_trigger(7)  # every episode is a candidate, as in the original
    again.close()
    env.close()
