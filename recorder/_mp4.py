"""Reading a fragmented mp4's top-level boxes: how much of it is whole, and its frames."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator


def scan_fragments(fd: int) -> tuple[int, int]:
    """The playable prefix of the fragmented mp4 *fd*: (its length in bytes, its frames).

    Walks the top-level boxes: ``ftyp``, ``moov``, then one ``moof`` + ``mdat`` pair per
    fragment; a fragment counts once both boxes are whole, with the sample counts of the
    ``trun`` boxes of its ``moof``. ``(0, 0)`` without a whole ``moov``.
    """
    size = os.fstat(fd).st_size
    pos = end = frames = 0
    moov = False
    pending: int | None = None  # the samples of a moof whose mdat is not there yet
    while pos + 8 <= size:
        header = os.pread(fd, 16, pos)
        box_size, kind = struct.unpack(">I4s", header[:8])
        head = 8
        if box_size == 1 and len(header) == 16:
            box_size, head = struct.unpack(">Q", header[8:16])[0], 16
        elif box_size == 0:
            box_size = size - pos
        if box_size < head or pos + box_size > size:
            break  # cut by the crash
        if kind == b"moof":
            pending = _samples(os.pread(fd, box_size, pos), head, box_size)
        elif kind == b"mdat":
            if pending is not None and moov:
                frames += pending
                end = pos + box_size
            pending = None
        elif pending is None:
            moov = moov or kind == b"moov"
            end = pos + box_size
        pos += box_size
    return (end, frames) if moov else (0, 0)


def _boxes(data: bytes, start: int, stop: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, end) of the boxes in ``data[start:stop]``."""
    pos = start
    while pos + 8 <= stop:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = stop - pos
        if size < head or pos + size > stop:
            return
        yield kind, pos + head, pos + size
        pos += size


def _samples(moof: bytes, start: int, stop: int) -> int:
    """The sample count of a ``moof``: the sum over its ``traf/trun`` boxes."""
    count = 0
    for kind, body, end in _boxes(moof, start, stop):
        if kind != b"traf":
            continue
        for inner, inner_body, inner_end in _boxes(moof, body, end):
            if inner == b"trun" and inner_end - inner_body >= 8:  # version, flags, count
                count += struct.unpack(">I", moof[inner_body + 4 : inner_body + 8])[0]
    return count
