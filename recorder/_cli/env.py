"""``recorder record``'s environment: made to render ``rgb_array``, with one-line errors."""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from recorder._cli.console import CLIError, pip_command

# The envs that the cli extra's gymnasium[classic-control] brings (pygame renders them).
CLI_EXTRA_ENVS = "gymnasium.envs.classic_control"


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
        hint = f" (here: {pip_command('gymnasium[classic-control]')})"
    return CLIError(f"{env_id}: missing dependency: {error}{hint}")


def env_failed(env_id: str, call: str, error: Exception) -> CLIError:
    """The env's own bug or refusal: the user needs its message, not the recorder's frames."""
    return CLIError(f"{env_id}: {call} raised {type(error).__name__}: {error}")


def _missing_dependency(env_id: str, error: ImportError) -> str:
    package = f" (try: {pip_command(error.name.split('.')[0])})" if error.name else ""
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
            raise env_failed(env_id, call, e) from None
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


def env_fps(env: Any) -> float:
    """The env's ``render_fps`` metadata, else 30 (with a note on stderr)."""
    fps = env.metadata.get("render_fps")
    if isinstance(fps, int | float) and not isinstance(fps, bool) and fps > 0:
        return float(fps)
    print("recorder: note: the env has no render_fps metadata; using 30 fps", file=sys.stderr)
    return 30.0
