"""Encode throughput (issue 7 scenario 3): recorder vs PyAV, ffmpeg, imageio-ffmpeg, moviepy.

The same frames (CartPole-v1 renders resized with numpy to 64x64, 256x256, 600x400 and
1280x720), split into several videos, encoded by each tool with the same settings: libx264,
the recorder's default preset (and veryfast at 600x400), crf 23, one codec thread per video,
yuv420p, +faststart. Wall time from nothing to every file complete; frames/s.

Usage::

    python scripts/bench_encode.py [--quick] [--out PATH] [--json PATH]

Prints a markdown report on stdout (progress on stderr). A missed target is printed, never an
error.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shlex
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import av
import numpy as np

import recorder
from recorder._encoder import keyframe_interval

FPS = 30
CRF = 23
THREADS = 1
#: the recorder's keyframe interval (its mp4 fragments), given to every tool: the same stream.
GOP = keyframe_interval(FPS)
REC1_VS_FFMPEG = 1.0  # target: recorder 1 worker frames/s / ffmpeg CLI's
REC2_VS_REC1 = 1.6  # target: recorder 2 workers / 1 worker


@dataclass(frozen=True)
class Case:
    """One frame size and preset, and how many frames to encode."""

    height: int
    width: int
    frames: int
    preset: str | None  # None: the recorder's default

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    cases: tuple[Case, ...]
    videos: int
    rounds: int
    base_frames: int  # distinct CartPole renders, cycled


FULL = Config(
    cases=(
        Case(64, 64, 3000, None),
        Case(256, 256, 1200, None),
        Case(400, 600, 480, None),
        Case(720, 1280, 160, None),
        Case(400, 600, 240, "veryfast"),
    ),
    videos=4,
    rounds=5,
    base_frames=480,
)
QUICK = Config(
    cases=(
        Case(64, 64, 80, None),
        Case(256, 256, 40, None),
        Case(400, 600, 24, None),
        Case(720, 1280, 8, None),
        Case(400, 600, 16, "veryfast"),
    ),
    videos=2,
    rounds=1,
    base_frames=24,
)


def default_preset() -> str:
    """The recorder's h264 preset (read from it, not assumed)."""
    return recorder.Codec("h264").ffmpeg_settings()[3]["preset"]


# -- the tools ----------------------------------------------------------------------------------

Videos = list[list[np.ndarray]]


def always(_: int) -> bool:
    return True


class Tools:
    """Each tool encodes the whole video set into its own folder (files overwritten per run)."""

    def __init__(self, folder: Path, videos: Videos, preset: str) -> None:
        self.folder = folder
        self.videos = videos
        self.preset = preset
        self.height, self.width = videos[0][0].shape[:2]
        self.recorders: dict[str, recorder.Recorder] = {}
        self.ffmpeg = bu.ffmpeg_exe()
        self.counter = 0
        self.last: dict[str, Path] = {}

    def path(self, tool: str, i: int) -> Path:
        folder = self.folder / tool
        folder.mkdir(exist_ok=True)
        self.last[tool] = folder / f"video-{i}.mp4"
        return self.last[tool]

    def start_recorders(self) -> None:
        """One long-lived Recorder per variant, as in a training run (threads and buffers warm)."""
        for tool, workers, nice in RECORDERS:
            self.recorders[tool] = recorder.Recorder(
                self.folder / tool, fps=FPS, episode_trigger=always, workers=workers,
                on_full="block", preset=self.preset, crf=CRF, worker_nice=nice, sidecars=False,
            )  # fmt: skip

    def close_recorders(self) -> None:
        for rec in self.recorders.values():
            rec.close()

    def recorder(self, tool: str) -> Callable[[], None]:
        def run() -> None:
            rec = self.recorders[tool]
            handles = []
            for video in self.videos:
                self.counter += 1
                handles += rec.submit(video, episode_index=self.counter)
            rec.flush()
            infos = [h.result() for h in handles]
            if sum(i.frames for i in infos) != sum(len(v) for v in self.videos):
                raise RuntimeError(f"{tool}: frames missing")
            self.last[tool] = infos[-1].path

        return run

    def pyav(self) -> None:
        for i, video in enumerate(self.videos):
            with av.open(str(self.path("pyav", i)), "w", options={"movflags": "+faststart"}) as c:
                stream: Any = c.add_stream("libx264", rate=FPS)
                stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
                stream.codec_context.thread_count = THREADS
                stream.codec_context.gop_size = GOP
                stream.options = {"crf": str(CRF), "preset": self.preset}
                for frame in video:
                    c.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                c.mux(stream.encode(None))

    def ffmpeg_cli(self) -> None:
        for i, video in enumerate(self.videos):
            bu.ffmpeg_encode(
                self.ffmpeg, video, self.path("ffmpeg", i), fps=FPS, crf=CRF,
                preset=self.preset, threads=THREADS,
            )  # fmt: skip

    def imageio(self) -> None:
        import imageio_ffmpeg

        for i, video in enumerate(self.videos):
            writer = imageio_ffmpeg.write_frames(
                str(self.path("imageio", i)), (self.width, self.height), fps=FPS,
                codec="libx264", quality=None, macro_block_size=1, ffmpeg_log_level="error",
                output_params=["-preset", self.preset, "-crf", str(CRF), "-threads",
                               str(THREADS), "-g", str(GOP), "-movflags", "+faststart"],
            )  # fmt: skip
            writer.send(None)
            for frame in video:
                writer.send(frame)
            writer.close()

    def moviepy(self) -> None:
        from moviepy import ImageSequenceClip

        for i, video in enumerate(self.videos):
            clip = ImageSequenceClip(video, fps=FPS)
            try:
                clip.write_videofile(
                    str(self.path("moviepy", i)), codec="libx264", preset=self.preset,
                    threads=THREADS, audio=False, logger=None,
                    ffmpeg_params=["-crf", str(CRF), "-g", str(GOP), "-movflags", "+faststart"],
                )  # fmt: skip
            finally:
                clip.close()


# (tool, workers, worker_nice): the recorder's default nice is 10.
RECORDERS: tuple[tuple[str, int, int], ...] = (
    ("recorder-1", 1, 10),
    ("recorder-2", 2, 10),
    ("recorder-1-nice0", 1, 0),
)
TOOLS: tuple[tuple[str, str], ...] = (
    ("recorder-1", "recorder, 1 worker"),
    ("recorder-2", "recorder, 2 workers"),
    ("recorder-1-nice0", "recorder, 1 worker, `worker_nice=0`"),
    ("pyav", "PyAV, plain loop (`from_ndarray` + `encode`)"),
    ("ffmpeg", "ffmpeg CLI (rawvideo on stdin)"),
    ("imageio", "imageio-ffmpeg `write_frames`"),
    ("moviepy", "moviepy `ImageSequenceClip.write_videofile`"),
)


def packets(path: Path) -> int:
    """Video packets in *path* (one per frame for these streams)."""
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(video=0) if p.size)


# -- measuring ----------------------------------------------------------------------------------


def measure_case(case: Case, base: Sequence[np.ndarray], cfg: Config, tmp: Path) -> dict[str, Any]:
    preset = case.preset or default_preset()
    frames_by_size = bu.resized(base, case.height, case.width)
    frames = [frames_by_size[i % len(frames_by_size)] for i in range(case.frames)]
    per = case.frames // cfg.videos
    videos = [frames[i * per : (i + 1) * per] for i in range(cfg.videos)]
    total = per * cfg.videos
    folder = tmp / f"{case.size}-{preset}"
    folder.mkdir()
    tools = Tools(folder, videos, preset)
    fns: dict[str, Callable[[], None]] = {
        **{tool: tools.recorder(tool) for tool, _, _ in RECORDERS},
        "pyav": tools.pyav,
        "ffmpeg": tools.ffmpeg_cli,
        "imageio": tools.imageio,
        "moviepy": tools.moviepy,
    }
    cpu: dict[str, list[float]] = {k: [] for k in fns}

    def timed(key: str) -> Callable[[], float]:
        def run() -> float:
            c0 = sum(bu.cpu_seconds())
            wall = bu.elapsed(fns[key])
            cpu[key].append(sum(bu.cpu_seconds()) - c0)
            return total / wall

        return run

    bu.log(f"encode {case.size} {preset}: warm-up")
    tools.start_recorders()
    try:
        for fn in fns.values():
            fn()
        bu.log(f"encode {case.size} {preset}: {len(fns)} tools x {cfg.rounds} interleaved rounds")
        fps = bu.interleave(cfg.rounds, {k: timed(k) for k in fns})
    finally:
        tools.close_recorders()
    reference = bu.x264_options(tools.last["recorder-1"])
    checks = {}
    for key in fns:
        opts = bu.x264_options(tools.last[key])
        checks[key] = {
            "packets": packets(tools.last[key]),
            "same_x264": opts == reference,
            "x264": opts,
        }
    return {
        "size": case.size,
        "preset": preset,
        "videos": cfg.videos,
        "frames_per_video": per,
        "fps": {k: asdict(bu.spread(v)) for k, v in fps.items()},
        "cpu_ms_per_frame": {k: 1e3 * np.median(v) / total for k, v in cpu.items()},
        "rec1_vs_ffmpeg": asdict(bu.paired_ratios(fps["recorder-1"], fps["ffmpeg"])),
        "rec2_vs_rec1": asdict(bu.paired_ratios(fps["recorder-2"], fps["recorder-1"])),
        "vs_ffmpeg": {k: asdict(bu.paired_ratios(v, fps["ffmpeg"])) for k, v in fps.items()},
        "checks": checks,
        "reference_x264": reference,
    }


def _short_x264(options: str | None) -> str:
    if options is None:
        return "none found"
    keep = ("preset", "threads", "lookahead_threads", "crf", "bframes", "ref", "subme", "me")
    return " ".join(kv for kv in options.split() if kv.split("=")[0] in keep)


def tables(results: list[dict[str, Any]]) -> tuple[str, str, list[str]]:
    rows: list[list[object]] = []
    ratio_rows: list[list[object]] = []
    notes: list[str] = []
    for r in results:
        for key, label in TOOLS:
            fps = bu.Spread(**r["fps"][key])
            check = r["checks"][key]
            ok = check["packets"] == r["frames_per_video"]
            rows.append(
                [
                    r["size"],
                    r["preset"],
                    label,
                    fps.fmt(0),
                    bu.Spread(**r["vs_ffmpeg"][key]).fmt(2),
                    f"{r['cpu_ms_per_frame'][key]:.2f}",
                    f"{check['packets']}" + ("" if ok else " ❌"),
                    "yes" if check["same_x264"] else "**no**",
                ]
            )
        q1 = bu.Spread(**r["rec1_vs_ffmpeg"])
        q2 = bu.Spread(**r["rec2_vs_rec1"])
        ratio_rows.append(
            [
                r["size"],
                r["preset"],
                q1.fmt(2) + (" ✅" if q1.median >= REC1_VS_FFMPEG else " ❌"),
                q2.fmt(2) + (" ✅" if q2.median >= REC2_VS_REC1 else " ❌"),
            ]
        )
        differ = [k for k, _ in TOOLS if not r["checks"][k]["same_x264"]]
        ref = _short_x264(r["reference_x264"])
        note = f"{r['size']} {r['preset']}: recorder's x264 options `{ref}`"
        if differ:
            note += "; DIFFERENT in: " + "; ".join(
                f"{k} `{_short_x264(r['checks'][k]['x264'])}`" for k in differ
            )
        else:
            note += "; identical in every tool's file."
        notes.append(note)
    t1 = bu.markdown_table(
        [
            "frame",
            "preset",
            "tool",
            "frames/s",
            "vs ffmpeg CLI",
            "CPU ms/frame",
            "frames in last video",
            "same x264 options",
        ],
        rows,
    )
    t2 = bu.markdown_table(
        [
            "frame",
            "preset",
            f"recorder 1 worker / ffmpeg CLI (target ≥ {REC1_VS_FFMPEG})",
            f"recorder 2 workers / 1 worker (target ≥ {REC2_VS_REC1})",
        ],
        ratio_rows,
    )
    return t1, t2, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (small counts)")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument("--json", type=Path, help="write the key figures here (for bench_all)")
    args = parser.parse_args(argv)
    logging.getLogger("recorder").setLevel(logging.ERROR)
    cfg = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_before = bu.load_average()
    command = "python scripts/bench_encode.py" + (" --quick" if args.quick else "")
    if args.out is not None:
        command += f" --out {shlex.quote(str(args.out))}"
    bu.log("collecting CartPole frames")
    base = bu.cartpole_frames(cfg.base_frames)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as tmpdir:
        for case in cfg.cases:
            results.append(measure_case(case, base, cfg, Path(tmpdir)))
    t1, t2, notes = tables(results)
    report = bu.Report("Encode throughput: recorder vs PyAV, ffmpeg, imageio-ffmpeg, moviepy")
    report.add(
        f"Generated by `{command}` on {datetime.date.today().isoformat()}"
        f"{' (QUICK smoke run: counts too small to mean much)' if args.quick else ''}.\n\n"
        f"Machine: {bu.machine_info()}. Load average before / after: {load_before} → "
        f"{bu.load_average()} (a shared machine: compare rows of one run, not across runs)."
    )
    report.add(
        "## Scenario 3: encode throughput\n\n"
        f"{cfg.base_frames} CartPole-v1 renders (600x400), resized with numpy (nearest) and "
        f"cycled; per size, {cfg.videos} videos of equal length (so that 2 workers have "
        f"parallel work), {FPS} fps. Every tool: libx264, crf {CRF}, {THREADS} codec thread "
        "per video, yuv420p, +faststart, the preset in the row (the recorder's default, and "
        "veryfast at 600x400); videos encoded one after another except by the recorder with "
        "2 workers. Frames/s = frames / wall time until every file is complete. Recorder: "
        "one long-lived `Recorder` per variant (created and warmed up before the rounds, as "
        "in a training run), its defaults but the codec settings (256 MiB budget, "
        '`on_full="block"`): `submit` each video, then `flush()`; `worker_nice=0` shows what '
        "the workers' default lowered priority (nice 10) costs on a busy machine. PyAV: the "
        "loop a user writes (`VideoFrame.from_ndarray`, `stream.encode`, `container.mux`), "
        "on the calling thread. The ffmpeg CLI, imageio-ffmpeg and moviepy start one ffmpeg "
        "process per video (included). "
        "CPU ms/frame: CPU time of this process and its children per frame. "
        f"One warm-up run per tool, then {cfg.rounds} rounds with the order rotated each "
        "round; median (min-max); ratios computed per round, then medianed. The last column "
        "compares the x264 options string each tool wrote into its stream with the "
        "recorder's; *frames in last video* counts its packets (moviepy loses the last frame "
        "of some clips: its `int(n / fps * fps)` rounding, a known moviepy bug).\n\n"
        + t1
        + "\n\n"
        + t2
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
    )
    report.add(f"Total benchmark time: {time.perf_counter() - started:.0f} s.")
    report.write(args.out)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"encode": results, "quick": args.quick}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    raise SystemExit(main())
