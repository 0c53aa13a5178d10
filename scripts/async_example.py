"""Step several CartPole-v1 envs concurrently on asyncio and record every episode.

Each env runs in its own task; ``await ep.append(frame)`` hands a frame over (a copy) and lets
the other envs step, while encoder threads write the videos. Leaving ``async with`` waits until
every video is on disk.

Usage: python scripts/async_example.py [--out videos/async-example] [--envs 4] [--episodes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time
from collections.abc import Iterator

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym

import recorder


async def run_env(
    rec: recorder.AsyncRecorder,
    env_id: int,
    episodes: int,
    indices: Iterator[int],
    handles: list[recorder.AsyncClipHandle],
) -> None:
    """Play *episodes* random episodes in one env, streaming the frames the recorder wants."""
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    try:
        for _ in range(episodes):
            index = next(indices)  # one numbering across envs: one file per episode
            env.reset(seed=index)
            async with rec.episode(index, metadata={"env": env_id, "seed": index}) as ep:
                done, episode_return = False, 0.0
                while True:
                    if ep.wants_frame:  # render only what a clip needs
                        await ep.append(env.render())
                    else:
                        ep.skip()
                        await asyncio.sleep(0)  # the other envs' turn
                    if done:
                        break
                    _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                    episode_return += float(reward)
                    done = terminated or truncated
                ep.metadata["return"] = episode_return
            handles.extend(ep.handles)
    finally:
        env.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="videos/async-example", help="video folder")
    parser.add_argument("--envs", type=int, default=4, help="envs stepped concurrently")
    parser.add_argument("--episodes", type=int, default=3, help="episodes per env")
    args = parser.parse_args()

    probe = gym.make("CartPole-v1")
    fps = probe.metadata.get("render_fps", 30)
    probe.close()
    handles: list[recorder.AsyncClipHandle] = []
    indices = itertools.count()
    start = time.perf_counter()
    async with recorder.AsyncRecorder(
        args.out,
        fps=fps,
        episode_trigger=lambda i: True,
        name_prefix="cartpole",
        workers=2,
        max_queue_bytes=64 * 2**20,
        on_full="block",  # lossless: a full queue suspends the env's task, never the loop
    ) as rec:
        async with asyncio.TaskGroup() as tg:
            for env_id in range(args.envs):
                tg.create_task(run_env(rec, env_id, args.episodes, indices, handles))
        stepped = time.perf_counter() - start
        for handle in sorted(handles, key=lambda h: h.index or 0):
            info = await handle  # a VideoInfo once the file is on disk
            print(
                f"{info.path.name}: {info.frames} frames, env {info.metadata['env']}, "
                f"return {info.metadata['return']:.0f}"
            )
    total = time.perf_counter() - start
    stats = rec.stats()
    print(
        f"{args.envs} envs x {args.episodes} episodes: stepped in {stepped:.2f} s, "
        f"all videos on disk after {total:.2f} s; saved {stats.videos_saved}, "
        f"dropped {stats.videos_dropped}, failed {stats.videos_failed}, "
        f"peak queue {stats.peak_queued_bytes / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    asyncio.run(main())
