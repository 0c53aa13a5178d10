"""Record CartPole-v1 in the background and print what happened.

Usage: python scripts/demo.py [--out videos] [--episodes 30]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym

import recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="videos", help="video folder (default: videos)")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--env", default="CartPole-v1")
    args = parser.parse_args()

    env = gym.make(args.env, render_mode="rgb_array")
    fps = env.metadata.get("render_fps", 30)
    in_recorder = 0.0
    start = time.perf_counter()
    with recorder.Recorder(args.out, fps=fps, episode_trigger=lambda e: e % 5 == 0) as rec:
        for episode in range(args.episodes):
            env.reset(seed=episode)
            t0 = time.perf_counter()
            ep = rec.episode(episode)
            in_recorder += time.perf_counter() - t0
            done = False
            while True:
                t0 = time.perf_counter()
                wanted = ep.wants_frame
                in_recorder += time.perf_counter() - t0
                if wanted:
                    frame = env.render()
                    t0 = time.perf_counter()
                    ep.append(frame)
                    in_recorder += time.perf_counter() - t0
                else:
                    ep.skip()
                if done:
                    break
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                done = terminated or truncated
            ep.close()
        loop = time.perf_counter() - start
    total = time.perf_counter() - start
    env.close()
    stats = rec.stats()
    print(
        f"episodes: {args.episodes}, videos saved: {stats.videos_saved}, "
        f"dropped: {stats.videos_dropped}, failed: {stats.videos_failed}"
    )
    print(
        f"frames encoded: {stats.frames_encoded}, "
        f"encode speed: {stats.frames_encoded / max(stats.encode_seconds, 1e-9):.0f} frames/s"
    )
    print(
        f"training loop: {loop:.2f} s, of which in recorder calls: {in_recorder * 1e3:.1f} ms; "
        f"all videos on disk after {total:.2f} s"
    )
    print(f"videos in {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
