"""Keep only the best and worst episodes' videos: a ranking over scores, one episode at a time.

Every recorded episode is a candidate; once its score is known (when it ends) the videos of
episodes that are neither among the ``best`` highest nor among the ``worst`` lowest scores so
far are deleted. Two heaps of k entries decide it exactly: an episode pushed out of one set
while the other holds k episodes below (above) it can never come back into either.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import numbers
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recorder._base.results import VideoInfo
from recorder._encode.timeline import timeline_paths

logger = logging.getLogger("recorder")


@dataclass(frozen=True)
class Keep:
    """Which videos stay on disk: those of the *best* and *worst* episodes by *by*.

    Args:
        best: how many of the highest-scoring episodes to keep.
        worst: how many of the lowest-scoring episodes to keep.
        by: the episode metadata field that scores it (``ep.metadata["return"] = ...``,
            set before the episode ends; the wrappers and the CLI set ``"return"``), as the
            sidecar stores it: an episode whose score is not a finite number is kept,
            unranked. Ties keep the earlier episode.
    """

    best: int = 0
    worst: int = 0
    by: str = "return"

    def __post_init__(self) -> None:
        for name in ("best", "worst"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"keep {name} must be an int >= 0, got {value!r}")
        if self.best + self.worst == 0:
            raise ValueError("keep needs best or worst > 0 (None keeps every video)")
        if not isinstance(self.by, str) or not self.by:
            raise ValueError(f"keep by must be a metadata field name, got {self.by!r}")

    @classmethod
    def of(cls, value: Keep | Mapping[str, Any]) -> Keep:
        """A Keep from itself or from a mapping such as ``{"best": 5, "worst": 2}``."""
        if isinstance(value, Keep):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"best", "worst", "by"}
            if unknown:
                raise ValueError(f"unknown keep fields {sorted(unknown)}: best, worst, by")
            return cls(**value)
        raise TypeError(f"keep must be a Keep or a mapping, got {type(value).__name__}")

    def describe(self) -> str:
        parts = [
            f"best {self.best}" if self.best else "",
            f"worst {self.worst}" if self.worst else "",
        ]
        return f"{' and '.join(p for p in parts if p)} by {self.by}"


@dataclass
class _Episode:
    seq: int  # arrival order: ties keep the earlier episode
    score: float | None = None
    videos: list[VideoInfo] = field(default_factory=list)


class Ranking:
    """The decision alone: which episodes are kept as scores arrive (no files)."""

    def __init__(self, best: int, worst: int) -> None:
        self.best, self.worst = best, worst
        self._best: list[tuple[float, int]] = []  # min-heap of (score, -seq): root leaves first
        self._worst: list[tuple[float, int]] = []  # min-heap of (-score, -seq)

    def add(self, seq: int, score: float) -> list[int]:
        """Rank episode *seq*; returns the episodes (maybe *seq*) no longer kept by either."""
        out_best = self._push(self._best, self.best, (score, -seq))
        out_worst = self._push(self._worst, self.worst, (-score, -seq))
        kept = self.kept()
        return [s for s in {*out_best, *out_worst} if s not in kept]

    @staticmethod
    def _push(heap: list[tuple[float, int]], k: int, key: tuple[float, int]) -> list[int]:
        if k == 0:
            return [-key[1]]
        if len(heap) < k:
            heapq.heappush(heap, key)
            return []
        if key > heap[0]:
            return [-heapq.heapreplace(heap, key)[1]]
        return [-key[1]]

    def kept(self) -> set[int]:
        return {-s for _, s in self._best} | {-s for _, s in self._worst}

    def why(self, seq: int) -> str:
        """Why episode *seq* is kept so far ("" if it is not)."""
        reasons = []
        if any(-s == seq for _, s in self._best):
            reasons.append(f"among the best {self.best} so far")
        if any(-s == seq for _, s in self._worst):
            reasons.append(f"among the worst {self.worst} so far")
        return " and ".join(reasons)


class Keeper:
    """Applies a :class:`Keep` to a Recorder's saved videos (any thread).

    Holds a few dozen bytes per recorded episode (the indices of those deleted), never frames.
    Episode indices name files, so they are taken as unique per recorder.

    Args:
        keep: the policy.
        record: appends a line to the folder's manifest (what was deleted and why).
    """

    def __init__(self, keep: Keep, record: Callable[[dict[str, Any]], None]) -> None:
        self.keep = keep
        self._record = record
        self._ranking = Ranking(keep.best, keep.worst)
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._open: dict[int, _Episode] = {}  # by index: not ended yet, or ranked and kept
        self._by_seq: dict[int, _Episode] = {}
        self._out: set[int] = set()  # indices of episodes deleted
        self._unscored: set[int] = set()  # ended without a score: kept
        self._unscored_logged = False
        self.deleted = 0

    def _episode(self, index: int) -> _Episode:
        episode = self._open.get(index)
        if episode is None:
            episode = self._open[index] = _Episode(next(self._seq))
            self._by_seq[episode.seq] = episode
        return episode

    def episode_ended(self, index: int, metadata: Mapping[str, Any]) -> None:
        """Episode *index*, which made clips, ended with *metadata* (its score)."""
        score = _score(metadata.get(self.keep.by))
        with self._lock:
            episode = self._episode(index)
            episode.score = score
            if score is None:
                self._unscored.add(index)
                del self._open[index], self._by_seq[episode.seq]
                self._warn_unscored(index)
                return
            deletions = []
            gone = self._ranking.add(episode.seq, score)
            why = self._ranking.why(episode.seq) or f"not among the {self.keep.describe()}"
            self._record(
                {
                    "event": "keep",
                    "episode_index": index,
                    "score": score,
                    "kept": episode.seq not in gone,
                    "why": why,
                }
            )
            for seq in gone:
                victim = self._by_seq.pop(seq)
                index_of = next(i for i, e in self._open.items() if e is victim)
                del self._open[index_of]
                self._out.add(index_of)
                deletions.append((victim.videos, victim.score))
        for videos, victim_score in deletions:
            for info in videos:
                self._delete(info, victim_score)

    def saved(self, info: VideoInfo) -> bool:
        """*info* is on disk; deleted at once if its episode is already out (returns False)."""
        index = info.episode_index
        if index is None:
            return True  # a clip named freely: no episode's
        with self._lock:
            if index in self._unscored:
                return True
            if index not in self._out:
                self._episode(index).videos.append(info)
                return True
        self._delete(info, None)
        return False

    def _delete(self, info: VideoInfo, score: float | None) -> None:
        for path in (info.path, info.path.with_suffix(".json"), *timeline_paths(info.path)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        with self._lock:
            self.deleted += 1
        reason = f"not among the {self.keep.describe()}"
        logger.debug("keep: deleted %s (%s)", info.path, reason)
        self._record(
            {
                "event": "deleted",
                "file": info.path.name,
                "episode_index": info.episode_index,
                "reason": reason,
            }
        )

    def _warn_unscored(self, index: int) -> None:
        if not self._unscored_logged:
            self._unscored_logged = True
            logger.warning(
                "keep: episode %d ended without a numeric metadata[%r] (a finite number): its "
                "videos are kept (set ep.metadata[%r] before the episode ends)",
                index,
                self.keep.by,
                self.keep.by,
            )


def _score(value: Any) -> float | None:
    # What the sidecar stores (recorder._encode.sidecars.json_ready): NaN and infinities are null.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    score = float(value)
    return score if math.isfinite(score) else None
