"""Four env-runner actors on Ray record into one folder through one sink, then the gallery.

Each runner wraps its env in ``recorder.wrappers.RecordVideo`` with the sink in
``recorder_kwargs``: it encodes its own videos (CPU work that scales with the nodes) and only
the finished files travel to the sink actor, which writes them, their sidecars and
``manifest.jsonl`` into one folder on the driver's node.

Usage: python scripts/ray_example.py [--out videos/ray-example] [--episodes 4] [--every 2]
       [--address RAY_ADDRESS]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym
import ray

import recorder.ray
from recorder.wrappers import RecordVideo

ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"]


@ray.remote(num_cpus=0)
class EnvRunner:
    """What an RLlib env runner does with its env, reduced to random actions."""

    def __init__(self, index: int, env_id: str, sink: recorder.ray.VideoSink, every: int) -> None:
        env = gym.make(env_id, render_mode="rgb_array", max_episode_steps=200)
        # A spool of the runner's own: the temporary files being encoded (node-local disk).
        self.spool = tempfile.mkdtemp(prefix=f"recorder-spool-{index}-")
        self.env = RecordVideo(
            env,
            self.spool,
            episode_trigger=lambda e: e % every == 0,
            recorder_kwargs={"sink": sink.producer(f"runner-{index}")},
        )

    def sample(self, episodes: int) -> int:
        steps = 0
        for seed in range(episodes):
            self.env.reset(seed=seed)
            done = False
            while not done:
                _, _, terminated, truncated, _ = self.env.step(self.env.action_space.sample())
                done = terminated or truncated
                steps += 1
        self.env.close()  # waits until the runner's videos are on the sink's disk
        os.rmdir(self.spool)  # empty: nothing is left behind but on the sink's disk
        return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="videos/ray-example")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--address", help="a running Ray cluster (default: start a local one)")
    args = parser.parse_args()
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        sink = recorder.ray.start_sink(args.out)
        start = time.perf_counter()
        runners = [EnvRunner.remote(i, env, sink, args.every) for i, env in enumerate(ENVS)]
        steps = ray.get([r.sample.remote(args.episodes) for r in runners])
        seconds = time.perf_counter() - start
        stats = sink.stats()
        print(f"{sum(steps)} steps in {seconds:.1f} s; the sink wrote {stats.videos} videos:")
        for producer, counts in sorted(stats.producers.items()):
            print(f"  {producer}: {counts.videos} videos, {counts.bytes / 1e6:.2f} MB")
        sink.shutdown()
    finally:
        ray.shutdown()
    subprocess.run([sys.executable, "-m", "recorder", "gallery", args.out], check=True)


if __name__ == "__main__":
    main()
