"""``recorder record``: a random policy in an environment, recorded, and a summary at the end."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from recorder._base.info import reward_of
from recorder._base.results import QueueFullError, RecorderStats
from recorder._base.schedule import capped_cubic_video_schedule
from recorder._cli.console import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    Bar,
    CLIError,
    Console,
    headless_video,
    sigterm_unwinds,
)
from recorder._cli.env import env_failed, env_fps, make_env
from recorder._cli.folders import gallery_after_record
from recorder._front.recorder import Recorder
from recorder._service.keep import Keep


@dataclass
class RunResult:
    """What one ``record`` run did, for the summary."""

    env_id: str
    episodes: int = 0
    steps: int = 0
    loop_seconds: float = 0.0
    recorder_seconds: float = 0.0
    render_seconds: float = 0.0
    flush_seconds: float = 0.0
    interrupted: bool = False


def cmd_record(args: argparse.Namespace) -> int:
    """``recorder record``: see :func:`recorder._cli.main.build_parser`."""
    console = Console(progress=not args.no_progress)
    headless_video()
    with console.capture(), sigterm_unwinds():
        env = make_env(args.env_id)  # first: a typo in the id leaves no empty folder behind
        try:
            folder = _writable_folder(args.out)
            fps = args.fps or env_fps(env)
            rec = _make_recorder(args, folder, fps)
            result = RunResult(args.env_id)
            try:
                _run(env, rec, args, result, console)
            except KeyboardInterrupt:
                result.interrupted = True
            finally:
                # Everything recorded so far is saved, even after Ctrl-C (a second one drops it).
                _finish(rec, result, console)
        finally:
            env.close()
    _print_summary(result, rec.stats(), _keep_of(args), folder, sys.stdout)
    status = _report_problems(rec.stats(), rec.on_full, result.interrupted)
    if args.gallery:
        gallery_after_record(folder, args.out)
    if result.interrupted:
        print("recorder: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


def _writable_folder(out: str) -> Path:
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Creating a file is the only sure test (read-only mounts, ACLs, root's permissions).
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        reason = e.strerror or str(e)
        raise CLIError(f"cannot write videos to {out!r}: {reason}") from None
    return folder


def _make_recorder(args: argparse.Namespace, folder: Path, fps: float) -> Recorder:
    episode_trigger: Callable[[int], bool] | None = None
    step_trigger: Callable[[int], bool] | None = None
    if args.every is not None:
        every: int = args.every
        episode_trigger = lambda e: e % every == 0  # noqa: E731
    if args.at_steps is not None:
        at: frozenset[int] = args.at_steps
        step_trigger = at.__contains__
    keep = _keep_of(args)
    if (keep is None or not keep.ranks) and episode_trigger is None and step_trigger is None:
        episode_trigger = capped_cubic_video_schedule
    try:
        return Recorder(
            folder,
            fps=fps,
            episode_trigger=episode_trigger,
            step_trigger=step_trigger,
            video_length=args.video_length,
            name_prefix=args.name_prefix,
            workers=args.workers,
            max_queue_bytes=args.max_queue_mb,  # in bytes (see _mebibytes)
            on_full=args.on_full,
            codec=args.codec,
            crf=args.crf,
            preset=args.preset,
            keep=keep,
            frame_stride=args.frame_stride,
        )
    except (TypeError, ValueError) as e:
        raise CLIError(str(e)) from None


def _keep_of(args: argparse.Namespace) -> Keep | None:
    quota = args.keep_max_mb  # in bytes, or None
    if args.keep_best or args.keep_worst or quota:
        best, worst = args.keep_best or 0, args.keep_worst or 0
        return Keep(best=best, worst=worst, by="return", max_bytes=quota)
    return None


def _run(
    env: Any,
    rec: Recorder,
    args: argparse.Namespace,
    result: RunResult,
    console: Console,
) -> None:
    """The loop: a random policy, rendering only the frames that a video wants."""
    episodes: int | None = args.episodes if args.steps is None else None
    if episodes is None and args.steps is None:
        episodes = 10
    max_steps: int | None = args.steps
    start = time.perf_counter()
    unit = "episode" if max_steps is None else "step"
    bar = console.bar(total=episodes or max_steps, desc=result.env_id, unit=unit)
    try:
        episode = 0
        while (episodes is None or episode < episodes) and (
            max_steps is None or result.steps < max_steps
        ):
            ret = _episode(env, rec, args.seed + episode, episode, result, max_steps, bar)
            episode += 1
            result.episodes = episode
            if max_steps is None:
                bar.update(1)
            stats = rec.stats()
            bar.set_postfix(
                {
                    "return": f"{ret:g}",
                    "videos": stats.videos_started,
                    "queue": f"{stats.queued_bytes / 2**20:.0f}MB",
                },
                refresh=False,
            )
    finally:
        bar.close()
        result.loop_seconds = time.perf_counter() - start


def _episode(
    env: Any,
    rec: Recorder,
    seed: int,
    episode: int,
    result: RunResult,
    max_steps: int | None,
    bar: Bar,
) -> float:
    """Episode *episode*, reset with *seed*; adds its steps and times to *result*; its return."""
    clock = time.perf_counter

    def render_frame() -> Any:
        # Called by ep.offer() only for a frame a video wants; timed apart from the recorder.
        t = clock()
        try:
            frame = env.render()
        except Exception as e:
            raise env_failed(result.env_id, "env.render()", e) from None
        result.render_seconds += clock() - t
        return frame

    try:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    except Exception as e:
        raise env_failed(result.env_id, f"env.reset(seed={seed})", e) from None
    meta: dict[str, Any] = {"env_id": result.env_id, "seed": seed, "policy": "random"}
    t = clock()
    ep = rec.episode(episode, result.steps, metadata=meta)
    result.recorder_seconds += clock() - t
    ret, length, terminated, truncated = 0.0, 0, False, False
    try:
        while True:
            t = clock()
            rendering = result.render_seconds
            try:
                ep.offer(render_frame)
            except QueueFullError as e:  # --on-full raise: stop here
                raise CLIError(f"{e} (--on-full raise)") from None
            except (TypeError, ValueError) as e:  # not an image, a new size...
                raise CLIError(f"{result.env_id}: bad frame: {e}") from None
            result.recorder_seconds += clock() - t - (result.render_seconds - rendering)
            if terminated or truncated:
                break
            if max_steps is not None and result.steps >= max_steps:
                break
            try:
                step = env.step(env.action_space.sample())
            except Exception as e:
                raise env_failed(result.env_id, "env.step()", e) from None
            _, reward, terminated, truncated, _ = step
            ret += reward_of(reward)  # NaN (the return unknown) for a vector reward
            length += 1
            result.steps += 1
            if max_steps is not None:
                bar.update(1)
        ep.metadata.update(
            {
                "return": ret,
                "length": length,
                "terminated": bool(terminated),
                "truncated": bool(truncated),
            }
        )
    finally:
        t = clock()
        # As leaving a `with` block: an episode cut by Ctrl-C is not a stall to report.
        ep.__exit__(*sys.exc_info())
        result.recorder_seconds += clock() - t
    return ret


def _finish(rec: Recorder, result: RunResult, console: Console) -> None:
    """Flush with a progress bar of the videos still being encoded, then close."""
    start = time.perf_counter()
    stats = rec.stats()
    done = stats.videos_saved + stats.videos_dropped + stats.videos_failed
    bar = console.bar(total=stats.videos_started, desc="encoding", unit="video", initial=done)
    try:
        while True:
            try:
                rec.flush(timeout=0.1)
                break
            except TimeoutError:
                pass
            except Exception:
                break  # failed videos: each is reported from stats() in the summary
            finally:
                stats = rec.stats()
                now = stats.videos_saved + stats.videos_dropped + stats.videos_failed
                bar.update(now - done)
                done = now
        with contextlib.suppress(Exception):
            rec.close()  # anything it raises is in stats().errors too
    except KeyboardInterrupt:
        # A second Ctrl-C: drop what is left quickly; no half-written video stays.
        with contextlib.suppress(Exception):
            rec.close(cancel=True)
        raise
    finally:
        bar.close()
        result.flush_seconds = time.perf_counter() - start


def _saved(stats: RecorderStats, keep: Keep | None) -> str:
    """The videos saved, and with a keep policy how many of them it deleted since."""
    if keep is None:
        return str(stats.videos_saved)
    kept = stats.videos_saved - stats.videos_deleted
    return f"{stats.videos_saved}, {kept} kept ({stats.videos_deleted} deleted: {keep.describe()})"


def _print_summary(
    result: RunResult, stats: RecorderStats, keep: Keep | None, folder: Path, out: TextIO
) -> None:
    loop = result.loop_seconds
    share = result.recorder_seconds / loop if loop > 0 else 0.0
    speed = stats.frames_encoded / stats.encode_seconds if stats.encode_seconds > 0 else 0.0
    rows = [
        ("environment", result.env_id),
        ("episodes / steps", f"{result.episodes} / {result.steps}"),
        ("videos saved", _saved(stats, keep)),
        ("videos dropped", str(stats.videos_dropped)),
        ("videos failed", str(stats.videos_failed)),
        ("frames encoded", str(stats.frames_encoded)),
        ("encode speed", f"{speed:.0f} frames/s per busy worker"),
        ("loop time", f"{loop:.2f} s"),
        ("  in recorder calls", f"{result.recorder_seconds * 1e3:.1f} ms ({share:.1%})"),
        ("  rendering", f"{result.render_seconds:.2f} s"),
        ("flush at the end", f"{result.flush_seconds:.2f} s"),
        ("peak queue", f"{stats.peak_queued_bytes / 2**20:.1f} MiB"),
        ("folder", str(folder.resolve())),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}", file=out)


def _report_problems(stats: RecorderStats, on_full: str, interrupted: bool) -> int:
    # Each failure (and the first drop) was logged (one line each, by _LineHandler) when it
    # happened.
    if stats.videos_failed or stats.errors:
        what = f"{stats.videos_failed} videos failed" if stats.videos_failed else "errors"
        print(f"recorder: error: {what} (see above)", file=sys.stderr)
    if stats.videos_dropped:
        # Only "drop" drops for a full queue; else a Ctrl-C did (a clip begun, no frame yet).
        why = (
            "the frame queue was full): use --on-full block or a larger --max-queue-mb"
            if on_full == "drop" and not interrupted
            else "see above)"
        )
        print(f"recorder: warning: {stats.videos_dropped} videos dropped ({why}", file=sys.stderr)
    return EXIT_ERROR if stats.videos_failed or stats.errors else 0
