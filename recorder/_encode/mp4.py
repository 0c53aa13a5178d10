"""Reading a fragmented mp4's top-level boxes: how much of it is whole, and its frames.

Every size is checked against what is there: a file cut by a crash, or bytes that are no
mp4 at all, never make the reader fail on them.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

# A moof holds a few bytes per frame: larger is garbage, not a box to read into memory.
_MAX_MOOF = 2**24


class _Malformed(ValueError):
    """A box that does not fit in its parent, or has an impossible size."""


def scan_fragments(fd: int) -> tuple[int, int]:
    """The playable prefix of the fragmented mp4 *fd*: (its length in bytes, its frames).

    Walks the top-level boxes: ``ftyp``, ``moov``, then one ``moof`` + ``mdat`` pair per
    fragment; a fragment counts once both boxes are whole, with the sample counts of the
    ``trun`` boxes of its ``moof``. The walk stops at the first box that is cut (by the
    crash) or malformed (corrupt): what is before it is whole. ``(0, 0)`` without a whole
    ``moov``.

    Raises:
        ValueError: the file does not start with an ``ftyp`` box: it is no mp4.
    """
    size = os.fstat(fd).st_size
    pos = end = frames = 0
    moov = False
    pending: int | None = None  # the samples of a moof whose mdat is not there yet
    while pos + 8 <= size:
        header = os.pread(fd, 16, pos)
        if pos == 0 and header[4:8] != b"ftyp":
            raise ValueError("not an mp4: it does not start with an ftyp box")
        try:
            kind, head, box_size = _box(header, size - pos)
            if kind == b"moof":
                if box_size > _MAX_MOOF:
                    raise _Malformed
                pending = _samples(os.pread(fd, box_size, pos), head, box_size)
        except _Malformed:
            break
        if kind == b"mdat":
            if pending is not None and moov:
                frames += pending
                end = pos + box_size
            pending = None
        elif kind != b"moof" and pending is None:
            moov = moov or kind == b"moov"
            end = pos + box_size
        pos += box_size
    return (end, frames) if moov else (0, 0)


def _box(header: bytes, left: int) -> tuple[bytes, int, int]:
    """(type, header length, size) of the box starting with *header*, *left* bytes before the
    end of its parent (or of the file).

    Raises:
        _Malformed: the box does not fit there.
    """
    if len(header) < 8 or left < 8:
        raise _Malformed
    size, kind = struct.unpack(">I4s", header[:8])
    head = 8
    if size == 1:  # a 64-bit size follows
        if len(header) < 16 or left < 16:
            raise _Malformed
        size, head = struct.unpack(">Q", header[8:16])[0], 16
    elif size == 0:  # to the end
        size = left
    if size < head or size > left:
        raise _Malformed
    return kind, head, size


def _boxes(data: bytes, start: int, stop: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, end) of the boxes in ``data[start:stop]``.

    Raises:
        _Malformed: one does not fit.
    """
    pos = start
    while pos < stop:
        kind, head, size = _box(data[pos : pos + 16], stop - pos)
        yield kind, pos + head, pos + size
        pos += size


def _samples(moof: bytes, start: int, stop: int) -> int:
    """The sample count of a ``moof``: the sum over its ``traf/trun`` boxes.

    Raises:
        _Malformed: a box inside it does not fit.
    """
    count = 0
    for kind, body, end in _boxes(moof, start, stop):
        if kind != b"traf":
            continue
        for inner, inner_body, inner_end in _boxes(moof, body, end):
            if inner == b"trun":
                if inner_end - inner_body < 8:  # version, flags, count
                    raise _Malformed
                count += struct.unpack(">I", moof[inner_body + 4 : inner_body + 8])[0]
    return count
