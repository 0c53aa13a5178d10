"""Per-frame info (``ep.append(frame, info={...})``): checked and converted on the caller's
thread, as cheaply as possible; and how a frame's info reads as text (captions, overlays).

A frame's info is a small mapping of ``str`` keys to numbers, bools, short strings, None, or
short vectors of numbers (an action). Checked, it is a new plain ``dict`` (numpy values
converted, NaN and infinities as None: JSON has no such numbers) and its size in bytes, which
is charged to the Recorder's byte budget while the frame waits to be encoded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any, TypeAlias

import numpy as np

from recorder._base.validate import MAX_INT, describe, huge_int

#: the most a frame's info may hold, in bytes as :func:`check_info` counts them.
MAX_INFO_BYTES = 1024
#: the longest str value, and the longest key, in characters.
MAX_TEXT = 64
MAX_KEY = 32
#: the most numbers in a vector value (an action).
MAX_VECTOR = 32
#: the longest overlay text drawn onto a frame, in characters.
MAX_OVERLAY_TEXT = 200
#: what a frame's info is charged besides its items (the dict that holds them), and each item
#: besides its key's characters and its value's (8 bytes a number of a vector, a character
#: of a str).
_INFO_BYTES = 64
_ITEM_BYTES = 24
#: between the items of a caption or an overlay: ``step 12 · reward 1.0``.
SEPARATOR = " \u00b7 "

Scalar: TypeAlias = bool | int | float | str | None
Value: TypeAlias = Scalar | list[bool | int | float | None]
Info: TypeAlias = dict[str, Value]
#: a checked info and its size in bytes.
Checked: TypeAlias = tuple[Info, int]
#: a frame's overlay text from its info (None: no text).
TextOf: TypeAlias = Callable[[Info | None], str | None]
#: what ``Recorder(overlay=...)`` takes (see :func:`check_overlay`).
Overlay: TypeAlias = bool | str | Sequence[str] | Callable[[Mapping[str, Any]], object] | None

_WHAT = (
    "per-frame info holds numbers, bools, None, strings of at most "
    f"{MAX_TEXT} characters and vectors of at most {MAX_VECTOR} numbers"
)


def check_info(info: object, where: str = "info") -> Checked | None:
    """*info* as it is stored (a new dict) and its size in bytes; None for None.

    The training thread's path: plain Python numbers, bools and strings take a type test each.

    Raises:
        TypeError: not a mapping, a key that is not a str, or a value of another type.
        ValueError: an empty or long key, a long string or vector, or more than
            :data:`MAX_INFO_BYTES` in all.
    """
    if info is None:
        return None
    if not isinstance(info, Mapping):
        raise TypeError(
            f"{where} must be a mapping of str keys (a dict), got {describe(info)}: {_WHAT}"
        )
    items: dict[str, Any] = dict(info)  # a copy: the caller may change theirs after the call
    size = _INFO_BYTES
    for key, value in items.items():
        if type(key) is not str or not 0 < len(key) <= MAX_KEY:
            raise _bad_key(where, key)
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN, or an infinity
                items[key] = None
        elif kind is str:
            if len(value) > MAX_TEXT:
                raise _long_text(where, key, value)
            size += len(value)
        elif kind is int:
            if not -MAX_INT <= value <= MAX_INT:
                raise huge_int(f"{where}[{key!r}]", value)
        elif not (kind is bool or value is None):
            plain = _plain(where, key, value)
            items[key] = plain
            if isinstance(plain, list | str):
                size += len(plain) * (8 if isinstance(plain, list) else 1)
        size += _ITEM_BYTES + len(key)
    if size > MAX_INFO_BYTES:
        raise ValueError(
            f"{where} holds about {size} bytes, more than the {MAX_INFO_BYTES} a frame's info "
            f"may hold ({len(items)} items): {_WHAT}"
        )
    return items, size


def item_bytes(keys: Iterable[str]) -> int:
    """What :func:`check_info` charges an info of *keys* besides its values' own characters
    and vector numbers."""
    return _INFO_BYTES + sum(_ITEM_BYTES + len(key) for key in keys)


def check_infos(infos: object, count: int, where: str = "infos") -> list[Checked | None] | None:
    """*infos* (one info or None per frame of *count* frames) checked; None for None.

    Raises:
        TypeError, ValueError: not a sequence of *count* items, or an item :func:`check_info`
            refuses (named by its index).
    """
    if infos is None:
        return None
    if isinstance(infos, str | bytes | Mapping) or not isinstance(infos, Sequence):
        raise TypeError(
            f"{where} must be a sequence of one info (a mapping, or None) per frame, "
            f"got {describe(infos)}"
        )
    if len(infos) != count:
        raise ValueError(f"{where} has {len(infos)} items for {count} frames: give one per frame")
    return [check_info(info, f"{where}[{i}]") for i, info in enumerate(infos)]


def plain_action(action: object) -> Value:
    """*action* as per-frame info stores it: a number or bool, or a short vector of them;
    None when it is neither (a dict or image action, a long vector)."""
    if not isinstance(action, np.ndarray | np.generic | int | float | list | tuple):
        return None
    try:
        value = _plain("action", "action", action)
    except (TypeError, ValueError):
        return None
    return None if isinstance(value, str) else value


NUMBER_KINDS = frozenset("biuf")  # numpy dtype kinds a reward may be: bool, ints, floats


def reward_of(reward: Any) -> float:
    """*reward* as one float; NaN when it is not one number (a multi-objective env's vector).

    Never raises: the wrapper's ``step()`` passes gymnasium's reward through whatever it is,
    and NaN makes the episode's return "not a number" (recorded as null).
    """
    # The training thread's path (every step): Python's float and numpy's float64 (a
    # subclass), and ints, without building an array.
    if isinstance(reward, float):
        return float(reward)
    try:
        if type(reward) is int:
            return float(reward)
        value = np.asarray(reward)
        if value.size != 1 or value.dtype.kind not in NUMBER_KINDS:
            return math.nan
        return float(value.reshape(()))
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _plain(where: str, key: str, value: object) -> Value:
    """A value of a type other than float, int, bool, str and None, converted."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            value = value.item()
        elif value.ndim == 1 and value.dtype.kind in "biuf":
            value = value.tolist()
        else:
            raise TypeError(f"{where}[{key!r}] is {describe(value)}: {_WHAT}")
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple):
        if len(value) > MAX_VECTOR:
            raise ValueError(
                f"{where}[{key!r}] has {len(value)} items, more than {MAX_VECTOR}: {_WHAT}"
            )
        return [_number(where, key, item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise _long_text(where, key, value)
        return str(value)
    if isinstance(value, int | float):
        return _number(where, key, value)
    raise TypeError(f"{where}[{key!r}] is {describe(value)}: {_WHAT}")


def _number(where: str, key: str, value: object) -> bool | int | float | None:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            raise huge_int(f"{where}[{key!r}]", value)
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    raise TypeError(
        f"{where}[{key!r}] holds {describe(value)}: a vector holds numbers and bools only"
    )


def _bad_key(where: str, key: object) -> TypeError | ValueError:
    if not isinstance(key, str):
        return TypeError(f"{where} has the key {describe(key)}: keys are str")
    return ValueError(f"{where} has the key {key!r}: keys are 1 to {MAX_KEY} characters")


def _long_text(where: str, key: str, value: str) -> ValueError:
    return ValueError(
        f"{where}[{key!r}] is a string of {len(value)} characters, more than {MAX_TEXT}: {_WHAT}"
    )


# -- as text ------------------------------------------------------------------------------------


def format_value(value: Value) -> str:
    """A value as a caption shows it: floats short (``1.0``, ``0.3``, ``1.23457e+06``)."""
    if type(value) is float:
        text = repr(value)
        return text if len(text) <= 8 else f"{value:.6g}"
    if type(value) is list:
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(value)


def row_text(info: Mapping[str, Value] | None, keys: Iterable[str] | None = None) -> str:
    """*info*'s items (those of *keys*, in that order; default all) as ``key value`` joined by
    :data:`SEPARATOR`; None values are left out."""
    if not info:
        return ""
    names = info if keys is None else keys
    return SEPARATOR.join(
        f"{key} {format_value(value)}" for key in names if (value := info.get(key)) is not None
    )


def check_overlay(overlay: object) -> TextOf | None:
    """The overlay text of a frame, as ``Recorder(overlay=...)`` asks; None for no overlay.

    *overlay*: None or False (none), True (every item of the frame's info), a key or a
    sequence of keys (those items, in that order), or a callable ``info -> str`` (given a
    read-only mapping; called on a worker thread).

    Raises:
        TypeError: another type, or a key that is not a str.
        ValueError: no key, or an empty one.
    """
    if overlay is None or overlay is False:
        return None
    if overlay is True:
        return partial(_keys_text, None)
    if isinstance(overlay, str):
        overlay = (overlay,)
    elif callable(overlay):
        return partial(_called, overlay)
    if not isinstance(overlay, Sequence):
        raise TypeError(
            "overlay must be a key or a sequence of keys of the frames' info, True (every key), "
            f"a callable info -> str, or None; got {describe(overlay)}"
        )
    keys = tuple(overlay)
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"overlay's keys must be str, got {describe(key)}")
        if not key:
            raise ValueError("overlay's keys must not be empty")
    if not keys:
        raise ValueError("overlay names no key: give e.g. ('step', 'reward'), or True for all")
    return partial(_keys_text, keys)


_NO_INFO: Mapping[str, Value] = MappingProxyType({})


def _keys_text(keys: tuple[str, ...] | None, info: Info | None) -> str | None:
    return row_text(info, keys)[:MAX_OVERLAY_TEXT] or None


def _called(overlay: Callable[[Mapping[str, Value]], Any], info: Info | None) -> str | None:
    if info is None:
        view: Mapping[str, Any] = _NO_INFO
    else:  # vectors as tuples: the timeline writes the same values after the overlay
        view = MappingProxyType(
            {k: tuple(v) if isinstance(v, list) else v for k, v in info.items()}
        )
    text = overlay(view)
    return None if text is None else str(text)[:MAX_OVERLAY_TEXT] or None
