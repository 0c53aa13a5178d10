"""Encode throughput (issue 7 scenario 3): recorder vs PyAV, ffmpeg, imageio-ffmpeg, moviepy.

The same frames (CartPole-v1 renders resized with numpy to 64x64, 256x256, 600x400 and
1280x720), split into several videos, encoded by each tool with the same settings: libx264,
the recorder's default preset (and veryfast at 600x400), crf 23, one codec thread per video,
yuv420p, +faststart. Wall time from nothing to every file complete; frames/s.

Usage: ``python scripts/bench_encode.py [--quick] [--out PATH] [--json PATH]``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import av
import numpy as np

import recorder
from recorder._encoder import keyframe_interval

TITLE = "Encode throughput: recorder vs PyAV, ffmpeg, imageio-ffmpeg, moviepy"
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


def _cases(*frames: int) -> tuple[Case, ...]:
    sizes = ((64, 64, None), (256, 256, None), (400, 600, None), (720, 1280, None))
    sizes += ((400, 600, "veryfast"),)
    return tuple(Case(h, w, n, p) for (h, w, p), n in zip(sizes, frames, strict=True))


FULL = Config(_cases(3000, 1200, 480, 160, 240), videos=4, rounds=5, base_frames=480)
QUICK = Config(_cases(80, 40, 24, 8, 16), videos=2, rounds=1, base_frames=24)


def default_preset() -> str:
    """The recorder's h264 preset (read from it, not assumed)."""
    return recorder.Codec("h264").ffmpeg_settings()[3]["preset"]


# -- the tools ----------------------------------------------------------------------------------

Videos = list[list[np.ndarray]]


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
                self.folder / tool, fps=FPS, episode_trigger=bu.always, workers=workers,
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
    runs = [bu.Variant(k, fn) for k, fn in fns.items()]
    bu.log(f"encode {case.size} {preset}: warm-up")
    tools.start_recorders()
    try:
        for fn in fns.values():
            fn()
        bu.log(f"encode {case.size} {preset}: {len(fns)} tools x {cfg.rounds} interleaved rounds")
        bu.interleave(cfg.rounds, runs)
    finally:
        tools.close_recorders()
    fps = {v.label: [total / u.wall for u in v.usages] for v in runs}
    cpu = {v.label: [u.cpu for u in v.usages] for v in runs}
    reference = bu.x264_options(tools.last["recorder-1"])
    checks = {}
    for key in fns:
        opts = bu.x264_options(tools.last[key])
        checks[key] = {
            "packets": bu.video_frames(tools.last[key]),
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
    return bu.short_x264(options, "preset threads lookahead_threads crf bframes ref subme me")


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
                [r["size"], r["preset"], label, fps.fmt(0), bu.fmt_spread(r["vs_ffmpeg"][key], 2),
                 f"{r['cpu_ms_per_frame'][key]:.2f}", f"{check['packets']}" + ("" if ok else " ❌"),
                 "yes" if check["same_x264"] else "**no**"]
            )  # fmt: skip
        q1 = bu.Spread(**r["rec1_vs_ffmpeg"])
        q2 = bu.Spread(**r["rec2_vs_rec1"])
        ratio_rows.append(
            [r["size"], r["preset"], f"{q1.fmt(2)} {bu.mark(q1.median >= REC1_VS_FFMPEG)}",
             f"{q2.fmt(2)} {bu.mark(q2.median >= REC2_VS_REC1)}"]
        )  # fmt: skip
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
        "frame | preset | tool | frames/s | vs ffmpeg CLI | CPU ms/frame | frames in last video "
        "| same x264 options",
        rows,
    )
    t2 = bu.markdown_table(
        f"frame | preset | recorder 1 worker / ffmpeg CLI (target ≥ {REC1_VS_FFMPEG}) | "
        f"recorder 2 workers / 1 worker (target ≥ {REC2_VS_REC1})",
        ratio_rows,
    )
    return t1, t2, notes


def run(bench: bu.Bench) -> dict[str, Any]:
    """Every case; the tables and the x264 notes."""
    cfg = bench.cfg
    bu.log("collecting CartPole frames")
    base = bu.cartpole_frames(cfg.base_frames)
    results = [measure_case(case, base, cfg, bench.tmp) for case in cfg.cases]
    t1, t2, notes = tables(results)
    bench.header()
    bench.add(
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
    bench.footer()
    return {"encode": results, "quick": bench.args.quick}


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
