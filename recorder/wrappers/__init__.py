"""Drop-in replacements for gymnasium's video wrappers that encode in the background.

``recorder.wrappers.RecordVideo`` replaces ``gymnasium.wrappers.RecordVideo``;
``recorder.wrappers.vector.RecordVideo`` replaces ``gymnasium.wrappers.vector.RecordVideo``.
"""

from recorder.wrappers._record_video import RecordVideo

__all__ = ["RecordVideo"]
