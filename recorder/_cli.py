"""The command line: ``recorder record``, ``recorder gallery`` and ``recorder recover``."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.metadata
import logging
import math
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from recorder._gallery import build_gallery, scan, serve, write_gallery
from recorder._recorder import Recorder
from recorder._recover import recover
from recorder._results import QueueFullError, RecorderStats
from recorder._schedule import capped_cubic_video_schedule

# The cli extra: tqdm for the progress bar, and gymnasium[classic-control] (pygame) for
# the embedded default env CartPole-v1 and its neighbours to render rgb_array.
INSTALL_HINT = 'pip install "recorder[cli]"'
CLI_EXTRA_ENVS = "gymnasium.envs.classic_control"

# Exit statuses: argparse uses 2 for a bad command line.
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """An error reported in one line, without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.
    """
    try:
        args = parse_args(argv)
    except SystemExit as e:  # --help, or a bad command line (argparse printed why)
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except CLIError as e:
        print(f"recorder: error: {_one_line(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("recorder: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check a command line.

    Raises:
        SystemExit: ``--help``, or a bad command line (argparse printed why; status 2).
    """
    args = build_parser().parse_args(argv)
    check: Callable[[argparse.Namespace], None] | None = getattr(args, "check", None)
    if check is not None:
        check(args)
    return args


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``recorder``'s command line."""
    parser = argparse.ArgumentParser(
        prog="recorder",
        description="Record videos of gymnasium environments in the background.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    rec = sub.add_parser(
        "record",
        help="run a random policy in an environment and record videos",
        description=(
            "Run a seeded random policy in a gymnasium environment (render_mode='rgb_array') "
            "and record videos of it in the background; print a summary at the end."
        ),
    )
    # Options that depend on each other are checked after parsing, as usage errors too.
    rec.set_defaults(command=cmd_record, check=functools.partial(_check_codec_options, rec))
    rec.add_argument("env_id", metavar="ENV_ID", help="a registered id, e.g. CartPole-v1")
    length = rec.add_mutually_exclusive_group()
    length.add_argument(
        "--episodes", type=_positive_int, metavar="N", help="episodes to run (default: 10)"
    )
    length.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        help="environment steps to run in all (the last episode is cut there)",
    )
    trig = rec.add_argument_group(
        "what to record (default: episodes 0, 1, 8, 27, ..., 1000, 2000, ...: capped cubic)"
    )
    trig.add_argument(
        "--every", type=_positive_int, metavar="N", help="record every N-th episode: 0, N, 2N..."
    )
    trig.add_argument(
        "--at-steps",
        type=_step_list,
        metavar="S,S,...",
        help="start a clip at these steps (counted over all episodes)",
    )
    trig.add_argument(
        "--video-length",
        type=_positive_int,
        metavar="N",
        help="at most N frames per video (default: whole episodes)",
    )
    enc = rec.add_argument_group("videos")
    enc.add_argument(
        "--out", default="videos", metavar="FOLDER", help="output folder (default: videos)"
    )
    enc.add_argument(
        "--name-prefix", default="rl-video", help="file name prefix (default: rl-video)"
    )
    enc.add_argument(
        "--fps", type=_positive_float, help="frames per second (default: the env's render_fps)"
    )
    enc.add_argument(
        "--codec", default="h264", choices=("h264", "h265", "vp9", "gif"), help="default: h264"
    )
    enc.add_argument(
        "--crf",
        type=int,
        help="quality, lower is better: h264/h265 0..51 (default 23, 28), vp9 0..63 "
        "(default 32); not for gif",
    )
    enc.add_argument(
        "--preset",
        help="encoder speed: h264/h265 an x264 preset (default: ultrafast); vp9 its cpu-used "
        "level -8..8 (default: 8, the fastest); not for gif",
    )
    enc.add_argument("--workers", type=_positive_int, default=1, help="encoder threads")
    enc.add_argument(
        "--max-queue-mb",
        type=_positive_float,
        default=256.0,
        metavar="MB",
        help="memory for frames waiting to be encoded (default: 256)",
    )
    enc.add_argument(
        "--on-full",
        choices=("block", "drop", "raise"),
        default="block",
        help="when that memory is full: wait (default: every video is saved), drop the "
        "video, or stop with an error",
    )
    run = rec.add_argument_group("run")
    run.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="episode i is reset with seed+i (default: 0)",
    )
    run.add_argument(
        "--no-progress", action="store_true", help="no progress bar (tqdm is then not needed)"
    )
    run.add_argument("--gallery", action="store_true", help="write FOLDER/index.html at the end")

    gal = sub.add_parser(
        "gallery",
        help="write FOLDER/index.html: the videos with posters and metadata",
        description="Write FOLDER/index.html: a grid of the videos in FOLDER with poster "
        "thumbnails and their metadata, sorted by episode, filterable by name; offline.",
    )
    gal.set_defaults(command=cmd_gallery)
    gal.add_argument("folder", metavar="FOLDER")
    gal.add_argument("--title", help="page title (default: the folder's name)")
    gal.add_argument(
        "--serve",
        action="store_true",
        help="then serve the folder over HTTP until Ctrl-C (with the byte ranges that "
        "browsers need to seek in videos, which python -m http.server lacks)",
    )
    gal.add_argument("--host", default="127.0.0.1", help="with --serve (default: 127.0.0.1)")
    gal.add_argument(
        "--port", type=_port, default=8000, help="with --serve; 0 picks a free port (default: 8000)"
    )

    rcv = sub.add_parser(
        "recover",
        help="turn videos half-written by a crashed process into FOLDER/{name}-partial.mp4",
        description="Turn the temporary files that processes which died mid-clip left in "
        "FOLDER into {name}-partial.mp4 (every complete fragment, +faststart) with a "
        "{name}-partial.json sidecar; delete leftovers without a frame. Files whose writer is "
        "alive are left alone. Prints one line per file and a summary.",
    )
    rcv.set_defaults(command=cmd_recover)
    rcv.add_argument("folder", metavar="FOLDER")
    return parser


# -- record ---------------------------------------------------------------------------------


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
    """``recorder record``: see :func:`build_parser`."""
    console = Console(progress=not args.no_progress)
    with console.capture(), _sigterm_unwinds():
        env = make_env(args.env_id)  # first: a typo in the id leaves no empty folder behind
        try:
            folder = _writable_folder(args.out)
            fps = args.fps or _env_fps(env)
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
    _print_summary(result, rec.stats(), folder, sys.stdout)
    status = _report_problems(rec.stats())
    if args.gallery:
        try:
            page = build_gallery(folder)
        except OSError as e:
            raise CLIError(f"cannot write the gallery in {args.out!r}: {e.strerror or e}") from None
        print(f"gallery: {page.resolve().as_uri()} (or serve it: {_serve_command(folder)})")
    if result.interrupted:
        print("recorder: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


def make_env(env_id: str) -> Any:
    """``gymnasium.make(env_id, render_mode="rgb_array")``, with one-line errors.

    Raises:
        CLIError: unknown id, a missing dependency, no ``rgb_array`` rendering, or a
            ``render()`` that gives no image.
    """
    module, _, name = env_id.rpartition(":")
    if module:  # "package:Env-v0" registers Env-v0 when imported, as gymnasium.make does
        _import_for(env_id, module)
    try:
        spec = gym.spec(name)
    except gym.error.Error as e:
        hint = ""
        if isinstance(e, gym.error.NamespaceNotFound) and not module:
            hint = " (to import the package that registers it: PACKAGE:ENV_ID)"
        raise CLIError(f"unknown environment {env_id!r}: {e}{hint}") from None
    try:
        creator = (
            spec.entry_point
            if callable(spec.entry_point)
            else load_env_creator(str(spec.entry_point))
        )
    except ImportError as e:
        raise CLIError(_missing_dependency(env_id, e)) from None
    except gym.error.DependencyNotInstalled as e:
        raise _dependency_error(env_id, e, spec.entry_point) from None
    modes = getattr(creator, "metadata", {}).get("render_modes")
    if modes is not None and "rgb_array" not in modes:
        raise CLIError(
            f"{env_id} does not render images: its render modes are {list(modes)}, not 'rgb_array'"
        )
    try:
        env = gym.make(spec, render_mode="rgb_array")
    except gym.error.DependencyNotInstalled as e:
        raise _dependency_error(env_id, e, spec.entry_point) from None
    except ImportError as e:
        raise CLIError(_missing_dependency(env_id, e)) from None
    except Exception as e:
        raise CLIError(f"cannot make {env_id}: {type(e).__name__}: {e}") from None
    try:
        _check_renders_images(env, env_id, spec.entry_point)
    except BaseException:
        env.close()
        raise
    return env


def _import_for(env_id: str, module: str) -> None:
    try:
        importlib.import_module(module)
    except gym.error.DependencyNotInstalled as e:
        raise _dependency_error(env_id, e) from None
    except ImportError as e:
        raise CLIError(_missing_dependency(env_id, e)) from None


def _dependency_error(env_id: str, error: Exception, entry_point: object = None) -> CLIError:
    hint = ""
    if isinstance(entry_point, str) and entry_point.startswith(CLI_EXTRA_ENVS):
        hint = f" (or: {INSTALL_HINT}, which includes it)"
    return CLIError(f"{env_id}: missing dependency: {error}{hint}")


def _env_failed(env_id: str, call: str, error: Exception) -> CLIError:
    # The env's own bug or refusal: the user needs its message, not the recorder's frames.
    return CLIError(f"{env_id}: {call} raised {type(error).__name__}: {error}")


def _missing_dependency(env_id: str, error: ImportError) -> str:
    package = f" (try: pip install {error.name.split('.')[0]})" if error.name else ""
    return f"{env_id}: missing dependency: {error}{package}"


def _check_renders_images(env: Any, env_id: str, entry_point: object = None) -> None:
    # gymnasium's checker warns about a bad render() too: our error says it better.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call = "env.reset(seed=0)"
        try:
            env.reset(seed=0)
            call = "env.render()"
            frame = env.render()
        except gym.error.DependencyNotInstalled as e:
            raise _dependency_error(env_id, e, entry_point) from None
        except Exception as e:
            raise _env_failed(env_id, call, e) from None
    shape = getattr(frame, "shape", None)
    dtype = str(getattr(frame, "dtype", ""))
    if shape is None or len(shape) not in (2, 3) or dtype != "uint8":
        what = type(frame).__name__ if shape is None else f"an array {shape} of {dtype}"
        raise CLIError(
            f"{env_id} does not render images: render() returned {what} with "
            "render_mode='rgb_array' (an HxWx3 uint8 array is needed)"
        )
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _env_fps(env: Any) -> float:
    fps = env.metadata.get("render_fps")
    if isinstance(fps, int | float) and not isinstance(fps, bool) and fps > 0:
        return float(fps)
    print("recorder: note: the env has no render_fps metadata; using 30 fps", file=sys.stderr)
    return 30.0


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


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # gymnasium colours its warnings
# x265 takes the same names.
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


def _check_codec_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    # FFmpeg would only say so when the first video opens, once per video; and gif would
    # silently ignore both options (see Codec.ffmpeg_settings).
    codec: str = args.codec
    preset: str | None = args.preset
    if codec == "gif":
        for option in ("crf", "preset"):
            if getattr(args, option) is not None:
                parser.error(f"--{option} does not apply to --codec gif (it has no such setting)")
    if preset is not None and codec in ("h264", "h265") and preset not in X264_PRESETS:
        parser.error(
            f"--preset {preset!r} is not an x264/x265 preset (--codec {codec}): "
            + ", ".join(X264_PRESETS)
        )
    if preset is not None and codec == "vp9":
        try:
            ok = -8 <= int(preset) <= 8  # libvpx-vp9 refuses the rest of FFmpeg's -16..16
        except ValueError:
            ok = False
        if not ok:
            parser.error(
                f"--preset for --codec vp9 is its cpu-used level, an integer -8..8; got {preset!r}"
            )
    top = 63 if codec == "vp9" else 51  # x265 refuses more than 51; x264 clamps it to 51
    if args.crf is not None and not 0 <= args.crf <= top:
        parser.error(f"--crf for --codec {codec} must lie in 0..{top}, got {args.crf}")


def _make_recorder(args: argparse.Namespace, folder: Path, fps: float) -> Recorder:
    episode_trigger: Callable[[int], bool] | None = None
    step_trigger: Callable[[int], bool] | None = None
    if args.every is not None:
        every: int = args.every
        episode_trigger = lambda e: e % every == 0  # noqa: E731
    if args.at_steps is not None:
        at: frozenset[int] = args.at_steps
        step_trigger = at.__contains__
    if episode_trigger is None and step_trigger is None:
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
            max_queue_bytes=max(1, int(args.max_queue_mb * 2**20)),
            on_full=args.on_full,
            codec=args.codec,
            crf=args.crf,
            preset=args.preset,
        )
    except (TypeError, ValueError) as e:
        raise CLIError(str(e)) from None


def _run(
    env: Any,
    rec: Recorder,
    args: argparse.Namespace,
    result: RunResult,
    console: Console,
) -> None:
    """The loop: a random policy, rendering only the frames that a video wants."""
    clock = time.perf_counter
    episodes: int | None = args.episodes if args.steps is None else None
    if episodes is None and args.steps is None:
        episodes = 10
    max_steps: int | None = args.steps
    in_rec = render = 0.0
    start = clock()
    unit = "episode" if max_steps is None else "step"
    bar = console.bar(total=episodes or max_steps, desc=result.env_id, unit=unit)

    def render_frame() -> Any:
        # Called by ep.offer() only for a frame a video wants; timed apart from the recorder.
        nonlocal render
        t = clock()
        try:
            frame = env.render()
        except Exception as e:
            raise _env_failed(result.env_id, "env.render()", e) from None
        render += clock() - t
        return frame

    try:
        episode = 0
        while (episodes is None or episode < episodes) and (
            max_steps is None or result.steps < max_steps
        ):
            seed = args.seed + episode
            try:
                env.reset(seed=seed)
                env.action_space.seed(seed)
            except Exception as e:
                raise _env_failed(result.env_id, f"env.reset(seed={seed})", e) from None
            meta: dict[str, Any] = {"env_id": result.env_id, "seed": seed, "policy": "random"}
            t = clock()
            ep = rec.episode(episode, result.steps, metadata=meta)
            in_rec += clock() - t
            ret, length, terminated, truncated = 0.0, 0, False, False
            try:
                while True:
                    t = clock()
                    rendering = render
                    try:
                        ep.offer(render_frame)
                    except QueueFullError as e:  # --on-full raise: stop here
                        raise CLIError(f"{e} (--on-full raise)") from None
                    except (TypeError, ValueError) as e:  # not an image, a new size...
                        raise CLIError(f"{result.env_id}: bad frame: {e}") from None
                    in_rec += clock() - t - (render - rendering)
                    if terminated or truncated:
                        break
                    if max_steps is not None and result.steps >= max_steps:
                        break
                    try:
                        step = env.step(env.action_space.sample())
                    except Exception as e:
                        raise _env_failed(result.env_id, "env.step()", e) from None
                    _, reward, terminated, truncated, _ = step
                    ret += float(reward)
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
                ep.close()
                in_rec += clock() - t
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
        result.loop_seconds = clock() - start
        result.recorder_seconds = in_rec
        result.render_seconds = render


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


def _print_summary(result: RunResult, stats: RecorderStats, folder: Path, out: TextIO) -> None:
    loop = result.loop_seconds
    share = result.recorder_seconds / loop if loop > 0 else 0.0
    speed = stats.frames_encoded / stats.encode_seconds if stats.encode_seconds > 0 else 0.0
    rows = [
        ("environment", result.env_id),
        ("episodes / steps", f"{result.episodes} / {result.steps}"),
        ("videos saved", str(stats.videos_saved)),
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


def _report_problems(stats: RecorderStats) -> int:
    # Each failure was logged (one line each, by _LineHandler) when it happened.
    if stats.videos_failed or stats.errors:
        what = f"{stats.videos_failed} videos failed" if stats.videos_failed else "errors"
        print(f"recorder: error: {what} (see above)", file=sys.stderr)
    if stats.videos_dropped:
        print(
            f"recorder: warning: {stats.videos_dropped} videos dropped (the frame queue was "
            "full): use --on-full block or a larger --max-queue-mb",
            file=sys.stderr,
        )
    return EXIT_ERROR if stats.videos_failed or stats.errors else 0


# -- gallery --------------------------------------------------------------------------------


def cmd_gallery(args: argparse.Namespace) -> int:
    """``recorder gallery``: see :func:`build_parser`."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise CLIError(f"{args.folder!r} is not a folder")
    entries = scan(folder)
    try:
        page = write_gallery(folder, entries, title=args.title)
    except OSError as e:
        raise CLIError(f"cannot write the gallery in {args.folder!r}: {e.strerror or e}") from None
    print(f"wrote {page} ({len(entries)} videos)")
    if not args.serve:
        print(f"open {page.resolve().as_uri()}")
        print(f"or serve it: {_serve_command(folder)}")
        return 0
    try:
        server = serve(folder, args.host, args.port, quiet=False)
    except OSError as e:
        raise CLIError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    print(f"serving http://{args.host}:{server.server_port}/ (Ctrl-C to stop)", flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    """``recorder recover``: see :func:`build_parser`."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise CLIError(f"{args.folder!r} is not a folder")
    try:
        report = recover(folder)
    except OSError as e:
        raise CLIError(f"cannot recover in {args.folder!r}: {e.strerror or e}") from None
    for line in report.lines():
        print(line)
    return 0


# -- helpers --------------------------------------------------------------------------------


class Bar(Protocol):
    """The part of a tqdm progress bar the command uses."""

    def update(self, n: float = 1) -> object: ...

    def set_postfix(self, ordered_dict: dict[str, Any], refresh: bool = ...) -> None: ...

    def close(self) -> None: ...


class _NoBar:
    def update(self, n: float = 1) -> None:
        pass

    def set_postfix(self, ordered_dict: dict[str, Any], refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


class Console:
    """stderr while a command runs: progress bars, and one-line messages that do not break them.

    Args:
        progress: show tqdm progress bars.

    Raises:
        CLIError: progress bars wanted but tqdm missing (with the install hint).
    """

    def __init__(self, *, progress: bool) -> None:
        self._tqdm: Any = None
        if progress:
            try:
                tqdm_module = importlib.import_module("tqdm")
            except ImportError:
                raise CLIError(
                    f"the progress bar needs tqdm: {INSTALL_HINT} (or pass --no-progress)"
                ) from None
            # No monitor thread: a command leaves no thread behind.
            self._tqdm = type("Bar", (tqdm_module.tqdm,), {"monitor_interval": 0})

    def bar(self, **kwargs: Any) -> Bar:
        """A progress bar on stderr (tqdm's arguments), or one that shows nothing."""
        if self._tqdm is None:
            return _NoBar()
        bar: Bar = self._tqdm(file=sys.stderr, mininterval=0.2, dynamic_ncols=True, **kwargs)
        return bar

    def line(self, text: str) -> None:
        """Print one line on stderr, above the progress bars."""
        text = _one_line(text)
        if self._tqdm is None:
            print(text, file=sys.stderr, flush=True)
        else:
            self._tqdm.write(text, file=sys.stderr)

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Show warnings (gymnasium's checks...) and the recorder's log records as one line each.

        Each distinct warning is shown once; log records show no traceback (the summary
        lists the failed videos).
        """
        seen: set[str] = set()

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            text = _one_line(_ANSI.sub("", str(message)).removeprefix("WARN: "))
            if text not in seen:
                seen.add(text)
                self.line(f"recorder: warning: {category.__name__}: {text}")

        handler = _LineHandler(self)
        log = logging.getLogger("recorder")
        propagate = log.propagate
        log.addHandler(handler)
        log.propagate = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                warnings.showwarning = show
                yield
        finally:
            log.removeHandler(handler)
            log.propagate = propagate


class _LineHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f": {type(error).__name__}: {error}"
        try:
            self._console.line(f"recorder: {record.levelname.lower()}: {text}")
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a job scheduler stopping us) unwinds like Ctrl-C: the videos are flushed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _version() -> str:
    try:
        return importlib.metadata.version("recorder")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _serve_command(folder: Path) -> str:
    return f"python -m recorder gallery {shlex.quote(str(folder))} --serve"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _int_in(low: int, high: float = math.inf) -> Callable[[str], int]:
    """An argparse type: an int in low..high."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            bounds = f">= {low}" if high == math.inf else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


_positive_int = _int_in(1)
_non_negative_int = _int_in(0)
_port = _int_in(0, 65535)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _step_list(text: str) -> frozenset[int]:
    try:
        steps = frozenset(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected steps like 0,100,200, got {text!r}") from None
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError(f"expected steps >= 0 like 0,100,200, got {text!r}")
    return steps
