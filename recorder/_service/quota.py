"""A byte quota on a Recorder's videos (``Keep(max_bytes=...)``): which go when they exceed it.

The videos a Recorder saved and still has on disk are *held*, each with its size. When their
total exceeds the quota, the least valuable go first until it fits: under a best/worst ranking
the videos of no ranked episode (unscored, or clips named freely) by age, then the lowest-ranked
episodes' (:meth:`Quota.over`'s *value*); without one, the oldest. Never the newest video of each
kind (``"episode"``, ``"step"``, ``"clip"``: the last saved), nor one whose episode is not
ranked yet. When only those are left, the quota stays exceeded until the next video.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from recorder._base.results import VideoInfo

#: how a held video ranks for deletion: :data:`BY_AGE`, a key (the lowest goes first, after
#: every video by age), or None (not to be deleted now).
Value = Callable[["Held"], tuple[float, ...] | None]
#: the key of a video that goes by age, oldest first, before any ranked one.
BY_AGE: tuple[float, ...] = ()


@dataclass(eq=False)
class Held:
    """A video on disk that counts against the quota."""

    info: VideoInfo
    seq: int  # save order
    episode: object | None = None  # the ranking's key for its episode (None: ranked by age)


class Quota:
    """The held videos of one Recorder and their total size (its Keeper's lock guards it).

    Args:
        max_bytes: the most their sizes may add up to.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.total = 0
        self._held: dict[int, Held] = {}  # by seq: in save order
        self._newest: dict[str, int] = {}  # kind -> seq of its last saved video
        self._seq = itertools.count()

    def add(self, info: VideoInfo, episode: object | None = None) -> Held:
        """*info* was saved: it counts from now on."""
        held = Held(info, next(self._seq), episode)
        self._held[held.seq] = held
        self._newest[info.kind] = held.seq
        self.total += info.size_bytes
        return held

    def remove(self, held: Held) -> None:
        """*held* was deleted for another reason (its episode left the ranking)."""
        if self._held.pop(held.seq, None) is not None:
            self.total -= held.info.size_bytes

    def over(self, value: Value) -> list[Held]:
        """The videos to delete now, least valuable first (no longer held)."""
        if self.total <= self.max_bytes:
            return []
        newest = set(self._newest.values())
        total, gone, ranked = self.total, [], []
        for held in self._held.values():  # in save order: by age, oldest first
            if total <= self.max_bytes:
                break
            key = None if held.seq in newest else value(held)
            if key == BY_AGE:
                gone.append(held)
                total -= held.info.size_bytes
            elif key is not None:
                ranked.append((key, held))
        if total > self.max_bytes:
            ranked.sort(key=lambda pair: pair[0])
            for _, held in ranked:
                if total <= self.max_bytes:
                    break
                gone.append(held)
                total -= held.info.size_bytes
        for held in gone:
            self.remove(held)
        return gone
