"""``recorder doctor``'s checks that may hang or crash (GL, a browser, an env), each run as
``python -m recorder._cli.probes NAME [ARG]`` in a child process: it prints its findings as one
JSON line, a list of ``{"name", "status", "detail", "fix"}``; the parent has the timeout."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import av
import gymnasium as gym
import numpy as np

from recorder._cli.console import CLIError, one_line, pip_command
from recorder._cli.env import make_env
from recorder._front.recorder import Recorder

Status = Literal["ok", "missing", "broken"]

#: the env frames the --env check renders: the reset frame and this many steps.
ENV_STEPS = 30
#: a scene MuJoCo renders in any backend: a lit box in front of the default free camera.
MUJOCO_XML = """
<mujoco>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1"/>
    <geom type="box" size=".2 .2 .2" rgba=".9 .2 .2 1"/>
  </worldbody>
</mujoco>
"""
MUJOCO_FIXES = {
    "egl": "apt-get install libegl1 (and your GPU's EGL driver), or use MUJOCO_GL=osmesa",
    "osmesa": "apt-get install libosmesa6",
    "glfw": "glfw needs a display: set DISPLAY or run under xvfb-run; headless, use "
    "MUJOCO_GL=egl or osmesa",
}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class Finding:
    """One line of ``recorder doctor``: what was checked, how it went, and what to change."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


def frames_problem(frames: Sequence[np.ndarray[Any, Any]]) -> str | None:
    """Why *frames* cannot be a useful video, or None: all blank (one flat colour each), or
    all the same image (frozen). A check of the rendered frames, not of the recorder."""
    if not frames:
        return "no frame"
    if all(bool((f == f.reshape(-1, *f.shape[2:])[0]).all()) for f in frames):
        colour = frames[0].reshape(-1, *frames[0].shape[2:])[0]
        return f"all {len(frames)} frames are blank (one flat colour {colour.tolist()})"
    if len(frames) > 1 and all(np.array_equal(f, frames[0]) for f in frames[1:]):
        return f"all {len(frames)} frames are the same image (frozen)"
    return None


def headless() -> bool:
    """Whether there is no display to open a window on (X11 or Wayland)."""
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


# -- the probes ---------------------------------------------------------------------------------


def probe_pygame(label: str) -> list[Finding]:
    """CartPole-v1 rendered with pygame (the cli extra's envs), in this environment."""
    name = f"pygame ({label})"
    env = gym.make("CartPole-v1", render_mode="rgb_array")  # pygame comes at the first render
    try:
        env.reset(seed=0)
        frames = []
        for _ in range(5):
            frames.append(np.asarray(env.render()))
            env.step(env.action_space.sample())
        driver = _pygame_driver()
    except gym.error.DependencyNotInstalled as e:
        hint = pip_command("gymnasium[classic-control]")
        return [Finding(name, "missing", one_line(str(e)), hint)]
    finally:
        env.close()
    problem = frames_problem(frames)
    if problem:
        return [Finding(name, "broken", f"CartPole-v1: {problem}")]
    return [Finding(name, "ok", f"CartPole-v1 renders (SDL video driver {driver})")]


def _pygame_driver() -> str:
    pygame = importlib.import_module("pygame")
    return str(pygame.display.get_driver()) if pygame.display.get_init() else "none"


def probe_mujoco(backend: str) -> list[Finding]:
    """MuJoCo's renderer with ``MUJOCO_GL=backend`` (set by the parent) on a tiny model."""
    name = f"mujoco MUJOCO_GL={backend}"
    try:
        mujoco = importlib.import_module("mujoco")
        model = mujoco.MjModel.from_xml_string(MUJOCO_XML)
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        with mujoco.Renderer(model, 64, 64) as renderer:
            renderer.update_scene(data)
            pixels = np.asarray(renderer.render())
    except Exception as e:
        return [Finding(name, "broken", _error(e), MUJOCO_FIXES.get(backend))]
    problem = frames_problem([pixels])
    if problem:
        return [Finding(name, "broken", f"renders a blank image: {problem}", MUJOCO_FIXES[backend])]
    return [Finding(name, "ok", f"renders (mujoco {mujoco.__version__})")]


def probe_chromium() -> list[Finding]:
    """A Chromium that starts headless, for ``scripts/gallery_check.py`` and the tests."""
    name = "chromium (gallery check)"
    path = chromium_path()
    if path is None:
        fix = "apt-get install chromium (or set RECORDER_CHROMIUM)"
        return [Finding(name, "missing", "no Chromium found (optional)", fix)]
    command = [path, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "about:blank"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 or "<html" not in done.stdout:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return [Finding(name, "broken", f"{path} did not start headless: {last}")]
    if importlib.util.find_spec("playwright") is None:  # the check drives the browser with it
        detail = f"{path} starts, but playwright is missing"
        return [Finding(name, "missing", detail, pip_command("playwright"))]
    return [Finding(name, "ok", f"{path} starts headless; playwright installed")]


def chromium_path() -> str | None:
    """Where the gallery check finds Chromium: ``RECORDER_CHROMIUM``, else on the PATH."""
    chosen = os.environ.get("RECORDER_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    for candidate in CHROMIUM_NAMES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def probe_encoder_process() -> list[Finding]:
    """A Recorder with its default encoder process: start, record 8 frames, decode them."""
    name = "encoder process"
    frames = [np.full((64, 64, 3), 16 * k, np.uint8) for k in range(8)]
    with tempfile.TemporaryDirectory(prefix="recorder-doctor-") as folder:
        start = time.perf_counter()
        # Flat test frames: the health check would call them blank (they are meant to be).
        with Recorder(folder, episode_trigger=lambda e: True, health=False) as rec:
            (handle,) = rec.submit(frames)
            info = handle.result(timeout=60)
        seconds = time.perf_counter() - start
        decoded = decoded_frames(str(info.path))
    where = rec.encode_in
    if len(decoded) != len(frames):
        detail = f"{len(decoded)} of {len(frames)} frames decoded back"
        return [Finding(name, "broken", detail)]
    if where != "process":
        detail = "unavailable on this platform (needs Linux's memfd): encoding runs in threads"
        return [Finding(name, "missing", detail)]
    return [Finding(name, "ok", f"started and wrote a video in {seconds:.2f} s")]


def probe_env(env_id: str) -> list[Finding]:
    """Make *env_id*, render frames, check them, record them and decode the video back."""
    try:
        env = make_env(env_id)
    except CLIError as e:
        return [Finding(f"env {env_id}", "broken", str(e))]
    findings = [Finding(f"env {env_id}", "ok", f"made with render_mode='rgb_array' ({_spec(env)})")]
    try:
        frames, render_seconds = _render(env)
    except Exception as e:
        return [*findings, Finding("env render", "broken", _error(e))]
    finally:
        env.close()
    shape = "x".join(map(str, frames[0].shape))
    per_frame = f"{render_seconds / len(frames) * 1e3:.1f} ms a frame"
    problem = frames_problem(frames)
    if problem:
        fix = _render_fix(env)
        findings.append(Finding("env frames", "broken", f"{problem}: {shape}", fix))
    else:
        detail = f"{len(frames)} frames {shape}, not blank, not frozen, {per_frame}"
        findings.append(Finding("env frames", "ok", detail))
    return [*findings, _record_and_decode(frames, env.metadata.get("render_fps"))]


def _spec(env: Any) -> str:
    return f"{type(env.unwrapped).__module__}.{type(env.unwrapped).__name__}"


def _render(env: Any) -> tuple[list[np.ndarray[Any, Any]], float]:
    """The reset frame and :data:`ENV_STEPS` random steps' frames; the time spent rendering."""
    env.reset(seed=0)
    env.action_space.seed(0)
    frames, seconds = [], 0.0
    for step in range(ENV_STEPS + 1):
        if step:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        start = time.perf_counter()
        frames.append(np.asarray(env.render()))
        seconds += time.perf_counter() - start
    return frames, seconds


def _render_fix(env: Any) -> str:
    if "mujoco" in type(env.unwrapped).__module__:
        return "set MUJOCO_GL=egl (or osmesa): see the mujoco lines above"
    return "check the env's render(): on a machine without a display, a headless backend"


def _record_and_decode(frames: list[np.ndarray[Any, Any]], fps: Any) -> Finding:
    name = "env video"
    rate = float(fps) if isinstance(fps, int | float) and fps > 0 else 30.0
    with tempfile.TemporaryDirectory(prefix="recorder-doctor-") as folder:
        try:
            with Recorder(folder, fps=rate, episode_trigger=lambda e: True) as rec:
                (handle,) = rec.submit(frames)
                info = handle.result(timeout=120)
            decoded = decoded_frames(str(info.path))
        except Exception as e:
            return Finding(name, "broken", _error(e))
    if len(decoded) != len(frames):
        return Finding(name, "broken", f"{len(decoded)} of {len(frames)} frames decoded back")
    size = f"{info.size_bytes / 1e3:.0f} kB"
    detail = f"{info.codec} {info.path.suffix}, {len(decoded)} frames decoded back, {size}"
    # The recorder's health check sees what "env frames" saw (which fails the doctor then):
    # said here, not counted twice.
    health = info.health
    if health is not None and health.suspect:
        detail += f"; the recorder's health check flags it too: {health.why}"
    return Finding(name, "ok", detail)


def decoded_frames(path: str) -> list[np.ndarray[Any, Any]]:
    """Every frame of the video *path*, decoded with PyAV."""
    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _error(error: BaseException) -> str:
    text = one_line(str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


PROBES: dict[str, Callable[..., list[Finding]]] = {
    "pygame": probe_pygame,
    "mujoco": probe_mujoco,
    "chromium": probe_chromium,
    "encoder-process": probe_encoder_process,
    "env": probe_env,
}


def main(argv: Sequence[str]) -> int:
    """Run the probe ``argv[0]`` with the arguments after it; print its findings as JSON."""
    name, *args = argv
    findings = PROBES[name](*args)
    sys.stdout.flush()
    print("\n" + json.dumps([asdict(f) for f in findings]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
