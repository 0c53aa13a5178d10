"""Encode throughput (issue 7 scenario 3): recorder vs PyAV, ffmpeg, imageio-ffmpeg, moviepy.

Usage: ``python scripts/bench_encode.py [--quick] [--out PATH] [--json PATH]``.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import av
import numpy as np

import recorder
from recorder._encode.encoder import keyframe_interval

TITLE = "Encode throughput: recorder vs PyAV, ffmpeg, imageio-ffmpeg, moviepy"
FPS = 30
CRF = 23
THREADS = 1
#: the recorder's keyframe interval (its mp4 fragments), given to every tool: the same stream.
GOP = keyframe_interval(FPS)
#: what the ffmpeg-based tools are given besides the codec and the preset.
X264_ARGS = ["-crf", str(CRF), "-threads", str(THREADS), "-g", str(GOP), "-movflags", "+faststart"]
X264_SHOWN = "preset threads lookahead_threads crf bframes ref subme me"  # in the notes
REC1_VS_FFMPEG = 1.0  # target: recorder 1 worker frames/s / ffmpeg CLI's
REC2_VS_REC1 = 1.6  # target: recorder 2 workers / 1 worker
Case = tuple[int, int, str | None]  # height, width, preset (None: the recorder's default)
CASES: tuple[Case, ...] = ((64, 64, None), (256, 256, None), (400, 600, None), (720, 1280, None),
                           (400, 600, "veryfast"))  # fmt: skip


@dataclass(frozen=True)
class Config:
    """How much to measure: frames per case (in the order of CASES), videos they are cut in."""

    frames: tuple[int, ...]
    videos: int
    rounds: int
    base_frames: int  # distinct CartPole renders, cycled


FULL = Config((3000, 1200, 480, 160, 240), videos=4, rounds=5, base_frames=480)
QUICK = Config((80, 40, 24, 8, 16), videos=2, rounds=1, base_frames=24)

# -- the tools: the peers write one video, the runs return the last file ------------------------

Video = list[np.ndarray]


def pyav(video: Video, path: Path, preset: str) -> None:
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as c:
        stream: Any = c.add_stream("libx264", rate=FPS)
        stream.height, stream.width = video[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = THREADS
        stream.codec_context.gop_size = GOP
        stream.options = {"crf": str(CRF), "preset": preset}
        for frame in video:
            c.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        c.mux(stream.encode(None))


def ffmpeg_cli(video: Video, path: Path, preset: str) -> None:
    exe = bu.ffmpeg_exe()
    bu.ffmpeg_encode(exe, video, path, fps=FPS, crf=CRF, preset=preset, threads=THREADS)


def imageio(video: Video, path: Path, preset: str) -> None:
    import imageio_ffmpeg

    height, width = video[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=FPS, codec="libx264", quality=None, macro_block_size=1,
        ffmpeg_log_level="error", output_params=["-preset", preset, *X264_ARGS],
    )  # fmt: skip
    writer.send(None)
    for frame in video:
        writer.send(frame)
    writer.close()


def moviepy(video: Video, path: Path, preset: str) -> None:
    from moviepy import ImageSequenceClip

    with ImageSequenceClip(video, fps=FPS) as clip:
        clip.write_videofile(
            str(path), codec="libx264", preset=preset, audio=False, logger=None,
            ffmpeg_params=X264_ARGS,
        )  # fmt: skip


def one_by_one(key: str, videos: list[Video], folder: Path, preset: str) -> Path:
    """Peer *key* encodes the videos one after another; the last file."""
    (folder / key).mkdir(parents=True, exist_ok=True)
    paths = [folder / key / f"video-{i}.mp4" for i in range(len(videos))]
    for video, path in zip(videos, paths, strict=True):
        PEERS[key](video, path, preset)
    return paths[-1]


def submit_all(rec: recorder.Recorder, videos: list[Video], episodes: Iterator[int]) -> Path:
    """``submit`` each video to a long-lived recorder, then ``flush()``; the last file."""
    handles = [h for video in videos for h in rec.submit(video, episode_index=next(episodes))]
    rec.flush()
    infos = [h.result() for h in handles]
    if sum(i.frames for i in infos) != sum(map(len, videos)):
        raise RuntimeError(f"{rec.video_folder}: frames missing")
    return infos[-1].path


PEERS = {"pyav": pyav, "ffmpeg": ffmpeg_cli, "imageio": imageio, "moviepy": moviepy}
# (workers, worker_nice) of each recorder variant; the recorder's default nice is 10.
RECORDERS = {"recorder-1": (1, 10), "recorder-2": (2, 10), "recorder-1-nice0": (1, 0)}
LABELS = {
    "recorder-1": "recorder, 1 worker",
    "recorder-2": "recorder, 2 workers",
    "recorder-1-nice0": "recorder, 1 worker, `worker_nice=0`",
    "pyav": "PyAV, plain loop (`from_ndarray` + `encode`)",
    "ffmpeg": "ffmpeg CLI (rawvideo on stdin)",
    "imageio": "imageio-ffmpeg `write_frames`",
    "moviepy": "moviepy `ImageSequenceClip.write_videofile`",
}

# -- measuring ----------------------------------------------------------------------------------


def measure_case(case: Case, frames: int, base: Video, bench: bu.Bench) -> dict[str, Any]:
    height, width, preset = case
    preset = preset or recorder.Codec("h264").ffmpeg_settings()[3]["preset"]
    cfg = bench.cfg
    size = f"{width}x{height}"
    per = frames // cfg.videos
    cycled = list(itertools.islice(itertools.cycle(bu.resized(base, height, width)), frames))
    videos = [cycled[i * per : (i + 1) * per] for i in range(cfg.videos)]
    folder = bench.tmp / f"{size}-{preset}"
    episodes = itertools.count(1)
    with contextlib.ExitStack() as stack:
        # One long-lived Recorder per variant, as in a training run (threads and buffers warm).
        recs: dict[str, recorder.Recorder] = {}
        for k, (workers, nice) in RECORDERS.items():
            recs[k] = stack.enter_context(recorder.Recorder(
                folder / k, fps=FPS, episode_trigger=bu.always, workers=workers, on_full="block",
                preset=preset, crf=CRF, worker_nice=nice, sidecars=False,
            ))  # fmt: skip
        runs = [bu.Variant(k, partial(submit_all, r, videos, episodes)) for k, r in recs.items()]
        runs += [bu.Variant(k, partial(one_by_one, k, videos, folder, preset)) for k in PEERS]
        bu.log(f"encode {size} {preset}: warm-up")
        for v in runs:
            v.run()
        bu.log(f"encode {size} {preset}: {len(runs)} tools x {cfg.rounds} interleaved rounds")
        bu.interleave(cfg.rounds, runs)
    total = per * cfg.videos
    fps = {v.label: [total / u.wall for u in v.usages] for v in runs}
    # Each tool's last file: its frames, and the x264 settings it holds against the recorder's.
    files = {v.label: v.results[-1] for v in runs}
    checks = {
        k: {"packets": bu.video_frames(f), "x264": bu.x264_options(f)} for k, f in files.items()
    }
    for check in checks.values():
        check["same_x264"] = check["x264"] == checks["recorder-1"]["x264"]
    return {
        "size": size,
        "preset": preset,
        "videos": cfg.videos,
        "frames_per_video": per,
        "fps": {k: asdict(bu.spread(v)) for k, v in fps.items()},
        "cpu_ms_per_frame": {
            v.label: 1e3 * np.median([u.cpu for u in v.usages]) / total for v in runs
        },
        "rec1_vs_ffmpeg": asdict(bu.paired_ratios(fps["recorder-1"], fps["ffmpeg"])),
        "rec2_vs_rec1": asdict(bu.paired_ratios(fps["recorder-2"], fps["recorder-1"])),
        "vs_ffmpeg": {k: asdict(bu.paired_ratios(v, fps["ffmpeg"])) for k, v in fps.items()},
        "checks": checks,
        "reference_x264": checks["recorder-1"]["x264"],
    }


def tables(results: list[dict[str, Any]]) -> dict[str, str]:
    """The tools table, the targets table and the x264 notes."""
    rows: list[list[object]] = []
    ratio_rows: list[list[object]] = []
    notes = []
    for r in results:
        for key, label in LABELS.items():
            check = r["checks"][key]
            lost = "" if check["packets"] == r["frames_per_video"] else " ❌"
            rows.append(
                [r["size"], r["preset"], label, bu.fmt_spread(r["fps"][key], 0),
                 bu.fmt_spread(r["vs_ffmpeg"][key], 2), f"{r['cpu_ms_per_frame'][key]:.2f}",
                 f"{check['packets']}{lost}", "yes" if check["same_x264"] else "**no**"]
            )  # fmt: skip
        q1, q2 = bu.Spread(**r["rec1_vs_ffmpeg"]), bu.Spread(**r["rec2_vs_rec1"])
        # Both targets hold only for 1 worker's frames/s between these (medians).
        low = r["fps"]["ffmpeg"]["median"] * REC1_VS_FFMPEG
        high = r["fps"]["recorder-2"]["median"] / REC2_VS_REC1
        window = f"{low:.0f}-{high:.0f}" if low <= high else f"none ({low:.0f} > {high:.0f})"
        ratio_rows.append(
            [r["size"], r["preset"], f"{q1.fmt(2)} {bu.mark(q1.median >= REC1_VS_FFMPEG)}",
             f"{q2.fmt(2)} {bu.mark(q2.median >= REC2_VS_REC1)}",
             f"{r['fps']['recorder-1']['median']:.0f}", window]
        )  # fmt: skip
        differ = "; ".join(
            f"{k} `{bu.short_x264(c['x264'], X264_SHOWN)}`"
            for k, c in r["checks"].items()
            if not c["same_x264"]
        )
        notes.append(
            f"- {r['size']} {r['preset']}: recorder's x264 options "
            f"`{bu.short_x264(r['reference_x264'], X264_SHOWN)}`; "
            + (f"DIFFERENT in: {differ}" if differ else "identical in every tool's file.")
        )
    tools = bu.markdown_table(
        "frame | preset | tool | frames/s | vs ffmpeg CLI | CPU ms/frame | frames in last video "
        "| same x264 options",
        rows,
    )
    targets = bu.markdown_table(
        f"frame | preset | recorder 1 worker / ffmpeg CLI (target ≥ {REC1_VS_FFMPEG}) | "
        f"recorder 2 workers / 1 worker (target ≥ {REC2_VS_REC1}) | recorder 1 worker frames/s | "
        "1 worker frames/s meeting both targets",
        ratio_rows,
    )
    return {"tools": tools, "targets": targets, "notes": "\n".join(notes)}


def run(bench: bu.Bench) -> dict[str, Any]:
    """Every case; the tables and the x264 notes."""
    cfg = bench.cfg
    bu.log("collecting CartPole frames")
    base = bu.cartpole_frames(cfg.base_frames)
    results = [measure_case(c, n, base, bench) for c, n in zip(CASES, cfg.frames, strict=True)]
    bench.header()
    bench.say(
        "encode", cfg=cfg, fps=FPS, crf=CRF, threads=THREADS, rec2=REC2_VS_REC1, **tables(results)
    )
    bench.footer()
    return {"encode": results}


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
