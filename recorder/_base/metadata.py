"""Metadata as JSON can store it, checked on the caller's thread: numbers (numpy's too),
bools, strings, lists and string-keyed mappings; NaN and infinities become null."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import numpy as np

from recorder._base.validate import MAX_INT, describe, huge_int

T = TypeVar("T")


def json_ready(value: Any, where: str = "value") -> Any:
    """*value* as the JSON data it is stored as (a new object); *where* names it in errors.

    JSON's own types are kept (str and int subclasses as plain ones); numpy scalars and arrays
    become numbers, bools and lists, tuples lists, ``os.PathLike`` its path; NaN and infinities
    become None (JSON has no such numbers; ``JSON.stringify`` does the same).

    Raises:
        TypeError: a value of another type, or a mapping key that is not a str.
        ValueError: a reference cycle, or nesting deeper than Python's recursion limit.
    """
    return _converted(where, partial(_plain, value, where, set()))


def _converted(where: str, convert: Callable[[], T]) -> T:
    try:
        return convert()
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply to be stored as JSON") from None


def _plain(value: Any, where: str, inside: set[int]) -> Any:
    if isinstance(value, np.generic):
        value = value.item()  # a Python bool, int, float, str...
    elif isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            raise huge_int(where, value)
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return _plain_container(value, where, inside)
    raise TypeError(
        f"{where} is {describe(value)}, which JSON cannot store: give a str, number, bool, "
        "None, list or dict (numpy scalars and arrays are converted)"
    )


def _plain_container(value: Any, where: str, inside: set[int]) -> Any:
    # *inside*: the containers *value* is in, to tell a cycle from a value seen twice.
    if id(value) in inside:
        raise ValueError(
            f"{where} refers back to a container it is in (a reference cycle): JSON cannot store it"
        )
    inside.add(id(value))
    try:
        if isinstance(value, Mapping):
            return dict(_plain_item(where, key, item, inside) for key, item in value.items())
        items = value.tolist() if isinstance(value, np.ndarray) else value
        if not isinstance(items, list | tuple):  # a 0-d array's item
            return _plain(items, where, inside)
        return [_plain(item, f"{where}[{i}]", inside) for i, item in enumerate(items)]
    finally:
        inside.discard(id(value))


def _plain_item(where: str, key: Any, value: Any, inside: set[int]) -> tuple[str, Any]:
    """An item of the mapping *where*, as it is stored."""
    if not isinstance(key, str):
        raise TypeError(f"{where} has the key {describe(key)}: JSON object keys are str")
    return str(key), _plain(value, f"{where}[{key!r}]", inside)


def split_metadata(
    metadata: Mapping[Any, Any], where: str = "metadata"
) -> tuple[dict[str, Any], list[TypeError | ValueError]]:
    """The items of *metadata* that can be stored, as :func:`json_ready` stores them, and the
    errors of the others (their keys are left out)."""
    stored: dict[str, Any] = {}
    errors: list[TypeError | ValueError] = []
    for key, value in metadata.items():
        convert = partial(_plain_item, where, key, value, {id(metadata)})
        try:
            name, stored_value = _converted(f"{where}[{key!r}]", convert)
            stored[name] = stored_value
        except (TypeError, ValueError) as e:
            errors.append(e)
    return stored, errors


def check_metadata(metadata: object, where: str = "metadata") -> dict[str, Any]:
    """*metadata* (a mapping or None) as it is stored; raises for what cannot be stored.

    Raises:
        TypeError, ValueError: the first item that cannot be stored (see :func:`json_ready`);
            the others, if any, are named in a note.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"{where} must be a mapping, got {describe(metadata)}")
    stored, errors = split_metadata(metadata, where)
    if errors:
        raise first_error(errors)
    return stored


def first_error(errors: list[TypeError | ValueError]) -> TypeError | ValueError:
    """The first of *errors*, with a note naming the others."""
    error = errors[0]
    if len(errors) > 1:
        error.add_note("also: " + "; ".join(str(e) for e in errors[1:]))
    return error


def dumps(record: dict[str, Any], indent: int | None = None) -> bytes:
    """*record* as JSON in UTF-8, converted by :func:`json_ready` (NaN is written as null).

    Non-ASCII text stays readable, except where it cannot be UTF-8 (a lone surrogate from
    ``os.fsdecode`` of a non-UTF-8 path): then everything is escaped, and still round-trips.

    Raises:
        TypeError, ValueError: see :func:`json_ready`; never for metadata that
            :func:`check_metadata` returned.
    """
    data = json_ready(record, "record")
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, indent=indent)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, allow_nan=False, indent=indent).encode("ascii")
