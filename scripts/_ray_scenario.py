"""Videos per second arriving at a recorder.ray sink, for 1, 2, 4 producer actors, against the
same producers writing to local folders (interleaved, medians of repeats)."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def _producer_class() -> Any:
    import ray

    import recorder

    @ray.remote(num_cpus=0)
    class Producer:
        def __init__(self, frames: list[np.ndarray]) -> None:
            self.frames = frames

        def run(self, folder: str, sink: Any, videos: int) -> tuple[float, int]:
            start = time.perf_counter()
            kwargs = {"sink": sink} if sink is not None else {}
            with recorder.Recorder(
                folder, episode_trigger=lambda e: True, on_full="block", **kwargs
            ) as rec:
                handles = [h for i in range(videos) for h in rec.submit(self.frames, i)]
            size = sum(h.result().size_bytes for h in handles)
            return time.perf_counter() - start, size

    return Producer


def measure(
    counts: tuple[int, ...] = (1, 2, 4), videos: int = 4, frames: int = 60, repeats: int = 3
) -> dict[str, Any]:
    """{(mode, producers): median videos/s}, the bytes per video and the raw frame bytes."""
    import ray

    import recorder.ray
    from _benchutil import cartpole_frames

    clip = cartpole_frames(frames)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        producer_class = _producer_class()
        actors = [producer_class.remote(clip) for _ in range(max(counts))]
        rates: dict[tuple[str, int], list[float]] = {}
        sizes: list[float] = []
        for r in range(repeats):
            for n in counts:
                for mode in ("sink", "local"):
                    out = root / f"{mode}-{n}-{r}"
                    sink = recorder.ray.start_sink(out / "sink") if mode == "sink" else None
                    start = time.perf_counter()
                    runs = [
                        a.run.remote(str(out / f"p{i}"), sink and sink.producer(f"p{i}"), videos)
                        for i, a in enumerate(actors[:n])
                    ]
                    results = ray.get(runs)
                    seconds = time.perf_counter() - start
                    rates.setdefault((mode, n), []).append(n * videos / seconds)
                    if mode == "sink":
                        assert sink is not None
                        stats = sink.stats()
                        assert stats.videos == n * videos, stats
                        sizes.append(stats.bytes / stats.videos)
                        sink.shutdown()
                    else:
                        sizes.append(sum(s for _, s in results) / (n * videos))
                    shutil.rmtree(out, ignore_errors=True)
        return {
            "rates": {k: statistics.median(v) for k, v in rates.items()},
            "bytes_per_video": statistics.median(sizes),
            "raw_bytes_per_video": frames * clip[0].nbytes,
        }
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    print(measure(videos=int(sys.argv[1]) if len(sys.argv) > 1 else 4, repeats=1))
