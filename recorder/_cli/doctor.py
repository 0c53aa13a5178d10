"""``recorder doctor``: can this machine record, and what to change when it cannot.

Checks that cannot hang run here; those that can hang or crash (GL, a browser, an env, the
first encoder process) run in child processes with a timeout (:mod:`recorder._cli.probes`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import importlib.util
import json
import mmap
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from recorder._base.codec import Codec
from recorder._cli.console import EXIT_ERROR, one_line, pip_command
from recorder._cli.probes import MUJOCO_FIXES, Finding, decoded_frames, headless
from recorder._front.recorder import Recorder

#: the codecs a Recorder takes, and AV1 (``libsvtav1``) when this version has no "av1" codec.
CODECS = ("h264", "h265", "vp9", "av1", "gif")
ENCODER_OF = {"av1": "libsvtav1"}
#: seconds a child check may take before it is reported as hanging.
TIMEOUT = {"mujoco": 60.0, "env": 300.0}
DEFAULT_TIMEOUT = 120.0
#: below this, /dev/shm is too small for Ray's object store (it falls back to slow disk).
SMALL_SHM = 2**30
MIN_PYTHON = (3, 11)
WIDTH = 8  # of the status column


@dataclass(frozen=True)
class Check:
    """A check to run in a child process: ``python -m recorder._cli.probes *args``."""

    args: tuple[str, ...]
    name: str  # for the line if the child hangs or crashes
    fix: str | None = None  # ditto
    env: tuple[tuple[str, str], ...] = ()
    fatal: bool = False  # the main job cannot work when it fails


def cmd_doctor(args: argparse.Namespace) -> int:
    """``recorder doctor``: see :func:`recorder._cli.main.build_parser`."""
    print("recorder doctor: can this machine record videos?", flush=True)
    fatal = 0
    for finding, is_fatal in run_checks(args.env):
        print(line(finding), flush=True)
        fatal += is_fatal and finding.status != "ok"
    if fatal:
        print(f"this machine cannot record: {fatal} problem(s) above")
        return EXIT_ERROR
    print("this machine can record")
    return 0


def line(finding: Finding) -> str:
    """One finding as one line: status, name, detail, and the fix when there is one."""
    text = f"{finding.status:<{WIDTH}}{finding.name:<25}  {one_line(finding.detail)}"
    return f"{text} -> fix: {finding.fix}" if finding.fix else text


def run_checks(env_id: str | None) -> Iterator[tuple[Finding, bool]]:
    """Every finding, in order, with whether it is fatal; child checks run two at a time."""
    for here in (_python, _pyav, *(_encoder(c) for c in CODECS), _memory, _cores):
        yield here()
    checks = child_checks(env_id)
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="doctor") as pool:
        results = [pool.submit(run_child, c) if isinstance(c, Check) else c for c in checks]
        for check, result in zip(checks, results, strict=True):
            if isinstance(result, Finding):
                yield result, False
                continue
            for finding in result.result():
                yield finding, isinstance(check, Check) and check.fatal


def child_checks(env_id: str | None) -> list[Check | Finding]:
    """The checks run in child processes, and the findings that need none."""
    dummy = (("SDL_VIDEODRIVER", "dummy"),)
    checks: list[Check | Finding] = [
        Check(("encoder-process",), "encoder process", fatal=True),
        Check(("pygame", "no display"), "pygame (no display)", env=dummy),
    ]
    if headless():
        detail = "no display (DISPLAY and WAYLAND_DISPLAY unset): rendering runs headless"
        fix = "set SDL_VIDEODRIVER=dummy in your own scripts (recorder record sets it itself)"
        checks.append(Finding("pygame (display)", "missing", detail, fix))
    else:
        checks.append(Check(("pygame", "display"), "pygame (display)"))
    if importlib.util.find_spec("mujoco") is None:
        detail = "not installed (only MuJoCo envs need it): its MUJOCO_GL backends not checked"
        checks.append(Finding("mujoco", "missing", detail, pip_command("mujoco")))
    else:
        for backend, fix in MUJOCO_FIXES.items():
            name = f"mujoco MUJOCO_GL={backend}"
            checks.append(Check(("mujoco", backend), name, fix, (("MUJOCO_GL", backend),)))
    checks.append(Check(("chromium",), "chromium (gallery check)"))
    if env_id is not None:
        env = dummy if headless() else ()
        checks.append(Check(("env", env_id), f"env {env_id}", env=env, fatal=True))
    return checks


def run_child(check: Check) -> list[Finding]:
    """Run *check* in a child process; a hang, a crash or no answer is a broken finding."""
    timeout = TIMEOUT.get(check.args[0], DEFAULT_TIMEOUT)
    package = str(Path(__file__).resolve().parents[2])  # this recorder, first on the path
    path = os.pathsep.join(p for p in (package, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, **dict(check.env)}
    command = [sys.executable, "-m", "recorder._cli.probes", *check.args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        detail = f"hung: no answer within {timeout:.0f} s"
        return [Finding(check.name, "broken", detail, check.fix)]
    lines = done.stdout.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except json.JSONDecodeError:
        found = None
    if not isinstance(found, list):
        return [Finding(check.name, "broken", _crash(done), check.fix)]
    return [Finding(**f) for f in found]


def _crash(done: subprocess.CompletedProcess[str]) -> str:
    status = done.returncode
    how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
    last = done.stderr.strip().splitlines()[-1:] or ["no output"]
    return f"crashed ({how}): {last[0]}"


# -- the checks run here -------------------------------------------------------------------------


def _python() -> tuple[Finding, bool]:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < MIN_PYTHON:
        fix = f"use Python {'.'.join(map(str, MIN_PYTHON))} or newer"
        return Finding("python", "broken", f"{version} ({sys.executable})", fix), True
    return Finding("python", "ok", f"{version} ({sys.executable})"), True


def _pyav() -> tuple[Finding, bool]:
    codec = av.library_versions.get("libavcodec", ())
    ffmpeg = ".".join(map(str, codec)) or "?"
    detail = f"av {importlib.metadata.version('av')}, libavcodec {ffmpeg}"
    return Finding("pyav", "ok", detail), True


def _encoder(name: str) -> Callable[[], tuple[Finding, bool]]:
    def check() -> tuple[Finding, bool]:
        label = f"encoder {name}"
        fatal = name == "h264"  # the default codec: the others are choices
        try:
            encoder = Codec(name).ffmpeg_settings()[0]
        except ValueError:  # not a codec of this version: is it in the wheel?
            encoder = ENCODER_OF[name]
            if encoder not in av.codecs_available:
                return _missing_encoder(label, encoder), False
            return Finding(label, "ok", f"{encoder} in PyAV's FFmpeg"), False
        if encoder not in av.codecs_available:
            return _missing_encoder(label, encoder), fatal
        return _encode(label, name, encoder), fatal

    return check


def _missing_encoder(label: str, encoder: str) -> Finding:
    detail = f"{encoder} is not in PyAV's FFmpeg"
    # PyAV's wheel brings an FFmpeg with every encoder; a build from source uses the system's.
    fix = pip_command("--force-reinstall", "--only-binary=av", "av")
    return Finding(label, "missing", detail, fix)


def _encode(label: str, codec: str, encoder: str) -> Finding:
    """Record 4 frames with *codec* (in a thread) and decode them back."""
    frames = [np.full((32, 32, 3), 60 * k, np.uint8) for k in range(4)]
    with tempfile.TemporaryDirectory(prefix="recorder-doctor-") as folder:
        try:
            # Flat test frames: the health check would call them blank (they are meant to be).
            with Recorder(
                folder,
                codec=codec,
                encode_in="thread",
                episode_trigger=lambda e: True,
                health=False,
            ) as rec:
                (handle,) = rec.submit(frames)
            decoded = len(decoded_frames(str(handle.result().path)))
        except Exception as e:
            return Finding(label, "broken", f"{encoder}: {type(e).__name__}: {e}")
    if decoded != len(frames):
        return Finding(label, "broken", f"{encoder}: {decoded} of {len(frames)} frames decoded")
    return Finding(label, "ok", f"{encoder}: encodes and decodes back")


def _memory() -> tuple[Finding, bool]:
    """The arena's memfd (frames shared with encoder processes) and /dev/shm's size."""
    shm = _shm_size()
    where = f"/dev/shm {shm / 2**30:.1f} GiB" if shm is not None else "no /dev/shm"
    if not hasattr(os, "memfd_create"):
        detail = f"no memfd on this platform: encoding runs in threads; {where}"
        return Finding("shared memory", "missing", detail), False
    try:
        fd = os.memfd_create("recorder-doctor", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, 2**20)
            with mmap.mmap(fd, 2**20) as memory:
                memory[:4] = b"test"
        finally:
            os.close(fd)
    except OSError as e:
        detail = f"memfd_create failed ({e.strerror or e}): frames are copied once more; {where}"
        return Finding("shared memory", "broken", detail), False
    if shm is not None and shm < SMALL_SHM:
        # The recorder's frames are in the memfd; Ray's object store lives in /dev/shm.
        detail = f"memfd works; {where}: small for Ray (docker run --shm-size=2g)"
        return Finding("shared memory", "ok", detail), False
    return Finding("shared memory", "ok", f"memfd works; {where}"), False


def _shm_size() -> int | None:
    try:
        stat = os.statvfs("/dev/shm")
    except OSError:
        return None
    return stat.f_blocks * stat.f_frsize


def _cores() -> tuple[Finding, bool]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    detail = f"{usable} usable (of {os.cpu_count()})"
    if (usable or 1) < 2:
        detail += ": encoding shares the one core with training (give the job 2 or more)"
    return Finding("cores", "ok", detail), False
