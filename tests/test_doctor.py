"""``recorder doctor``: on this machine, and on broken setups the tests make (an env that
renders black, a frozen one, one whose render crashes the process, MuJoCo GL backends that
render blank or hang)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from helpers import run_child

from recorder.__main__ import main
from recorder._testing import doctor_module

LINE = re.compile(r"(ok|missing|broken) +(\S.*?) {2,}(\S.*?)(?: -> fix: (.+))?")
#: the checks every run reports, in order (MuJoCo's depend on whether it is installed).
ALWAYS = [
    "python",
    "pyav",
    "encoder h264",
    "encoder h265",
    "encoder vp9",
    "encoder av1",
    "encoder gif",
    "shared memory",
    "cores",
    "encoder process",
    "pygame (no display)",
    "pygame (display)",
]


def findings(stdout: str) -> dict[str, tuple[str, str, str | None]]:
    """{check name: (status, detail, fix)} of the doctor's report; every line parses."""
    lines = stdout.strip().splitlines()
    assert lines[0] == "recorder doctor: can this machine record videos?"
    found = {}
    for line in lines[1:-1]:
        match = LINE.fullmatch(line)
        assert match, f"not a check line: {line!r}"
        status, name, detail, fix = match.groups()
        found[name] = (status, detail, fix)
    return found


def test_this_machine_can_record_cartpole(tmp_path: Path) -> None:
    done = run_child(
        ["-m", "recorder", "doctor", "--env", "CartPole-v1"], cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "this machine can record"
    found = findings(done.stdout)
    names = list(found)
    assert names[: len(ALWAYS)] == ALWAYS
    assert "chromium (gallery check)" in names
    assert "mujoco" in names or "mujoco MUJOCO_GL=egl" in names
    for name in ("python", "pyav", "encoder h264", "encoder process", "pygame (no display)"):
        assert found[name][0] == "ok", (name, found[name])
    assert found["env CartPole-v1"][0] == "ok"
    status, detail, _ = found["env frames"]
    assert (status, detail) == ("ok", detail)
    assert detail.startswith("31 frames 400x600x3, not blank, not frozen")
    status, detail, _ = found["env video"]
    assert status == "ok"
    assert "h264 .mp4, 31 frames decoded back" in detail
    assert not list(tmp_path.iterdir())  # its scratch videos are gone
    # Its own flat test frames are meant to be flat: no health warning about them.
    assert "looks wrong" not in done.stderr, done.stderr


BROKEN_ENVS = """
import os

import gymnasium as gym
import numpy as np


class Black(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
    action_space = gym.spaces.Discrete(2)
    observation_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, 0.0, False, False, {}

    def render(self):
        return np.zeros((48, 64, 3), np.uint8)


class Frozen(Black):
    def render(self):
        return np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)


class Crashes(Black):
    def render(self):
        os.abort()  # as a GL driver's segfault would


gym.register("RecorderTestBlack-v0", entry_point=Black)
gym.register("RecorderTestFrozen-v0", entry_point=Frozen)
gym.register("RecorderTestCrashes-v0", entry_point=Crashes)
"""


@pytest.mark.parametrize(
    ("env_id", "line", "expected"),
    [
        (
            "RecorderTestBlack-v0",
            "env frames",
            "all 31 frames are blank (one flat colour [0, 0, 0])",
        ),
        ("RecorderTestFrozen-v0", "env frames", "all 31 frames are the same image (frozen)"),
        ("RecorderTestCrashes-v0", "env brokenenvs:RecorderTestCrashes-v0", "killed by signal 6"),
    ],
)
def test_an_env_that_cannot_be_recorded_fails_the_doctor(
    tmp_path: Path, env_id: str, line: str, expected: str
) -> None:
    (tmp_path / "brokenenvs.py").write_text(BROKEN_ENVS)
    argv = ["-m", "recorder", "doctor", "--env", f"brokenenvs:{env_id}"]
    done = run_child(argv, cwd=tmp_path, timeout=300)  # -m: the current folder is importable
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "this machine cannot record: 1 problem(s) above"
    found = findings(done.stdout)
    status, detail, _ = found[line]
    assert status == "broken"
    assert expected in detail
    assert [name for name, f in found.items() if f[0] == "broken"] == [line]
    if "Crashes" not in env_id:  # the video of those frames: the health check agrees
        assert "the recorder's health check flags it too" in found["env video"][1]


FAKE_MUJOCO = """
import os
import time

import numpy as np

__version__ = "0.0-test"
BACKEND = os.environ["MUJOCO_GL"]


class MjModel:
    @staticmethod
    def from_xml_string(xml):
        assert "<geom" in xml
        return MjModel()


class MjData:
    def __init__(self, model):
        pass


def mj_forward(model, data):
    pass


class Renderer:
    def __init__(self, model, height, width):
        self.shape = (height, width, 3)
        if BACKEND == "glfw":
            time.sleep(3600)  # no display: a backend that waits for ever

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def update_scene(self, data):
        pass

    def render(self):
        if BACKEND == "osmesa":
            return np.zeros(self.shape, np.uint8)  # a context that draws nothing
        return np.indices(self.shape[:2]).sum(axis=0).astype(np.uint8)[..., None].repeat(3, -1)
"""


def test_each_mujoco_backend_in_its_own_process_blank_and_hung_ones_reported(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "mujoco.py").write_text(textwrap.dedent(FAKE_MUJOCO))
    monkeypatch.syspath_prepend(str(tmp_path))  # the doctor sees mujoco installed...
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # ... and so do its checks' processes
    monkeypatch.setitem(doctor_module.TIMEOUT, "mujoco", 5.0)
    assert main(["doctor"]) == 0  # MuJoCo is not the main job
    found = findings(capsys.readouterr().out)
    assert found["mujoco MUJOCO_GL=egl"] == ("ok", "renders (mujoco 0.0-test)", None)
    status, detail, fix = found["mujoco MUJOCO_GL=osmesa"]
    assert (status, fix) == ("broken", "apt-get install libosmesa6")
    assert detail == "renders a blank image: all 1 frames are blank (one flat colour [0, 0, 0])"
    status, detail, fix = found["mujoco MUJOCO_GL=glfw"]
    assert (status, detail) == ("broken", "hung: no answer within 5 s")
    assert fix is not None
    assert "MUJOCO_GL=egl" in fix
