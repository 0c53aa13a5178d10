"""Drop-in replacements for gymnasium's video wrappers that encode in the background.

``recorder.wrappers.RecordVideo`` replaces ``gymnasium.wrappers.RecordVideo``;
``recorder.wrappers.vector.RecordVideo`` replaces ``gymnasium.wrappers.vector.RecordVideo``.
"""

import importlib as _importlib
import typing as _typing

from recorder.wrappers._record_video import RecordVideo

if _typing.TYPE_CHECKING:  # what __getattr__ loads, for type checkers and IDEs
    from recorder.wrappers import vector as vector

__all__ = ["RecordVideo"]


def __dir__() -> list[str]:
    return sorted({*globals(), "vector"})


def __getattr__(name: str) -> object:
    if name == "vector":
        return _importlib.import_module("recorder.wrappers.vector")
    raise AttributeError(f"module 'recorder.wrappers' has no attribute {name!r}")
