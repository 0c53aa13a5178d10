"""recorder.ray on a local Ray cluster started here: producers in actors, one sink actor."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import helpers
import numpy as np
import pytest
import ray
from helpers import TinyEnv, always, decode, painted, play_episodes, run_child, wait_for_writers
from test_readme import python_blocks

import recorder
from recorder.ray import SinkServer, VideoSink, start_sink
from recorder.wrappers import RecordVideo

pytestmark = pytest.mark.timeout(240)

FRAMES = [painted(i) for i in range(12)]


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    # The test module and its helpers travel to the workers by value (they are not installed).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(helpers)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@ray.remote(num_cpus=0)
class Producer:
    """A Ray actor recording with its own Recorder into *sink*."""

    def __init__(self, sink: VideoSink, spool: str, **kwargs: Any) -> None:
        self.rec = recorder.Recorder(spool, sink=sink, episode_trigger=lambda e: True, **kwargs)
        self.handles: list[recorder.ClipHandle] = []
        self.ep: recorder.Episode | None = None

    def submit(self, episodes: int, frames: int = len(FRAMES)) -> int:
        for i in range(episodes):
            self.handles += self.rec.submit(FRAMES[:frames], episode_index=i)
        return len(self.handles)

    def open_episode(self, index: int, frames: int) -> None:
        """Stream *frames* frames of an episode and leave it open."""
        self.ep = self.rec.episode(index)
        for f in FRAMES[:frames]:
            self.ep.offer(lambda f=f: f)

    def stream_and_flush(self, index: int, frames: int) -> None:
        """Stream *frames* frames of an episode, leave it open, and wait until all are encoded."""
        self.ep = self.rec.episode(index)
        for k in range(frames):
            self.ep.append(painted(k))
        self.rec.flush()

    def results(self, timeout: float) -> list[str]:
        """Each handle's outcome: the sink path, or the error's type and message."""
        out = []
        for h in self.handles:
            try:
                out.append(str(h.result(timeout=timeout).path))
            except Exception as e:
                out.append(f"{type(e).__name__}: {e}")
        return out

    def close(self, timeout: float | None = None) -> tuple[float, str]:
        start = time.monotonic()
        try:
            self.rec.close(timeout=timeout)
            error = ""
        except BaseException as e:
            error = f"{type(e).__name__}: {e}"
        return time.monotonic() - start, error

    def stats(self) -> recorder.RecorderStats:
        return self.rec.stats()


@ray.remote(num_cpus=0)
class Gate:
    """An event between Ray actors: deliveries wait on it; the test opens it."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.waiting = 0
        self.changed = asyncio.Condition()

    async def wait(self) -> None:
        async with self.changed:
            self.waiting += 1
            self.changed.notify_all()
        await self.opened.wait()

    async def until_waiting(self, n: int) -> int:
        async with self.changed:
            await self.changed.wait_for(lambda: self.waiting >= n)
        return self.waiting

    def open(self) -> None:
        self.opened.set()


def gated_producer(tmp_path: Path, videos: int, **sink_options: Any) -> tuple[Any, Any, Any]:
    """A gate, a sink whose deliveries wait on it, and a producer that has submitted *videos*
    videos, the first of which the sink now holds."""
    gate = Gate.remote()
    sink = start_sink(tmp_path / "videos", server=GatedServer, server_args=(gate,), **sink_options)
    producer = Producer.remote(sink.producer("p"), str(tmp_path / "spool"))
    ray.get(producer.submit.remote(videos))
    ray.get(gate.until_waiting.remote(1))
    return gate, sink, producer


class GatedServer(SinkServer):
    """A sink that is slow: each delivery waits for the test's gate."""

    def __init__(self, folder: str, gate: Any) -> None:
        super().__init__(folder)
        self.gate = gate

    def deliver(self, *args: Any) -> str:
        ray.get(self.gate.wait.remote())
        return super().deliver(*args)


def final_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".mp4" and not p.name.startswith("."))


def check_folder(folder: Path) -> list[dict[str, Any]]:
    """Every final file decodes whole; the manifest has one line per video; returns it."""
    lines = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    videos = final_videos(folder)
    assert sorted(r["path"] for r in lines) == [p.name for p in videos]
    for record in lines:
        decoded = decode(folder / record["path"])
        assert len(decoded.frames) == record["frames"]
        sidecar = json.loads((folder / record["path"]).with_suffix(".json").read_text())
        assert sidecar["producer"] == record["producer"]
    assert not [p for p in folder.iterdir() if p.name.endswith(".sink-tmp")]
    return lines


def test_wrappers_in_two_actors_deliver_every_video_once(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    sink = start_sink(out)

    @ray.remote(num_cpus=0)
    def run(sink: VideoSink, env_id: str, spool: str, episodes: int) -> list[str]:
        import gymnasium as gym

        from recorder.wrappers import RecordVideo

        env = gym.make(env_id, render_mode="rgb_array", max_episode_steps=30)
        env = RecordVideo(
            env, spool, episode_trigger=lambda e: e % 2 == 0, recorder_kwargs={"sink": sink}
        )
        for seed in range(episodes):
            env.reset(seed=seed)
            done = False
            while not done:
                _, _, term, trunc, _ = env.step(env.action_space.sample())
                done = term or trunc
        env.close()
        return sorted(p.name for p in Path(spool).iterdir())

    runners = [
        run.remote(sink.producer("runner-1"), "CartPole-v1", str(tmp_path / "a"), 5),
        run.remote(sink.producer("runner-2"), "Acrobot-v1", str(tmp_path / "b"), 5),
    ]
    assert ray.get(runners, timeout=200) == [[], []]  # the spools keep nothing
    lines = check_folder(out)
    assert sorted(r["path"] for r in lines) == [
        f"runner-{i}-rl-video-episode-{e}.mp4" for i in (1, 2) for e in (0, 2, 4)
    ]
    assert {r["producer"] for r in lines} == {"runner-1", "runner-2"}
    stats = sink.stats()
    assert stats.videos == 6
    assert {k: v.videos for k, v in stats.producers.items()} == {"runner-1": 3, "runner-2": 3}
    assert stats.bytes == sum((out / r["path"]).stat().st_size for r in lines)
    assert stats.failures == stats.renamed == 0
    # The gallery and the CLI see the sink's folder as any folder.
    assert run_child(["-m", "recorder", "gallery"], out).returncode == 0
    page = (out / "index.html").read_text()
    assert all(r["path"] in page for r in lines)
    sink.shutdown()


def test_same_producer_name_twice_is_disambiguated_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    sink = start_sink(out).producer("twin")
    producers = [Producer.remote(sink, str(tmp_path / f"spool{i}")) for i in range(2)]
    ray.get([p.submit.remote(2, 6 + 3 * i) for i, p in enumerate(producers)])
    results = ray.get([p.results.remote(60) for p in producers])
    ray.get([p.close.remote() for p in producers])
    paths = [Path(r) for rs in results for r in rs]
    assert len(set(paths)) == 4
    assert all(p.parent == out for p in paths)
    lines = check_folder(out)
    assert sorted(r["frames"] for r in lines) == [6, 6, 9, 9]  # none overwritten
    assert {p.name for p in paths} == {
        "twin-rl-video-episode-0.mp4",
        "twin-rl-video-episode-0-2.mp4",
        "twin-rl-video-episode-1.mp4",
        "twin-rl-video-episode-1-2.mp4",
    }
    assert sink.stats().renamed == 2
    sink.shutdown()


def test_one_name_in_two_codecs_keeps_each_videos_own_sidecar(tmp_path: Path) -> None:
    # twin-...-episode-0.mp4 and .webm would share twin-...-episode-0.json: the second is renamed.
    out = tmp_path / "videos"
    sink = start_sink(out).producer("twin")
    producers = [
        Producer.remote(sink, str(tmp_path / f"spool-{codec}"), codec=codec)
        for codec in ("h264", "vp9")
    ]
    for p in producers:  # one after the other: the h264 video takes the name first
        ray.get(p.submit.remote(1))
        assert ray.get(p.results.remote(60))[0].startswith(str(out))
    ray.get([p.close.remote() for p in producers])
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["path"] for r in lines) == [
        "twin-rl-video-episode-0-2.webm",
        "twin-rl-video-episode-0.mp4",
    ]
    for record in lines:
        assert len(decode(out / record["path"]).frames) == len(FRAMES)
    assert json.loads((out / "twin-rl-video-episode-0.json").read_text())["codec"] == "h264"
    assert json.loads((out / "twin-rl-video-episode-0-2.json").read_text())["codec"] == "vp9"
    assert sink.stats().renamed == 1
    sink.shutdown()


def test_driver_recorder_handles_resolve_to_the_sinks_path(tmp_path: Path) -> None:
    sink = start_sink(tmp_path / "videos")
    saved: list[recorder.VideoInfo] = []
    with recorder.Recorder(tmp_path / "spool", sink=sink, on_saved=saved.append) as rec:
        (handle,) = rec.submit(FRAMES, episode_index=0)
        info = handle.result(timeout=60)
    assert info.path.parent == tmp_path / "videos"
    assert info.path.name.endswith("-rl-video-episode-0.mp4")
    assert decode(info.path).indices == list(range(len(FRAMES)))
    assert saved == [info]
    assert rec.stats().videos_saved == 1
    assert rec.stats().queued_bytes == 0
    assert list((tmp_path / "spool").iterdir()) == []
    sink.shutdown()


def test_a_second_sink_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    sink = start_sink(tmp_path)
    with pytest.raises(RuntimeError, match="another recorder sink"):
        start_sink(tmp_path)
    sink.shutdown()


def test_bad_producer_name_and_sink_are_refused_at_the_call(tmp_path: Path) -> None:
    sink = start_sink(tmp_path / "v")
    with pytest.raises(ValueError, match="producer name"):
        sink.producer("../up")
    with pytest.raises(TypeError, match="sink"):
        recorder.Recorder(tmp_path, sink="videos")  # type: ignore[arg-type]
    sink.shutdown()


def test_producer_killed_mid_episode_loses_only_its_open_clip(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    sink = start_sink(out)
    doomed = Producer.remote(sink.producer("doomed"), str(tmp_path / "s1"))
    other = Producer.remote(sink.producer("other"), str(tmp_path / "s2"))
    ray.get(doomed.submit.remote(2))
    ray.get(doomed.results.remote(60))  # both delivered
    ray.get(doomed.open_episode.remote(7, 8))
    ray.kill(doomed)
    ray.get(other.submit.remote(2))
    assert ray.get(other.close.remote(60))[1] == ""
    lines = check_folder(out)
    assert sorted(r["path"] for r in lines) == [
        f"{p}-rl-video-episode-{e}.mp4" for p in ("doomed", "other") for e in (0, 1)
    ]
    sink.shutdown()


def test_sink_killed_fails_the_handles_clearly_and_close_does_not_hang(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    _gate, sink, producer = gated_producer(tmp_path, 3)
    sink.shutdown()
    seconds, error = ray.get(producer.close.remote(30))
    assert seconds < 30
    assert error == "ExceptionGroup: 3 videos failed (3 sub-exceptions)"
    results = ray.get(producer.results.remote(0))
    assert len(results) == 3
    assert all("ActorDiedError" in r and "died" in r for r in results)
    stats = ray.get(producer.stats.remote())
    assert stats.videos_failed == 3
    assert stats.videos_saved == 0
    assert final_videos(out) == []  # nothing under a final name


def test_close_without_a_timeout_gives_up_on_a_sink_that_answers_nothing(tmp_path: Path) -> None:
    gate = Gate.remote()
    sink = start_sink(tmp_path / "videos", server=GatedServer, server_args=(gate,))
    impatient = dataclasses.replace(sink.producer("p"), timeout=2.0)
    producer = Producer.remote(impatient, str(tmp_path / "spool"))
    try:
        ray.get(producer.submit.remote(2))
        ray.get(gate.until_waiting.remote(1))  # the sink holds the first video, for ever
        seconds, error = ray.get(producer.close.remote(), timeout=60)  # close(): no timeout
    finally:
        ray.get(gate.open.remote())
    assert seconds < 2.0 + 5
    assert error == "ExceptionGroup: 2 videos failed (2 sub-exceptions)"
    results = ray.get(producer.results.remote(0))
    assert results == ["TimeoutError: the recorder's sink answered nothing for 2 s"] * 2
    sink.shutdown()


def test_a_sink_in_a_process_forked_from_a_ray_one_is_refused_at_the_call(tmp_path: Path) -> None:
    # RLlib's envs in forked processes: Ray's connection does not survive fork(), so the sink
    # would never answer there (no video, no error, and close() waiting for ever).
    sink = start_sink(tmp_path / "videos")
    env = RecordVideo(
        TinyEnv(),
        str(tmp_path / "spool"),
        episode_trigger=always,
        recorder_kwargs={"sink": sink.producer("parent")},
    )

    def child() -> None:
        with pytest.raises(RuntimeError, match="forked from one connected to Ray"):
            recorder.Recorder(tmp_path / "child", sink=sink)
        # A wrapper made before fork() makes a Recorder of its own in the child: the same.
        with pytest.raises(RuntimeError, match="forked from one connected to Ray"):
            env.reset(seed=1)

    try:
        assert run_child(child).returncode == 0
        play_episodes(env, [0])  # the parent's recording goes on
    finally:
        env.close()
    assert [r["path"] for r in check_folder(tmp_path / "videos")] == [
        "parent-rl-video-episode-0.mp4"
    ]
    sink.shutdown()


def test_sink_with_restarts_retries_what_it_was_writing(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    gate = Gate.remote()
    sink = start_sink(out, max_restarts=1, server=GatedServer, server_args=(gate,))
    producer = Producer.remote(sink.producer("p"), str(tmp_path / "spool"))
    ray.get(producer.submit.remote(2))
    ray.get(gate.until_waiting.remote(1))
    ray.kill(sink.actor, no_restart=False)  # dies holding the first delivery; restarts
    ray.get(gate.open.remote())
    assert all(r.startswith(str(out)) for r in ray.get(producer.results.remote(60)))
    assert ray.get(producer.close.remote(60))[1] == ""
    lines = check_folder(out)
    assert sorted(r["path"] for r in lines) == [f"p-rl-video-episode-{e}.mp4" for e in (0, 1)]
    sink.shutdown()


def test_slow_sink_never_blocks_the_producer_with_drop(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    gate = Gate.remote()
    sink = start_sink(out, server=GatedServer, server_args=(gate,))
    frame_bytes = FRAMES[0].nbytes
    # Room for a few frames: the videos waiting for the sink soon fill it.
    producer = Producer.remote(
        sink.producer("p"), str(tmp_path / "spool"), max_queue_bytes=6 * frame_bytes
    )
    # Returns while the sink holds the first video: submitting never waited for the sink.
    assert ray.get(producer.submit.remote(40, 4), timeout=120) == 40
    ray.get(gate.open.remote())
    ray.get(producer.close.remote(60))
    stats = ray.get(producer.stats.remote())
    results = ray.get(producer.results.remote(0))
    saved = [r for r in results if r.startswith(str(out))]
    dropped = [r for r in results if r.startswith("ClipDroppedError")]
    assert len(saved) + len(dropped) == 40
    assert dropped
    assert saved
    assert stats.videos_dropped == len(dropped)
    assert stats.videos_saved == len(saved)
    assert stats.peak_queued_bytes <= 6 * frame_bytes + max(Path(p).stat().st_size for p in saved)
    lines = check_folder(out)
    assert len(lines) == len(saved)
    assert all(r["frames"] == 4 for r in lines)  # whole videos, or none
    sink.shutdown()


def test_slow_sink_with_block_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    gate = Gate.remote()
    sink = start_sink(out, server=GatedServer, server_args=(gate,))
    producer = Producer.remote(
        sink.producer("p"),
        str(tmp_path / "spool"),
        max_queue_bytes=6 * FRAMES[0].nbytes,
        on_full="block",
    )
    submitted = producer.submit.remote(20, 4)
    ray.get(gate.until_waiting.remote(1))
    ray.get(gate.open.remote())
    assert ray.get(submitted, timeout=120) == 20
    assert ray.get(producer.close.remote(60))[1] == ""
    stats = ray.get(producer.stats.remote())
    assert stats.videos_saved == 20
    assert stats.videos_dropped == 0
    assert len(check_folder(out)) == 20
    sink.shutdown()


def test_sink_stats_reach_the_driver(tmp_path: Path) -> None:
    sink = start_sink(tmp_path / "videos")
    producer = Producer.remote(sink.producer("p"), str(tmp_path / "spool"))
    ray.get(producer.submit.remote(2))
    ray.get(producer.close.remote(60))
    stats = sink.stats()
    assert stats.videos == 2
    assert stats.producers["p"].videos == 2
    assert stats.bytes == stats.producers["p"].bytes > 0
    assert np.isclose(stats.bytes, sum(p.stat().st_size for p in final_videos(tmp_path / "videos")))
    sink.shutdown()


def test_unreachable_sink_close_honours_its_timeout(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    gate, sink, producer = gated_producer(tmp_path, 2)  # never answers while the gate is shut
    seconds, error = ray.get(producer.close.remote(3))
    assert 3 <= seconds < 10
    assert error.startswith("TimeoutError: close() timed out after 3 s")
    results = ray.get(producer.results.remote(0))
    assert (
        results == ["TimeoutError: the recorder closed before the sink acknowledged the video"] * 2
    )
    assert ray.get(producer.stats.remote()).videos_failed == 2
    # The sink still writes what it had been sent (at least once, never a partial file):
    # stats() answers after the deliveries queued before it.
    ray.get(gate.open.remote())
    assert sink.stats().videos == 2
    assert len(check_folder(out)) == 2
    sink.shutdown()


def test_the_example_script_fills_one_folder_and_its_gallery(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "ray_example.py"
    address = ray.get_runtime_context().gcs_address
    out = tmp_path / "videos"
    argv = ["--out", out, "--episodes", 2, "--every", 1, "--address", address]
    result = run_child([str(script)], *argv, timeout=200)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = check_folder(out)
    assert sorted(r["path"] for r in lines) == [
        f"runner-{i}-rl-video-episode-{e}.mp4" for i in range(4) for e in range(2)
    ]
    assert "the sink wrote 8 videos" in result.stdout
    assert all(r["path"] in (out / "index.html").read_text() for r in lines)


def test_producers_without_a_name_are_named_after_their_actor(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    sink = start_sink(out)
    producers = [Producer.remote(sink, str(tmp_path / f"s{i}")) for i in range(2)]
    ray.get([p.submit.remote(1) for p in producers])
    ray.get([p.close.remote(60) for p in producers])
    names = {r["producer"] for r in check_folder(out)}
    assert len(names) == 2
    assert all(re.fullmatch(r"actor-[0-9a-f]{8}-\d+", n) for n in names), names
    sink.shutdown()


def test_a_killed_producers_spool_is_recovered_under_its_name(tmp_path: Path) -> None:
    out, spool = tmp_path / "videos", tmp_path / "spool"
    sink = start_sink(out)
    doomed = Producer.remote(sink, str(spool), fps=10)  # a fragment every 20 frames
    ray.get(doomed.submit.remote(1))
    ray.get(doomed.results.remote(60))
    # 55 frames: the keyframe at 40 has left x264 veryfast's 10-frame lookahead (adaptive
    # quality), so the fragment of frames 20-39 is complete; Ray kills the encoders too.
    ray.get(doomed.stream_and_flush.remote(1, 55))
    ray.kill(doomed)
    wait_for_writers(spool)
    (producer,) = sink.stats().producers
    report = recorder.recover(spool)
    (video,) = report.recovered
    assert video.path.name == f"{producer}-rl-video-episode-1-partial.mp4"
    assert video.frames >= 40
    sidecar = json.loads(video.sidecar.read_text())
    assert (sidecar["partial"], sidecar["episode_index"]) == (True, 1)
    sink.shutdown()


# -- ray.md's RLlib example --------------------------------------------------------------------

RAY_PAGE = Path(__file__).resolve().parent.parent / "docs" / "ray.md"
SPOOL = '"/tmp/recorder-spool"'


def rllib_example(spool: Path) -> str:
    """ray.md's RLlib example, its spool moved into the test's folder."""
    (code,) = [b for b in python_blocks(RAY_PAGE) if "from ray.rllib" in b]
    assert code.count(SPOOL) == 1
    return code.replace(SPOOL, repr(str(spool)))


def rllib_installed() -> bool:
    try:
        importlib.import_module("ray.rllib.algorithms.ppo")
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


@pytest.mark.timeout(600)
def test_the_rllib_example_records_each_env_of_each_runner_apart(tmp_path: Path) -> None:
    """Run as written where RLlib is installed; elsewhere, its ``env_creator`` in env-runner
    actors that make, step and restart envs as RLlib 2.60's do."""
    code = rllib_example(tmp_path / "spool")
    if not rllib_installed():
        run_env_creator_as_rllib_does(tmp_path, code)
        return
    done = run_child(code, cwd=tmp_path, timeout=580)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "renamed=0" in done.stdout
    lines = check_folder(tmp_path / "videos")
    assert len({r["producer"] for r in lines}) == 4  # 2 runners x 2 envs
    assert "Overwriting existing videos" not in done.stderr
    assert os.listdir(tmp_path / "spool") == []


@ray.remote(num_cpus=0)
class Delivered:
    """The producers whose videos a sink has written, for a test to wait on."""

    def __init__(self) -> None:
        self.producers: set[str] = set()
        self.changed = asyncio.Condition()

    async def add(self, producer: str) -> None:
        async with self.changed:
            self.producers.add(producer)
            self.changed.notify_all()

    async def until(self, part: str, count: int) -> None:
        """Wait until *count* producers whose name holds *part* have delivered."""
        async with self.changed:
            await self.changed.wait_for(lambda: sum(part in p for p in self.producers) >= count)


class NotingServer(SinkServer):
    """A sink that tells *delivered* (a :class:`Delivered`) each producer it wrote for."""

    def __init__(self, folder: str, delivered: Any) -> None:
        super().__init__(folder)
        self.delivered = delivered

    def deliver(self, producer: str, *args: Any) -> str:
        path = super().deliver(producer, *args)
        ray.get(self.delivered.add.remote(producer))
        return path


class EnvContext(dict):  # type: ignore[type-arg]
    """RLlib's EnvContext: the env config, and where the env is."""

    def __init__(self, worker_index: int, vector_index: int = 0) -> None:
        super().__init__()
        self.worker_index = worker_index
        self.vector_index = vector_index  # RLlib 2.60 gives 0 to every env of a runner
        self.num_workers = 2


@ray.remote(num_cpus=0, max_restarts=1, max_task_retries=-1)
class RLlibLikeRunner:
    """An env runner as RLlib 2.60's SingleAgentEnvRunner makes its envs: the registered
    creator, called per env with the runner's EnvContext, in a SyncVectorEnv."""

    def __init__(self, creator: Any, worker_index: int, envs: int) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.env = gym.vector.SyncVectorEnv(
                [lambda: creator(EnvContext(worker_index)) for _ in range(envs)]
            )
        self.warnings = [str(w.message) for w in caught]
        self.env.action_space.seed(worker_index)
        self.env.reset(seed=worker_index)

    def sample(self) -> int:
        """Step until every env has ended an episode and been reset (the reset ends the
        episode's clip, as gymnasium's RecordVideo does); this runner's process id."""
        ended = np.zeros(self.env.num_envs, bool)
        while not ended.all():
            *_, terminated, truncated, _ = self.env.step(self.env.action_space.sample())
            ended |= terminated | truncated
        self.env.step(self.env.action_space.sample())  # autoreset: the last ones' reset
        return os.getpid()

    def made_with(self) -> list[str]:
        return self.warnings

    def stop(self) -> None:
        self.env.close()  # algo.stop(): the wrappers' last videos reach the sink


def run_env_creator_as_rllib_does(tmp_path: Path, code: str) -> None:
    # The example's env_creator and the imports it needs: not RLlib's or Tune's.
    keep = [
        node
        for node in ast.parse(code).body
        if (isinstance(node, ast.FunctionDef) and node.name == "env_creator")
        or (
            isinstance(node, ast.Import | ast.ImportFrom)
            and not re.search(r"rllib|tune", ast.unparse(node))
        )
    ]
    delivered = Delivered.remote()
    namespace: dict[str, Any] = {
        "__name__": "ray_md_example",
        "sink": start_sink(tmp_path / "videos", server=NotingServer, server_args=(delivered,)),
    }
    exec(compile(ast.Module(keep, []), "docs/ray.md", "exec"), namespace)
    sink, creator = namespace["sink"], namespace["env_creator"]
    runners = {i: RLlibLikeRunner.remote(creator, i, 2) for i in (1, 2)}
    first_life = ray.get(runners[1].sample.remote())
    ray.get(runners[2].sample.remote())
    ray.get(delivered.until.remote(f"-{first_life}", 2), timeout=60)  # both envs' episode 0
    ray.kill(runners[1], no_restart=False)  # a crash: Ray restarts it, same worker_index
    second_life = ray.get(runners[1].sample.remote())
    assert second_life != first_life
    made_with = ray.get([r.made_with.remote() for r in runners.values()])
    ray.get([r.stop.remote() for r in runners.values()])
    stats = sink.stats()
    lines = check_folder(tmp_path / "videos")
    assert stats.renamed == 0
    producers = {r["producer"] for r in lines}
    # Each env of each runner's each life: its own name, so its own series in the gallery.
    assert len(producers) == 6
    assert len({p for p in producers if f"-{first_life}" in p}) == 2
    assert len({p for p in producers if f"-{second_life}" in p}) == 2
    assert not [w for ws in made_with for w in ws if "Overwriting existing videos" in w]
    sink.shutdown()


def test_a_sink_used_where_ray_is_not_initialized_fails_at_the_recorder(tmp_path: Path) -> None:
    code = (
        "import recorder, recorder.ray\n"
        "sink = recorder.ray.VideoSink(actor=None, folder='x')\n"
        f"recorder.Recorder({str(tmp_path)!r}, sink=sink)\n"
    )
    result = run_child(code)
    assert result.returncode == 1
    assert "RuntimeError: a recorder.ray sink is used from a process where Ray is not" in (
        result.stderr
    )


def test_a_name_delivered_again_and_again_is_not_probed_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each evaluation's wrapper counts episodes from 0: the sink tried stem, stem-2, ...
    # stem-n for the n-th copy (46 ms a video after 5000). The server alone, without Ray.
    server = SinkServer(str(tmp_path / "out"))
    probes: list[str] = []  # names tried: a sidecar looked for, a link made or refused
    real_link, real_exists = os.link, Path.exists

    def link(src: Any, dst: Any) -> None:
        probes.append(str(dst))
        real_link(src, dst)

    def exists(path: Path) -> bool:
        probes.append(str(path))
        return real_exists(path)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(Path, "exists", exists)
    record = {"frames": 1, "fps": 30.0}
    paths = [server.deliver("p", f"d{i}", "ep.mp4", b"not a video", record) for i in range(30)]
    monkeypatch.undo()
    assert [Path(p).name for p in paths] == ["p-ep.mp4"] + [f"p-ep-{n}.mp4" for n in range(2, 31)]
    assert len(probes) <= 4 * len(paths)  # each copy tries its own number (and maybe one more)
    assert server.stats().renamed == 29
