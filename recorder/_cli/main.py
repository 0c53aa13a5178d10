"""The command line: its entry point, and the parsing and checking of its arguments.

The commands run in ``record`` (record), ``folders`` (gallery, serve, recover) and ``doctor``.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import math
import sys
from collections.abc import Callable, Sequence
from typing import TypeAlias

from recorder._base.codec import check_codec_settings
from recorder._cli.console import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_PIPE,
    CLIError,
    one_line,
    stdout_closed,
)
from recorder._cli.doctor import cmd_doctor
from recorder._cli.folders import cmd_gallery, cmd_recover, cmd_serve
from recorder._cli.record import cmd_record


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
        status = command(args)
        sys.stdout.flush()  # a reader gone shows here, not in the interpreter's last flush
        return status
    except CLIError as e:
        print(f"recorder: error: {one_line(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("recorder: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `recorder gallery ... | head`: the reader left, as `head` may
        stdout_closed()
        return EXIT_PIPE


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
    _add_record(sub)
    _add_gallery(sub)
    _add_recover(sub)
    _add_doctor(sub)
    return parser


# What add_subparsers returns (argparse gives its type no public name).
_Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_record(sub: _Subparsers) -> None:
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
    _add_count(length, "--episodes", "episodes to run (default: 10)")
    _add_count(length, "--steps", "environment steps to run in all (the last episode is cut there)")
    trig = rec.add_argument_group(
        "what to record (default: episodes 0, 1, 8, 27, ..., 1000, 2000, ...: capped cubic)"
    )
    _add_count(trig, "--every", "record every N-th episode: 0, N, 2N...")
    trig.add_argument(
        "--at-steps",
        type=_step_list,
        metavar="S,S,...",
        help="start a clip at these steps (counted over all episodes)",
    )
    _add_count(trig, "--video-length", "at most N frames per video (default: whole episodes)")
    _add_count(
        trig,
        "--keep-best",
        "keep only the videos of the N highest-return episodes (and --keep-worst's); "
        "every episode is recorded unless --every or --at-steps says otherwise",
    )
    _add_count(trig, "--keep-worst", "keep the videos of the N lowest-return episodes too")
    trig.add_argument(
        "--keep-max-mb",
        type=_mebibytes,
        metavar="MB",
        help="keep at most MB MiB of videos: the least valuable go first (the lowest-ranked "
        "under --keep-best/--keep-worst, else the oldest), never the newest of each kind",
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
        "--frame-stride",
        type=_positive_int,
        default=1,
        metavar="K",
        help="record every K-th frame of each video (its first, then every K-th), at fps / K "
        "(default: 1, every frame)",
    )
    enc.add_argument(
        "--codec",
        default="h264",
        choices=("h264", "h265", "av1", "vp9", "gif"),
        help="default: h264 (av1: libsvtav1, mp4)",
    )
    enc.add_argument(
        "--crf",
        type=int,
        help="quality, lower is better: h264/h265 0..51 (default 23, 28), av1/vp9 0..63 "
        "(default 30, 32); not for gif",
    )
    enc.add_argument(
        "--preset",
        help="encoder speed: h264/h265 an x264 preset, av1 an SVT-AV1 preset 0..13; h264 and "
        "av1 by default adapt to the backlog (size-efficient while the encoder keeps up), "
        "h265 ultrafast; vp9 its cpu-used level -8..8 (default: 8, the fastest); not for gif",
    )
    enc.add_argument("--workers", type=_positive_int, default=1, help="encoder threads")
    enc.add_argument(
        "--max-queue-mb",
        type=_mebibytes,
        default=256 * 2**20,
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


def _folder_command(
    sub: _Subparsers,
    name: str,
    command: Callable[[argparse.Namespace], int],
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """A subcommand that works on a FOLDER of videos (its first argument)."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(command=command)
    parser.add_argument("folder", metavar="FOLDER")
    return parser


def _add_gallery(sub: _Subparsers) -> None:
    gal = _folder_command(
        sub, "gallery", cmd_gallery,
        "write FOLDER/index.html: the videos with posters and metadata",
        "Write FOLDER/index.html: a grid of the videos in FOLDER with poster thumbnails and "
        "their metadata, sorted by episode, filterable by name; offline.",
    )  # fmt: skip
    gal.add_argument("--title", help="page title (default: the folder's name)")
    gal.add_argument(
        "--serve",
        action="store_true",
        help="then serve the live gallery until Ctrl-C, as `recorder serve FOLDER` does",
    )
    _add_server_options(gal, "with --serve; ")
    srv = _folder_command(
        sub, "serve", cmd_serve,
        "serve FOLDER's live gallery over HTTP: new videos appear as they are saved",
        "Serve FOLDER's gallery over HTTP until Ctrl-C. The page follows "
        "FOLDER/manifest.jsonl: videos appear as a Recorder saves them (and leave as a keep "
        "policy deletes them), without a reload. Only files inside FOLDER are served, with "
        "the byte ranges browsers need to seek in videos.",
    )  # fmt: skip
    srv.add_argument("--title", help="page title (default: the folder's name)")
    _add_server_options(srv, "")


def _add_server_options(parser: argparse.ArgumentParser, prefix: str) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help=f"{prefix}the address to bind (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument(
        "--port", type=_port, default=8000, help=f"{prefix}0 picks a free port (default: 8000)"
    )
    parser.add_argument(
        "--log-requests",
        action="store_true",
        help=f"{prefix}log every HTTP request on stderr (default: quiet; an open page asks "
        "for updates every second)",
    )


def _add_recover(sub: _Subparsers) -> None:
    _folder_command(
        sub, "recover", cmd_recover,
        "turn videos half-written by a crashed process into FOLDER/{name}-partial.mp4",
        "Turn the temporary files that processes which died mid-clip left in FOLDER into "
        "{name}-partial.mp4 (every complete fragment, +faststart) with a {name}-partial.json "
        "sidecar; delete leftovers without a frame. Files whose writer is alive are left "
        "alone. Prints one line per file and a summary.",
    )  # fmt: skip


def _add_doctor(sub: _Subparsers) -> None:
    doc = sub.add_parser(
        "doctor",
        help="check that this machine can record, and say what to change when it cannot",
        description=(
            "Check Python, PyAV and its encoders, shared memory, cores, the encoder process, "
            "rendering (pygame with and without a display; MuJoCo's MUJOCO_GL backends when "
            "mujoco is installed) and a Chromium for the gallery check: one line per check, "
            "ok / missing / broken with the fix. Exit status 1 when recording cannot work."
        ),
    )
    doc.set_defaults(command=cmd_doctor)
    doc.add_argument(
        "--env",
        metavar="ENV_ID",
        help="also make this env, render frames, check they are neither blank nor frozen, "
        "record them and decode the video back",
    )


def _check_codec_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    # The library's own check (Codec), in the command line's words.
    try:
        check_codec_settings(args.codec, args.crf, args.preset, flag="--")
    except ValueError as e:
        parser.error(str(e))


def _version() -> str:
    try:
        return importlib.metadata.version("recorder")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _add_count(group: argparse._ActionsContainer, flag: str, help: str) -> None:
    """Add the option *flag* N, an int >= 1."""
    group.add_argument(flag, type=_positive_int, metavar="N", help=help)


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


def _mebibytes(text: str) -> int:
    """MiB (a float > 0) as bytes, at least 1."""
    size = _positive_float(text) * 2**20
    if size == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return max(1, int(size))


def _step_list(text: str) -> frozenset[int]:
    try:
        steps = frozenset(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected steps like 0,100,200, got {text!r}") from None
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError(f"expected steps >= 0 like 0,100,200, got {text!r}")
    return steps
