"""Quality at the default settings: recorder's files against gymnasium's own writer.

Usage: ``python scripts/bench_quality.py [--quick] [--out PATH] [--json PATH]``. Target: min PSNR
of the recorder's default files >= gymnasium's - 1 dB (``tests/test_quality.py``: fewer frames).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import _benchutil as bu  # scripts/ is sys.path[0] when a script here runs
import av
import numpy as np

import recorder
from recorder._testing import PyAVEncoder, adaptive_rungs, format_of

TITLE = "Quality at the default settings: recorder vs gymnasium's writer"
FPS = 30
MARGIN_DB = 1.0  # target: recorder defaults' min PSNR >= gymnasium's - MARGIN_DB
RAMP_FRAMES = 30  # ~5.5 brightness levels per frame: a shifted frame cannot pass as aligned


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    cartpole_frames: int
    rounds: int  # timed encodes per writer, interleaved


FULL = Config(cartpole_frames=300, rounds=5)
QUICK = Config(cartpole_frames=30, rounds=1)


RUNGS = adaptive_rungs(recorder.Codec())
#: (key, label, codec) of each way to write a video; codec None: gymnasium's save_video. The
#: adaptive default writes at its first rung here (the queue has room); its other rungs are
#: what it writes as a backlog grows.
WRITERS = (
    ("defaults", "recorder, defaults (adaptive: veryfast while the queue has room)",
     recorder.Codec()),
    ("superfast", "recorder, adaptive's middle rung (superfast)", RUNGS[1]),
    ("fastest", 'recorder, adaptive\'s fastest rung (ultrafast, `"point"` chroma)', RUNGS[2]),
    ("ultrafast", 'recorder, `preset="ultrafast"` (the default before)',
     recorder.Codec(preset="ultrafast")),
    ("point", 'recorder, `preset="ultrafast", interpolation="point"` (the default before that)',
     recorder.Codec(preset="ultrafast", interpolation="point")),
    ("veryfast", 'recorder, `preset="veryfast"` (plain x264 veryfast)',
     recorder.Codec(preset="veryfast")),
    ("av1", 'recorder, `codec="av1"` (SVT-AV1, preset 8, crf 30)', recorder.Codec("av1")),
    ("gymnasium", "gymnasium `save_video` (moviepy, preset medium)", None),
)  # fmt: skip


def write_file(codec: recorder.Codec | None, frames: Sequence[np.ndarray], folder: Path) -> Path:
    """The video a user gets: ``Recorder`` + ``flush()``, or gymnasium's ``save_video``."""
    if codec is None:
        from gymnasium.utils.save_video import save_video

        save_video(list(frames), str(folder), fps=FPS, episode_trigger=bu.always)
        return folder / "rl-video-episode-0.mp4"
    with recorder.Recorder(
        folder, fps=FPS, episode_trigger=bu.always, codec=codec, sidecars=False
    ) as rec:
        (handle,) = rec.submit(list(frames), episode_index=0)
        rec.flush()
    return handle.result().path


def encoder_run(
    codec: recorder.Codec | None, frames: list[np.ndarray], path: Path
) -> Callable[[], object]:
    """One timed encode: the recorder's encoder alone on this thread (what a worker spends on a
    video), or the whole ``save_video`` call (moviepy feeding an ffmpeg process)."""
    if codec is None:
        return partial(write_file, codec, frames, path.parent / "gymnasium-timed")
    spec = recorder.VideoSpec(str(path), FPS, codec, format_of(frames[0]))
    images = [np.ascontiguousarray(f) for f in frames]

    def run() -> None:
        encoder = PyAVEncoder(spec)
        try:
            for image in images:
                encoder.write(image)
        finally:
            encoder.close()

    return run


def decode(path: Path, height: int, width: int) -> list[np.ndarray]:
    """Every frame as RGB, padding cropped."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24")[:height, :width] for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else float(10 * np.log10(255**2 / mse))


def misaligned(source: Sequence[np.ndarray], decoded: Sequence[np.ndarray]) -> int:
    """Decoded frames closer (PSNR) to the source frame before or after than to their own."""
    bad = 0
    for i, frame in enumerate(decoded):
        own = psnr(source[i], frame)
        bad += any(psnr(source[j], frame) > own for j in (i - 1, i + 1) if 0 <= j < len(source))
    return bad


def moviepy_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The frames moviepy's ``write_videofile`` feeds ffmpeg: it looks each up by a float time
    and sometimes gets the one before (the file then repeats a frame and skips another)."""
    from moviepy import ImageSequenceClip

    with ImageSequenceClip(list(frames), fps=FPS) as clip:
        return list(clip.iter_frames(fps=FPS, dtype="uint8"))


def measure_input(name: str, frames: list[np.ndarray], cfg: Config, tmp: Path) -> dict[str, Any]:
    height, width = frames[0].shape[:2]
    bu.log(f"quality {name}: {len(frames)} frames {width}x{height}, {len(WRITERS)} writers")
    paths = {key: write_file(codec, frames, tmp / name / key) for key, _, codec in WRITERS}
    decoded = {key: decode(path, height, width) for key, path in paths.items()}
    common = min(len(d) for d in decoded.values())  # moviepy may lose the last frame
    fed = moviepy_frames(frames)
    runs = [bu.Variant(key, encoder_run(codec, frames, tmp / name / f"timed-{key}.mp4"))
            for key, _, codec in WRITERS]  # fmt: skip
    for v in runs:  # warm-up
        v.run()
    bu.interleave(cfg.rounds, runs)
    fps = {v.label: [len(frames) / u.wall for u in v.usages] for v in runs}
    rows: dict[str, dict[str, Any]] = {}
    for (key, label, codec), v in zip(WRITERS, runs, strict=True):
        dec = decoded[key]
        size = paths[key].stat().st_size
        # Coding quality: each file against the frames its encoder was given.
        given = fed if codec is None else frames
        values = [psnr(given[i], dec[i]) for i in range(common)]
        rows[key] = {
            "label": label,
            "frames_in_file": len(dec),
            "misaligned": misaligned(given, dec),
            "psnr_min": min(values),
            "psnr_mean": float(np.mean(values)),
            # Against the source frame of the same index (what the user sees).
            "psnr_min_vs_source": min(psnr(frames[i], dec[i]) for i in range(common)),
            "bytes": size,
            "kb_per_s": size / 1000 / (len(dec) / FPS),
            "fps": asdict(bu.spread(fps[key])),
            "cpu_ms_per_frame": 1e3 * float(np.median([u.cpu for u in v.usages])) / len(frames),
        }
    ref = rows["gymnasium"]
    for key, row in rows.items():
        row["vs_gymnasium_db"] = row["psnr_min"] - ref["psnr_min"]
        # Per second of video, not per file: moviepy may lose the last frame.
        row["size_vs_gymnasium"] = row["kb_per_s"] / ref["kb_per_s"]
        row["fps_vs_gymnasium"] = asdict(bu.paired_ratios(fps[key], fps["gymnasium"]))
    return {
        "input": name,
        "size": f"{width}x{height}",
        "frames": len(frames),
        "frames_compared": common,
        "moviepy_shifted": sum(not np.array_equal(f, s) for f, s in zip(fed, frames, strict=False)),
        "met": rows["defaults"]["vs_gymnasium_db"] >= -MARGIN_DB,
        "rows": rows,
    }


def tables(results: list[dict[str, Any]], words: dict[str, str]) -> dict[str, str]:
    """The table, the verdicts and what the defaults trade against gymnasium's writer."""
    rows: list[list[object]] = []
    verdicts, trades = [], []
    for r in results:
        for key, row in r["rows"].items():
            bad = f" ({row['misaligned']} misaligned)" if row["misaligned"] else ""
            rows.append(
                [f"{r['input']} {r['size']}", row["label"],
                 f"{r['frames_compared']} of {row['frames_in_file']}{bad}",
                 f"{row['psnr_min']:.2f}", f"{row['psnr_mean']:.2f}",
                 "-" if key == "gymnasium" else f"{row['vs_gymnasium_db']:+.2f}",
                 f"{row['kb_per_s']:.1f}", f"{row['size_vs_gymnasium']:.2f}x",
                 bu.fmt_spread(row["fps"], 0), f"{row['cpu_ms_per_frame']:.2f}"]
            )  # fmt: skip
        # d, u, f, a, g: the rows of the defaults, ultrafast, the fastest rung, av1 and
        # gymnasium, so named in the .md's blocks
        d, u, f, a, g = (r["rows"][k] for k in ("defaults", "ultrafast", "fastest", "av1",
                                                  "gymnasium"))  # fmt: skip
        values = {"input": r["input"], "d": d, "u": u, "f": f, "a": a, "g": g}
        if r["moviepy_shifted"]:
            verdicts.append(words["shifted"].format(shifted=r["moviepy_shifted"], **values))
        met = "met" if r["met"] else "**NOT met**"
        headroom = d["vs_gymnasium_db"] + MARGIN_DB
        verdicts.append(
            words["verdict"].format(met=met, margin=MARGIN_DB, headroom=headroom, **values)
        )
        speed = {k: bu.Spread(**row["fps"]).median / bu.Spread(**u["fps"]).median
                 for k, row in (("d", d), ("f", f), ("a", a))}  # fmt: skip
        trades.append(words["trade"].format(speed=speed, **values))
    table = bu.markdown_table(
        "input | writer | frames compared of file | PSNR min dB | PSNR mean dB | "
        "min vs gymnasium dB | kB per s of video | size vs gymnasium | encode frames/s | "
        "CPU ms/frame",
        rows,
    )
    return {"table": table, "verdicts": "\n".join(verdicts), "trades": "; ".join(trades)}


def measure(bench: bu.Bench) -> dict[str, Any]:
    """Both inputs, every writer."""
    cfg = bench.cfg
    bu.log("collecting CartPole frames")
    inputs = {
        "CartPole": bu.cartpole_frames(cfg.cartpole_frames),
        "noisy ramp": bu.noisy_ramp_frames(RAMP_FRAMES),
    }
    results = [measure_input(n, f, cfg, bench.tmp) for n, f in inputs.items()]
    bu.stop_idle_encoder_processes()
    defaults = recorder.Codec()
    _, _, pix_fmt, options = defaults.ffmpeg_settings()
    codec = {k: getattr(defaults, k) for k in ("name", "interpolation", "threads")}
    return {"cfg": asdict(cfg), "codec": codec, "pix_fmt": pix_fmt, "options": options,
            "quality": results}  # fmt: skip


def report(doc: bu.Report, data: dict[str, Any]) -> None:
    """The table, the verdicts and the trade."""
    doc.header()
    doc.say(
        "quality",
        cfg=Config(**data["cfg"]),
        ramp_frames=RAMP_FRAMES,
        fps=FPS,
        codec=SimpleNamespace(**data["codec"]),
        options=data["options"],
        pix_fmt=data["pix_fmt"],
        **tables(data["quality"], doc.words),
    )
    doc.footer()


if __name__ == "__main__":
    raise SystemExit(bu.main(sys.modules[__name__]))
