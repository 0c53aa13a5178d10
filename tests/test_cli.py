"""The command line: ``recorder record`` on CartPole, its summary, and its one-line errors."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from fakes import FakeEncoders, HeldWrites
from helpers import CHILD_PATH, AnsiOnly, Child, TinyEnv, decode, painted, run_child, unavailable

from recorder import Recorder
from recorder.__main__ import main
from recorder._testing import cli_module, cli_record_module


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def record(
    capsys: pytest.CaptureFixture[str], out: Path, options: str = "", env_id: str = "CartPole-v1"
) -> tuple[int, str, str]:
    """``recorder record ENV_ID OPTIONS --out OUT``: its exit code, stdout and stderr."""
    return run(capsys, "record", env_id, *options.split(), "--out", str(out))


def overflow(capsys: pytest.CaptureFixture[str], out: Path, on_full: str) -> tuple[int, str, str]:
    """Three episodes recorded with a budget smaller than one CartPole frame (720 kB)."""
    options = f"--episodes 3 --every 1 --on-full {on_full} --max-queue-mb 0.5 --no-progress"
    return record(capsys, out, options)


def summary(stdout: str) -> dict[str, str]:
    """The summary table as {row name: value}."""
    rows = {}
    for line in stdout.splitlines():
        key, _, value = line.strip().partition("  ")
        rows[key] = value.strip()
    return rows


def assert_one_line_error(code: int, stderr: str, *expected: str) -> None:
    assert code != 0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("recorder: error: "), stderr
    for text in expected:
        assert text in lines[0]


def test_record_cartpole_writes_videos_sidecars_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "videos"
    code, stdout, stderr = record(capsys, out, "--episodes 3 --every 2 --seed 5")
    assert code == 0, stderr
    assert sorted(p.name for p in out.glob("*.mp4")) == [
        "rl-video-episode-0.mp4",
        "rl-video-episode-2.mp4",
    ]
    total_frames = 0
    for episode in (0, 2):
        side = json.loads((out / f"rl-video-episode-{episode}.json").read_text())
        meta = side["metadata"]
        assert meta["env_id"] == "CartPole-v1"
        assert meta["seed"] == 5 + episode
        assert meta["policy"] == "random"
        assert side["fps"] == 50.0  # CartPole's render_fps
        assert side["frames"] == meta["length"] + 1  # the reset frame, then one per step
        assert meta["return"] == float(meta["length"])  # CartPole pays 1 per step
        assert meta["terminated"] or meta["truncated"]
        assert len(decode(out / side["path"]).frames) == side["frames"]
        total_frames += side["frames"]
        # The seed in the sidecar replays the episode.
        env = gym.make("CartPole-v1")
        env.reset(seed=meta["seed"])
        env.action_space.seed(meta["seed"])
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps, done = steps + 1, terminated or truncated
        env.close()
        assert steps == meta["length"]
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 2
    rows = summary(stdout)
    assert rows["environment"] == "CartPole-v1"
    assert rows["episodes / steps"].startswith("3 / ")
    assert (rows["videos saved"], rows["videos dropped"], rows["videos failed"]) == ("2", "0", "0")
    assert rows["frames encoded"] == str(total_frames)
    assert re.fullmatch(r"\d+ frames/s per busy worker", rows["encode speed"])
    assert re.fullmatch(r"[\d.]+ ms \([\d.]+%\)", rows["in recorder calls"])
    assert rows["folder"] == str(out.resolve())
    # tqdm bars on stderr: the loop, then the flush.
    assert "CartPole-v1" in stderr
    assert "encoding" in stderr
    assert "Traceback" not in stderr


def test_record_steps_with_step_trigger_and_video_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = "--steps 40 --at-steps 0,39 --video-length 5 --fps 12.5 --codec vp9 --no-progress"
    code, stdout, stderr = record(capsys, tmp_path, options)
    assert code == 0, stderr
    assert stderr == ""  # no bar, no warning
    assert summary(stdout)["episodes / steps"].endswith("/ 40")
    first = json.loads((tmp_path / "rl-video-step-0.json").read_text())
    last = json.loads((tmp_path / "rl-video-step-39.json").read_text())
    assert (first["frames"], first["first_step"], first["fps"]) == (5, 0, 12.5)
    # Cut before its episode ended (random CartPole episodes last 8 steps and more): written
    # before the episode's outcome is known, as docs/cli.md says.
    assert set(first["metadata"]) == {"env_id", "seed", "policy"}
    # Step 39 is the last one run: its clip has one frame however long episodes are.
    assert (last["frames"], last["first_step"], last["codec"]) == (1, 39, "vp9")
    assert len(decode(tmp_path / "rl-video-step-0.webm").frames) == 5
    assert len(decode(tmp_path / "rl-video-step-39.webm").frames) == 1


def test_keep_summary_says_how_many_videos_were_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = record(capsys, tmp_path, "--episodes 6 --keep-best 1 --keep-worst 1")
    assert code == 0, stderr
    assert len(list(tmp_path.glob("*.mp4"))) == 2
    saved = summary(stdout)["videos saved"]
    assert saved == "6, 2 kept (4 deleted: best 1 and worst 1 by return)"


def test_record_then_gallery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = record(capsys, tmp_path, "--episodes 2 --every 1 --no-progress --gallery")
    assert code == 0
    page = (tmp_path / "index.html").read_text()
    assert page.count("<video ") == 2
    address = (tmp_path / "index.html").resolve().as_uri()
    assert f"gallery: {address} " in stdout
    code, stdout, _ = run(capsys, "gallery", str(tmp_path), "--title", "runs <1>")
    assert code == 0
    assert "(2 videos)" in stdout
    assert f"open {address}\n" in stdout  # the same address from both commands
    assert "<title>runs &lt;1&gt;</title>" in (tmp_path / "index.html").read_text()


@pytest.fixture
def encoder_held_until_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the encoder inside its first frame until the recorder is flushed (at the end).

    A CartPole frame (720 kB) bigger than the whole budget enters the queue only when it is
    empty; an encoder that keeps up could empty it between frames and save a video. Held, it
    never does: every video overflows the budget.
    """
    held = HeldWrites(monkeypatch)
    flush = Recorder.flush

    def opening(rec: Recorder, timeout: float | None = None) -> None:
        held.go.set()  # the run is over (the CLI flushes once, at the end)
        flush(rec, timeout)

    monkeypatch.setattr(Recorder, "flush", opening)


@pytest.mark.usefixtures("encoder_held_until_close")
def test_dropped_videos_are_counted_and_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = overflow(capsys, tmp_path, "drop")
    assert code == 0  # dropping was asked for
    rows = summary(stdout)
    assert (rows["videos saved"], rows["videos dropped"]) == ("0", "3")
    assert not list(tmp_path.glob("*.mp4"))
    assert "3 videos dropped" in stderr
    assert "Traceback" not in stderr


def test_on_full_raise_stops_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = overflow(capsys, tmp_path, "raise")
    assert code == 1
    assert stdout == ""
    assert "Traceback" not in stderr
    *warned, last = stderr.strip().splitlines()
    assert last.startswith("recorder: error: max_queue_bytes=524288 full")
    assert last.endswith("(--on-full raise)")
    assert [w.split(":")[:2] for w in warned] == [["recorder", " warning"]]  # the core's log


def test_failed_videos_exit_non_zero_with_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = FakeEncoders(fail_at=0)
    monkeypatch.setattr(
        cli_record_module,
        "Recorder",
        functools.partial(cli_record_module.Recorder, encoder_factory=failing),
    )
    code, stdout, stderr = record(capsys, tmp_path, "--episodes 2 --every 1 --no-progress")
    assert code == 1
    assert summary(stdout)["videos failed"] == "2"
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 3, stderr
    assert all(line.startswith("recorder: error: ") for line in lines)
    assert sum("No space left on device" in line for line in lines) == 2
    assert lines[-1] == "recorder: error: 2 videos failed (see above)"


# -- errors -----------------------------------------------------------------------------------


class _Tiny(TinyEnv):
    length = 1  # every step ends the episode


class RendersNothing(_Tiny):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012

    def render(self) -> None:
        return None


class RendersFloats(_Tiny):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012

    def render(self) -> np.ndarray:
        return np.zeros((8, 8, 3), np.float32)


def striped(shape: tuple[int, ...]) -> np.ndarray:
    """A frame that is not blank, so that its video (a failed run's first frame) is not
    suspect: the health check's warning would be a line of stderr more."""
    frame = np.zeros(shape, np.uint8)
    frame[::2] = 200
    return frame


class GrowingFrames(_Tiny):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.renders = 0

    def render(self) -> np.ndarray:
        self.renders += 1
        return striped((8 + 2 * self.renders, 8, 3))


class ResetFailsFromSeed1(_Tiny):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        if seed:
            raise gym.error.Error(f"Seed must be even, actual value: {seed}")
        return super().reset(seed=seed)

    def render(self) -> np.ndarray:
        return striped((8, 8, 3))


class StepFails(ResetFailsFromSeed1):
    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        raise RuntimeError("physics\nexploded")  # two lines: still reported as one


class RenderFailsLater(ResetFailsFromSeed1):
    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.renders = 0

    def render(self) -> np.ndarray:
        self.renders += 1
        if self.renders > 2:  # the check's render and the reset frame work
            raise OSError("display lost")
        return super().render()


class ResetFailsAlways(ResetFailsFromSeed1):
    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        raise ValueError("no such level")


class CtrlCInStep(ResetFailsFromSeed1):
    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        raise KeyboardInterrupt


class CtrlCInRender(RenderFailsLater):
    def render(self) -> np.ndarray:
        self.renders += 1
        if self.renders == 2:  # the reset frame of episode 0 (after the check's render)
            raise KeyboardInterrupt
        return striped((8, 8, 3))


def needs_fake_physics(**kwargs: Any) -> gym.Env[int, int]:
    raise gym.error.DependencyNotInstalled(
        'fakephysics is not installed, run `pip install "gymnasium[fakephysics]"`'
    )


FAKE_ENVS = {
    "RecorderTestAnsiOnly-v0": AnsiOnly,
    "RecorderTestRendersNothing-v0": RendersNothing,
    "RecorderTestRendersFloats-v0": RendersFloats,
    "RecorderTestNeedsFakePhysics-v0": needs_fake_physics,
    "RecorderTestGrowingFrames-v0": GrowingFrames,
    "RecorderTestResetFailsFromSeed1-v0": ResetFailsFromSeed1,
    "RecorderTestStepFails-v0": StepFails,
    "RecorderTestRenderFailsLater-v0": RenderFailsLater,
    "RecorderTestResetFailsAlways-v0": ResetFailsAlways,
    "RecorderTestCtrlCInStep-v0": CtrlCInStep,
    "RecorderTestCtrlCInRender-v0": CtrlCInRender,
}


@pytest.fixture(scope="module")
def fake_envs() -> Iterator[None]:
    for env_id, entry_point in FAKE_ENVS.items():
        gym.register(env_id, entry_point=entry_point)
    yield
    for env_id in FAKE_ENVS:
        del gym.registry[env_id]


@pytest.mark.usefixtures("fake_envs")
@pytest.mark.parametrize(
    ("env_id", "expected"),
    [
        ("NoSuchEnv-v0", ["unknown environment 'NoSuchEnv-v0'", "doesn't exist"]),
        ("cartpole-v1", ["unknown environment", "Did you mean: `CartPole`?"]),
        ("NoNamespace/Thing-v0", ["unknown environment", "PACKAGE:ENV_ID"]),
        ("no_such_package_xyz:Thing-v0", ["missing dependency", "no_such_package_xyz"]),
        ("RecorderTestAnsiOnly-v0", ["does not render images", "['ansi']"]),
        ("RecorderTestRendersNothing-v0", ["does not render images", "returned NoneType"]),
        ("RecorderTestRendersFloats-v0", ["does not render images", "float32"]),
        (
            "RecorderTestNeedsFakePhysics-v0",
            ["missing dependency", 'pip install "gymnasium[fakephysics]"'],
        ),
        (
            "RecorderTestResetFailsAlways-v0",
            ["RecorderTestResetFailsAlways-v0: env.reset(seed=0) raised ValueError: no such level"],
        ),
    ],
)
def test_environment_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env_id: str, expected: list[str]
) -> None:
    out = tmp_path / "videos"
    code, stdout, stderr = record(capsys, out, "--no-progress", env_id=env_id)
    assert code == 1
    assert stdout == ""
    assert_one_line_error(code, stderr, *expected)
    assert not out.exists()  # nothing created for a run that could not start


@pytest.mark.usefixtures("fake_envs")
def test_a_frame_the_recorder_rejects_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, stderr = record(capsys, tmp_path, "--no-progress", "RecorderTestGrowingFrames-v0")
    assert_one_line_error(code, stderr, "bad frame", "shape changed")


@pytest.mark.usefixtures("fake_envs")
@pytest.mark.parametrize(
    ("env_id", "options", "expected"),
    [
        (
            "RecorderTestResetFailsFromSeed1-v0",
            "--seed 1",
            "env.reset(seed=1) raised Error: Seed must be even, actual value: 1",
        ),
        ("RecorderTestStepFails-v0", "", "env.step() raised RuntimeError: physics exploded"),
        ("RecorderTestRenderFailsLater-v0", "", "env.render() raised OSError: display lost"),
    ],
)
def test_env_errors_in_the_loop_are_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    env_id: str,
    options: str,
    expected: str,
) -> None:
    code, stdout, stderr = record(capsys, tmp_path, f"{options} --no-progress", env_id)
    assert code == 1
    assert stdout == ""
    assert_one_line_error(code, stderr)
    assert stderr == f"recorder: error: {env_id}: {expected}\n"
    assert not list(tmp_path.glob(".*rec-tmp"))  # the recorder was closed on the way out


@pytest.mark.usefixtures("fake_envs")
def test_ctrl_c_in_the_env_still_flushes_and_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = record(capsys, tmp_path, "--no-progress", "RecorderTestCtrlCInStep-v0")
    assert code == 130
    assert stderr == "recorder: interrupted\n"
    assert summary(stdout)["videos saved"] == "1"  # the reset frame, saved before exiting
    assert len(decode(tmp_path / "rl-video-episode-0.mp4").frames) == 1
    # Cut by Ctrl-C mid-episode: not a normal-looking video.
    assert json.loads((tmp_path / "rl-video-episode-0.json").read_text())["partial"] is True


@pytest.mark.parametrize(
    ("on_full", "interrupted", "why"),
    [
        ("drop", False, "(the frame queue was full): use --on-full block"),
        ("drop", True, "(see above)"),  # Ctrl-C drops a clip begun without a frame as well
        ("block", True, "(see above)"),  # block never drops for a full queue
    ],
)
def test_the_hint_for_dropped_videos_names_the_queue_only_when_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on_full: str, interrupted: bool, why: str
) -> None:
    with Recorder(tmp_path, encode_in="thread") as rec:
        stats = dataclasses.replace(rec.stats(), videos_dropped=2)
    assert cli_record_module._report_problems(stats, on_full, interrupted) == 0
    assert capsys.readouterr().err.startswith(f"recorder: warning: 2 videos dropped {why}")


@pytest.mark.usefixtures("fake_envs")
def test_ctrl_c_before_the_first_frame_is_no_stall_and_no_full_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ctrl-C while the reset frame renders: the episode recorded nothing, and says only that
    # the run was interrupted (not "episode 0 recorded nothing", nor a queue to enlarge).
    code, stdout, stderr = record(capsys, tmp_path, "--no-progress", "RecorderTestCtrlCInRender-v0")
    assert code == 130
    assert stderr == "recorder: interrupted\n"
    assert summary(stdout)["videos saved"] == "0"


def test_unwritable_folder_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tests run as root, so permissions cannot make a folder unwritable; a file in the path can.
    (tmp_path / "a_file").write_text("not a folder")
    out = tmp_path / "a_file" / "videos"
    code, _, stderr = record(capsys, out, "--no-progress")
    assert_one_line_error(code, stderr, "cannot write videos to", "Not a directory")


def test_missing_tqdm_gives_the_install_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    code, _, stderr = record(capsys, tmp_path)
    assert_one_line_error(code, stderr, "-m pip install tqdm", "--no-progress")
    assert not list(tmp_path.iterdir())
    # ... and without the bar, tqdm is not needed.
    code, _, stderr = record(capsys, tmp_path, "--episodes 1 --no-progress")
    assert code == 0, stderr


def test_missing_pygame_gives_the_install_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)  # CartPole's render() imports it
    out = tmp_path / "videos"
    code, _, stderr = record(capsys, out, "--no-progress")
    assert_one_line_error(
        code, stderr, "missing dependency: pygame", "-m pip install 'gymnasium[classic-control]'"
    )
    assert not out.exists()


def assert_usage_error(code: int, stderr: str, command: str, message: str) -> None:
    """argparse's way: exit 2, the usage, then one line saying what is wrong."""
    assert code == 2
    assert "Traceback" not in stderr
    assert stderr.startswith(f"usage: recorder {command} ")
    last = stderr.splitlines()[-1]
    assert last.startswith(f"recorder {command}: error: "), stderr
    assert message in last
    assert stderr.count("error:") == 1


CODEC_USAGE_ERRORS = [
    (["--codec", "gif", "--crf", "5"], "--crf does not apply to --codec gif"),
    (["--codec", "gif", "--preset", "5"], "--preset does not apply to --codec gif"),
    (["--preset", "fastest"], "--preset 'fastest' is not an x264/x265 preset (--codec h264)"),
    (["--codec", "h265", "--preset", "8"], "--preset '8' is not an x264/x265 preset"),
    (["--codec", "vp9", "--preset", "fast"], "--preset for --codec vp9 is its cpu-used"),
    (["--codec", "vp9", "--preset", "9"], "cpu-used level, an integer -8..8; got '9'"),
    (["--crf", "52"], "--crf for --codec h264 must lie in 0..51, got 52"),
    (["--codec", "h265", "--crf", "-1"], "--crf for --codec h265 must lie in 0..51"),
    (["--codec", "vp9", "--crf", "64"], "--crf for --codec vp9 must lie in 0..63, got 64"),
    (["--codec", "av1", "--crf", "64"], "--crf for --codec av1 must lie in 0..63, got 64"),
    (["--codec", "av1", "--preset", "veryfast"], "--preset for --codec av1 is an SVT-AV1 preset"),
]


@pytest.mark.parametrize(("argv", "expected"), CODEC_USAGE_ERRORS)
def test_the_library_refuses_what_the_cli_refuses_in_the_same_words(
    tmp_path: Path, argv: list[str], expected: str
) -> None:
    options = dict(zip(argv[::2], argv[1::2], strict=True))
    crf = options.get("--crf")
    with pytest.raises(ValueError, match=re.escape(expected.replace("--", ""))):
        Recorder(
            tmp_path,
            codec=options.get("--codec", "h264"),
            crf=None if crf is None else int(crf),
            preset=options.get("--preset"),
        )


@pytest.mark.parametrize(("argv", "expected"), CODEC_USAGE_ERRORS)
def test_codec_options_that_do_not_apply_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    out = tmp_path / "videos"
    code, stdout, stderr = record(capsys, out, " ".join(argv))
    assert stdout == ""
    assert_usage_error(code, stderr, "record", expected)
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "crf", "preset"),
    [
        (["--codec", "vp9", "--preset", "-8", "--crf", "63"], 63, "-8"),
        (["--codec", "vp9", "--preset", "0"], None, "0"),
        (["--codec", "h265", "--preset", "veryslow", "--crf", "51"], 51, "veryslow"),
        (["--codec", "h264", "--crf", "0"], 0, None),
        (["--codec", "av1", "--preset", "13", "--crf", "63"], 63, "13"),
        (["--codec", "gif"], None, None),
    ],
)
def test_codec_options_that_apply_pass(
    argv: list[str], crf: int | None, preset: str | None
) -> None:
    args = cli_module.parse_args(["record", "CartPole-v1", *argv])
    assert (args.crf, args.preset) == (crf, preset)


PORT_RANGE = "argument --port: must be in 0..65535, got"


@pytest.mark.parametrize(
    ("argv", "command", "message"),
    [
        (["record", "CartPole-v1", "--seed", "-1"], "record", "argument --seed: must be >= 0"),
        (["gallery", ".", "--serve", "--port", "99999"], "gallery", f"{PORT_RANGE} 99999"),
        (["gallery", ".", "--port", "-1"], "gallery", f"{PORT_RANGE} -1"),
        (["gallery", ".", "--port", "http"], "gallery", "argument --port: not an integer"),
        # Finite MiB, but not as bytes.
        (["record", "CartPole-v1", "--keep-max-mb", "1e308"], "record", "must be a finite number"),
        (["record", "CartPole-v1", "--max-queue-mb", "1e303"], "record", "must be a finite number"),
    ],
)
def test_out_of_range_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], command: str, message: str
) -> None:
    code, stdout, stderr = run(capsys, *argv)
    assert stdout == ""
    assert_usage_error(code, stderr, command, message)


@pytest.mark.parametrize(
    "argv",
    [
        ["record", "CartPole-v1", "--episodes", "0"],
        ["record", "CartPole-v1", "--episodes", "2", "--steps", "5"],
        ["record", "CartPole-v1", "--at-steps", "1,x"],
        ["record", "CartPole-v1", "--fps", "nan"],
        ["record"],
        [],
    ],
)
def test_bad_command_lines_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, stderr = run(capsys, *argv)
    assert code == 2
    assert "error:" in stderr
    assert "Traceback" not in stderr


def test_gallery_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run(capsys, "gallery", str(tmp_path / "nope"))
    assert_one_line_error(code, stderr, "is not a folder")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(capsys, "record", "--help")
    assert code == 0
    for option in ("--episodes", "--steps", "--every", "--at-steps", "--video-length", "--fps"):
        assert option in stdout
    for option in ("--codec", "--crf", "--preset", "--workers", "--out", "--seed"):
        assert option in stdout


# -- as a program -----------------------------------------------------------------------------


def test_record_without_a_display_renders_headless_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)  # a new user's shell on a server
    argv = ["-m", "recorder", "record", "CartPole-v1", "--episodes", "1", "--no-progress"]
    done = run_child([*argv, "--out", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not SDL's "XDG_RUNTIME_DIR is invalid or not set"
    assert len(decode(tmp_path / "rl-video-episode-0.mp4").frames) > 1


def test_the_serve_hints_run_from_where_the_user_is(tmp_path: Path) -> None:
    argv = ["-m", "recorder", "record", "CartPole-v1", "--episodes", "1", "--no-progress"]
    done = run_child([*argv, "--out", "videos", "--gallery"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    hints = re.findall(r"or serve it: (.*?)\)?$", done.stdout, re.MULTILINE)
    done = run_child(["-m", "recorder", "gallery", "videos"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    hints += re.findall(r"or serve it: (.*)$", done.stdout, re.MULTILINE)
    assert len(hints) == 2
    assert hints[0] == hints[1]
    # Run as the user would paste it into a shell, here (PATH as it is: no venv activated).
    shell = subprocess.Popen(
        f"exec {hints[0]} --port 0",
        shell=True,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(CHILD_PATH)},
    )
    try:
        assert shell.stdout is not None
        line = shell.stdout.readline()
        assert line.startswith("serving the live gallery of videos on http://127.0.0.1:"), (
            line + shell.communicate(timeout=30)[1]
        )
    finally:
        shell.send_signal(signal.SIGINT)
        _, err = shell.communicate(timeout=30)
    assert shell.returncode == 0, err


def test_a_missing_package_hint_installs_into_this_interpreter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    _, _, stderr = record(capsys, tmp_path)
    hint = re.search(r"needs tqdm: (.*) install tqdm \(or pass --no-progress\)", stderr)
    assert hint, stderr
    program, *rest = shlex.split(hint.group(1))
    assert rest == ["-m", "pip"]
    assert os.path.samefile(shutil.which(program) or program, sys.executable)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``recorder gallery FOLDER | head``: head may leave before the command writes."""
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        rec.submit([painted(k) for k in range(3)])
    read, write = os.pipe()
    os.close(read)  # the reader is gone
    try:
        done = subprocess.run(
            [sys.executable, "-m", "recorder", "gallery", str(tmp_path)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(CHILD_PATH)},
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")
    assert (tmp_path / "index.html").exists()  # the work was done before the output


def test_python_m_recorder(tmp_path: Path) -> None:
    argv = ["record", "CartPole-v1", "--episodes", "2", "--every", "1", "--out"]
    done = run_child(["-m", "recorder", *argv], tmp_path)
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout)["videos saved"] == "2"
    assert "encoding" in done.stderr  # the flush bar
    assert len(list(tmp_path.glob("*.mp4"))) == 2
    assert len(list(tmp_path.glob("*.json"))) == 2

    done = run_child(["-m", "recorder", "record", "NoSuchEnv-v0", "--out"], tmp_path / "x")
    assert_one_line_error(done.returncode, done.stderr, "unknown environment")


@pytest.mark.parametrize("command", ["gallery --serve", "serve"])
def test_serve_until_ctrl_c(tmp_path: Path, command: str) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        rec.submit([painted(k) for k in range(5)])
    name, *flags = command.split()
    argv = ["-m", "recorder", name, str(tmp_path), *flags, "--port", "0"]
    with Child(argv) as child:
        if name == "gallery":
            wrote = child.expect()
            assert wrote.startswith(f"wrote {tmp_path / 'index.html'} (1 video)")
        line = child.expect()
        match = re.fullmatch(
            r"serving the live gallery of .* on (http://127\.0\.0\.1:\d+/) "
            r"\(.*Ctrl-C to stop\)",
            line,
        )
        assert match, line
        with urllib.request.urlopen(match.group(1), timeout=10) as response:
            page = response.read().decode()
            assert "rl-video-episode-0.mp4" in page
            assert '"updates": "_recorder/updates"' in page
        request = urllib.request.Request(
            match.group(1) + "rl-video-episode-0.mp4", headers={"Range": "bytes=0-9"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 206
            assert len(response.read()) == 10
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=10) == 0
        assert "GET /" not in child.stderr  # quiet: an open page asks every second


def test_serve_logs_requests_when_asked(tmp_path: Path) -> None:
    argv = ["-m", "recorder", "serve", str(tmp_path), "--port", "0", "--log-requests"]
    with Child(argv) as child:
        address = re.search(r"http://\S+/", child.expect("serving"))
        assert address
        with urllib.request.urlopen(address.group(0), timeout=10) as response:
            assert response.status == 200
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=10) == 0
    assert '"GET / HTTP/1.1" 200' in child.stderr


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "recorder"
    if not script.exists():
        reason = f"the package is not installed with its console script ({script})"
        unavailable(reason, "RECORDER_REQUIRE_CONSOLE_SCRIPT")
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"recorder \S+\n", done.stdout)
