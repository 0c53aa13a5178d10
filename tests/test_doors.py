"""The tests reach the package's insides through ``recorder._testing`` only (the one door), so
that moving a module of the package changes that file and no test."""

from __future__ import annotations

import ast
import contextlib
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DOOR = "recorder._testing"


def is_private(name: str) -> bool:
    """Whether the dotted *name* is inside a private module of recorder other than the door."""
    first, *parts = name.split(".")
    if first != "recorder" or name == DOOR or name.startswith(DOOR + "."):
        return False
    return any(p.startswith("_") and not p.endswith("__") for p in parts)  # not __main__


def private_reaches(source: str) -> list[str]:
    """The private modules of recorder *source* imports or names (``recorder._x.y``), in its
    code and in the child scripts its strings hold."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [f"{node.value.id}.{node.attr}"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            with contextlib.suppress(SyntaxError, ValueError):  # not Python: a plain string
                found += private_reaches(textwrap.dedent(node.value))
        found += [name for name in names if is_private(name)]
    return found


@pytest.mark.parametrize(
    "source",
    [
        "from recorder._queue import ClipQueue",
        "from recorder import Recorder, _process",
        "import recorder._cli",
        "import recorder\nrecorder._live.MAX_READ = 64",
        "from recorder.wrappers._common import anything",
        "CHILD = '''\n    from recorder._encoder import PyAVEncoder\n'''",
    ],
)
def test_a_private_reach_is_found(source: str) -> None:
    assert private_reaches(source)


@pytest.mark.parametrize(
    "source",
    [
        "from recorder._testing import ClipQueue, queue_of",
        "from recorder import _testing, Recorder",
        "from recorder.__main__ import main",
        "import recorder\nrecorder.__file__",
        "from recorder.wrappers.vector import RecordVideo",
    ],
)
def test_the_door_and_the_public_api_are_not_reaches(source: str) -> None:
    assert private_reaches(source) == []


def test_tests_import_no_private_module_but_the_door() -> None:
    reaches = {
        path.name: found
        for path in sorted(TESTS.glob("*.py"))
        # Its examples above; the house's plan, whose subject is the package's module names.
        if path.name not in (Path(__file__).name, "test_layout.py")
        and (found := private_reaches(path.read_text()))
    }
    assert not reaches, f"tests reaching past {DOOR}: {reaches}"
