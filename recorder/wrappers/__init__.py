"""Drop-in replacements for gymnasium's video wrappers that encode in the background.

``recorder.wrappers.RecordVideo`` replaces ``gymnasium.wrappers.RecordVideo``;
``recorder.wrappers.vector.RecordVideo`` replaces ``gymnasium.wrappers.vector.RecordVideo``.
"""

import importlib as _importlib

from recorder.wrappers._record_video import RecordVideo

__all__ = ["RecordVideo"]


def __getattr__(name: str) -> object:
    if name == "vector":
        return _importlib.import_module("recorder.wrappers.vector")
    raise AttributeError(f"module 'recorder.wrappers' has no attribute {name!r}")
