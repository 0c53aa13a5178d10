"""Encode throughput (issue 7 scenario 3): recorder vs PyAV, ffmpeg, imageio-ffmpeg, moviepy.

Each tool and case is a pyperf benchmark (worker processes, warm-ups); one pyperf file per tool.

Usage: ``python scripts/bench_encode.py [--quick] [--out PATH] [--json PATH]``.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import av
import numpy as np

import recorder
from recorder._testing import keyframe_interval

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
REC2_VS_REC1 = 1.6  # target: recorder 2 workers / 1 worker (retired at ultrafast: see the .md)
RETIRED_PRESETS = ("ultrafast",)  # ... where 2 CPUs shared with others cannot settle it
Case = tuple[int, int, str | None]  # height, width, preset (None: DEFAULT_PRESET)
#: the preset of the cases that name none: ultrafast, pinned (the recorder's default moves with
#: its backlog since issue 30; every tool here gets the same fixed preset)
DEFAULT_PRESET = "ultrafast"
CASES: tuple[Case, ...] = ((64, 64, None), (256, 256, None), (400, 600, None), (720, 1280, None),
                           (400, 600, "veryfast"))  # fmt: skip


@dataclass(frozen=True)
class Config:
    """How much to measure: frames per case (in the order of CASES), videos they are cut in,
    distinct CartPole renders (cycled), and pyperf's plan."""

    frames: tuple[int, ...]
    videos: int
    base_frames: int
    perf: bu.PerfPlan


FULL = Config((3000, 1200, 480, 160, 240), 4, 480, bu.PerfPlan(3, 2, 1, loops=1))
QUICK = Config((80, 40, 24, 8, 16), 2, 24, bu.PerfPlan(1, 2, 1, loops=1))


def preset_of(case: Case) -> str:
    """The case's preset (:data:`DEFAULT_PRESET` when it names none)."""
    return case[2] or DEFAULT_PRESET


def retired(preset: str) -> bool:
    """Whether the target of 2 workers / 1 worker is retired at *preset*."""
    return preset in RETIRED_PRESETS


def case_name(case: Case) -> str:
    """``WxH preset``: the name of the case's pyperf benchmark in every tool's file."""
    return f"{case[1]}x{case[0]} {preset_of(case)}"


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

# -- measuring: the pyperf workers -------------------------------------------------------------


def make_run(
    key: str, case: Case, frames: int, videos: int, data: Path, stack: contextlib.ExitStack
) -> Callable[[], Path]:
    """What one value of tool *key* on *case* runs (a worker's first call makes it): encode the
    case's videos, the last file. A recorder is one long-lived ``Recorder`` per worker, as in a
    training run (threads and buffers warm after pyperf's warm-up)."""
    height, width, _ = case
    preset, per = preset_of(case), frames // videos
    folder = bu.scratch(stack, data, key)
    base = list(np.load(data / "frames.npy"))  # the parent's CartPole renders
    cycled = list(itertools.islice(itertools.cycle(bu.resized(base, height, width)), frames))
    clips = [cycled[i * per : (i + 1) * per] for i in range(videos)]
    if key in PEERS:
        return partial(one_by_one, key, clips, folder, preset)
    workers, nice = RECORDERS[key]
    rec = stack.enter_context(recorder.Recorder(
        folder / key, fps=FPS, episode_trigger=bu.always, workers=workers, on_full="block",
        preset=preset, crf=CRF, worker_nice=nice, sidecars=False,
    ))  # fmt: skip
    return partial(submit_all, rec, clips, itertools.count(1))


def time_case(
    loops: int, key: str, case: Case, frames: int, videos: int, data: Path, stack: Any
) -> float:
    """pyperf's time function of tool *key* on *case*; notes the last file's frames and x264
    options (:data:`bu.perf_notes`) for the checks."""
    run = bu.made_once(case_name(case), partial(make_run, key, case, frames, videos, data, stack))
    last: list[Path] = []
    wall = bu.perf_time(loops, lambda: last.append(run()))
    bu.perf_notes["last"] = {"packets": bu.video_frames(last[-1]),
                             "x264": bu.x264_options(last[-1])}  # fmt: skip
    return wall


def perf(runner: Any, args: Any, stack: contextlib.ExitStack) -> None:
    """Tool ``args.variant``'s benchmarks: one per case, in frames (inner loops)."""
    cfg = QUICK if args.quick else FULL
    for case, frames in zip(CASES, cfg.frames, strict=True):
        total = frames // cfg.videos * cfg.videos
        runner.bench_time_func(case_name(case), time_case, args.variant, case, frames,
                               cfg.videos, args.data, stack, inner_loops=total)  # fmt: skip


# -- measuring: the parent ----------------------------------------------------------------------


def measure(bench: bu.Bench) -> dict[str, Any]:
    """Every tool's pyperf benchmarks, one file each; per case the frames/s, CPU, ratios with
    pyperf's verdicts and each tool's last file checked against the recorder's."""
    cfg = bench.cfg
    bu.log("collecting CartPole frames")
    np.save(bench.tmp / "frames.npy", np.stack(bu.cartpole_frames(cfg.base_frames)))
    files = {key: bench.perf(key, *cfg.perf.args()) for key in LABELS}
    runs = {key: bu.perf_load(path) for key, path in files.items()}
    verdicts = {key: bu.perf_compare(files["ffmpeg"], path) for key, path in files.items()
                if key != "ffmpeg"}  # fmt: skip
    rec2 = bu.perf_compare(files["recorder-1"], files["recorder-2"])
    results = []
    for case, frames in zip(CASES, cfg.frames, strict=True):
        name = case_name(case)
        bench_of = {key: runs[key][name] for key in LABELS}
        checks = {key: b["notes"][-1]["last"] for key, b in bench_of.items()}
        for check in checks.values():
            check["same_x264"] = check["x264"] == checks["recorder-1"]["x264"]
        ffmpeg = bench_of["ffmpeg"]
        results.append({
            "size": name.split()[0], "preset": preset_of(case), "videos": cfg.videos,
            "frames_per_video": frames // cfg.videos,
            "fps": {k: asdict(bu.spread(bu.perf_rates(b))) for k, b in bench_of.items()},
            "cpu_ms_per_frame": {k: bu.perf_cpu_ms(b) for k, b in bench_of.items()},
            "rec1_vs_ffmpeg": bu.speed_ratio(bench_of["recorder-1"], ffmpeg,
                                             verdicts["recorder-1"][name]),
            "rec2_vs_rec1": bu.speed_ratio(bench_of["recorder-2"], bench_of["recorder-1"],
                                           rec2[name]),
            "vs_ffmpeg": {k: bu.speed_ratio(b, ffmpeg, verdicts[k][name])
                          for k, b in bench_of.items() if k != "ffmpeg"},
            "checks": checks, "reference_x264": checks["recorder-1"]["x264"],
        })  # fmt: skip
    return {"cfg": asdict(cfg), "encode": results}


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
                 bu.fmt_compared(r["vs_ffmpeg"].get(key)) if key != "ffmpeg" else "1 (reference)",
                 f"{r['cpu_ms_per_frame'][key]:.2f}",
                 f"{check['packets']}{lost}", "yes" if check["same_x264"] else "**no**"]
            )  # fmt: skip
        q1, q2 = r["rec1_vs_ffmpeg"], r["rec2_vs_rec1"]
        rec2_mark = "" if retired(r["preset"]) else f" {bu.mark(q2['ratio'] >= REC2_VS_REC1)}"
        # Both targets hold only for 1 worker's frames/s between these (medians).
        low = r["fps"]["ffmpeg"]["median"] * REC1_VS_FFMPEG
        high = r["fps"]["recorder-2"]["median"] / REC2_VS_REC1
        window = f"{low:.0f}-{high:.0f}" if low <= high else f"none ({low:.0f} > {high:.0f})"
        ratio_rows.append(
            [r["size"], r["preset"],
             f"{bu.fmt_compared(q1)} {bu.mark(q1['ratio'] >= REC1_VS_FFMPEG)}",
             bu.fmt_compared(q2) + rec2_mark,
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


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    """The tables and the x264 notes."""
    cfg = data["cfg"]
    doc.header()
    doc.say(
        "encode", cfg=cfg, perf=cfg["perf"], fps=FPS, crf=CRF, threads=THREADS, rec2=REC2_VS_REC1,
        **tables(data["encode"]),
    )  # fmt: skip
    doc.footer()


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
