"""Keep only the best and worst episodes' videos: a ranking over scores, one episode at a time.

Every recorded episode is a candidate; once its score is known (when it ends) the videos of
episodes that are neither among the ``best`` highest nor among the ``worst`` lowest scores so
far are deleted. Two heaps of k entries decide it exactly: an episode pushed out of one set
while the other holds k episodes below (above) it can never come back into either. A byte
quota (``max_bytes``) deletes more when the videos kept exceed it (:mod:`.quota`).
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
from pathlib import Path
from typing import Any

from recorder._base.results import VideoInfo
from recorder._base.validate import describe, is_int
from recorder._encode.sidecars import SIDECAR_SUFFIX, publishing
from recorder._encode.timeline import timeline_paths
from recorder._service.quota import BY_AGE, Held, Quota

logger = logging.getLogger("recorder")


@dataclass(frozen=True)
class Keep:
    """Which videos stay on disk: those of the *best* and *worst* episodes by *by*, and at
    most *max_bytes* of them.

    Args:
        best: how many of the highest-scoring episodes to keep.
        worst: how many of the lowest-scoring episodes to keep.
        by: the episode metadata field that scores it (``ep.metadata["return"] = ...``,
            set before the episode ends; the wrappers and the CLI set ``"return"``), as the
            sidecar stores it: an episode whose score is not a finite number is kept,
            unranked. Ties keep the earlier episode.
        max_bytes: a quota on the size of the videos this Recorder keeps in its folder: when
            a video takes them over it, the least valuable go until they fit (with best or
            worst: the unranked videos, oldest first, then the lowest-ranked episodes';
            otherwise the oldest), never the newest video of each kind (episode, step, clip)
            nor one whose episode is not ranked yet. None: no quota.
    """

    best: int = 0
    worst: int = 0
    by: str = "return"
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("best", "worst"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"keep {name} must be an int >= 0, got {value!r}")
        quota = self.max_bytes
        if quota is not None:
            if not is_int(quota):
                raise TypeError(f"keep max_bytes must be an int (bytes), got {describe(quota)}")
            if quota <= 0:
                raise ValueError(f"keep max_bytes must be > 0 (None: no quota), got {quota}")
        if self.best + self.worst == 0 and quota is None:
            raise ValueError("keep needs best or worst > 0, or max_bytes (None keeps every video)")
        if not isinstance(self.by, str) or not self.by:
            raise ValueError(f"keep by must be a metadata field name, got {self.by!r}")

    @property
    def ranks(self) -> bool:
        """Whether episodes are ranked (best or worst > 0): then every episode is recorded."""
        return self.best + self.worst > 0

    @classmethod
    def of(cls, value: Keep | Mapping[str, Any]) -> Keep:
        """A Keep from itself or from a mapping such as ``{"best": 5, "worst": 2}``."""
        if isinstance(value, Keep):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"best", "worst", "by", "max_bytes"}
            if unknown:
                raise ValueError(
                    f"unknown keep fields {sorted(unknown)}: best, worst, by, max_bytes"
                )
            return cls(**value)
        raise TypeError(f"keep must be a Keep or a mapping, got {type(value).__name__}")

    def describe(self) -> str:
        parts = [
            f"best {self.best}" if self.best else "",
            f"worst {self.worst}" if self.worst else "",
        ]
        if not self.ranks:
            return f"max_bytes {self.max_bytes}"
        return f"{' and '.join(p for p in parts if p)} by {self.by}"


#: episodes ended with no video saved yet that the keeper waits for (the oldest is forgotten,
#: as one whose clips all ended without a video, past it; its video, if one came after all,
#: would be kept unranked).
MAX_PENDING = 1024
#: episodes pushed out (whose late videos are deleted as they come), and episodes ended with
#: no score (whose videos are kept unranked), remembered: past it the oldest is forgotten (a
#: video of it saved so late would be taken for a new episode's, never ended: kept for good).
MAX_REMEMBERED = 65536

#: an episode as the policy knows it: who numbers its episodes (None: the Recorder's own calls;
#: a wrapper's recording slot) and its index.
EpisodeKey = tuple[object, int]
#: appends a manifest line, to the manifest of a folder (None: the Recorder's).
Record = Callable[[dict[str, Any], "Path | None"], None]


@dataclass
class _Episode:
    seq: int  # arrival order: ties keep the earlier episode
    key: EpisodeKey
    score: float | None = None
    videos: list[Held] = field(default_factory=list)
    pending: int | None = None  # scored, not ranked until a video is saved: its index


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

    def positions(self) -> dict[int, int]:
        """Each kept episode's place from the end it is kept at (0: the best, or the worst)."""
        places: dict[int, int] = {}
        for heap in (self._best, self._worst):
            for place, (_, seq) in enumerate(sorted(heap, reverse=True)):
                places[-seq] = min(place, places.get(-seq, place))
        return places

    def why(self, seq: int) -> str:
        """Why episode *seq* is kept so far ("" if it is not)."""
        reasons = []
        if any(-s == seq for _, s in self._best):
            reasons.append(f"among the best {self.best} so far")
        if any(-s == seq for _, s in self._worst):
            reasons.append(f"among the worst {self.worst} so far")
        return " and ".join(reasons)


def _remember(keys: dict[EpisodeKey, None], key: EpisodeKey) -> None:
    """Add *key* to *keys*, forgetting the oldest past :data:`MAX_REMEMBERED`."""
    keys[key] = None
    if len(keys) > MAX_REMEMBERED:
        del keys[next(iter(keys))]


class _Doomed:
    """A deletion decided and not yet run; void once a newer video took its file's name.

    *file*: the video's (st_dev, st_ino, st_ctime_ns) when it was published, if known: a file
    of that name that is another (another process's or Recorder's video of the same name) is
    not deleted. The ctime because ext4 hands a freed inode number straight to the next file.
    """

    __slots__ = ("file", "void")

    def __init__(self, file: tuple[int, int, int] | None) -> None:
        self.void = False
        self.file = file


def _same_file(path: Path, file: tuple[int, int, int] | None) -> bool:
    """Whether *path* is still the file *file* (or gone, or *file* unknown: nothing to tell)."""
    if file is None:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return True
    return (st.st_dev, st.st_ino, st.st_ctime_ns) == file


class Keeper:
    """Applies a :class:`Keep` to a Recorder's saved videos (any thread).

    Holds a few dozen bytes per episode it remembers (at most MAX_REMEMBERED deleted and as
    many unscored; up to MAX_PENDING that ended with no video saved yet) and, with a quota, per
    video on disk; never frames. An episode is known by its key: who numbers it
    and its index (wrappers sharing a Recorder each count from 0). A video saved under the
    name of one held replaces it (the file is the new one). Decisions are made under one lock;
    files are deleted, and manifest lines written, after it.

    Args:
        keep: the policy.
        record: appends a line to a folder's manifest (what was deleted and why).
    """

    def __init__(self, keep: Keep, record: Record) -> None:
        self.keep = keep
        self._record = record
        self._ranking = Ranking(keep.best, keep.worst) if keep.ranks else None
        self._quota = None if keep.max_bytes is None else Quota(keep.max_bytes)
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._open: dict[EpisodeKey, _Episode] = {}  # not ended yet, or ranked and kept
        self._by_seq: dict[int, _Episode] = {}
        # (Insertion-ordered: the oldest first, at most MAX_REMEMBERED each.)
        self._out: dict[EpisodeKey, None] = {}  # episodes deleted
        self._unscored: dict[EpisodeKey, None] = {}  # ended without a score: kept
        self._unscored_logged = False
        self._held_at: dict[Path, Held] = {}  # the held videos (ranked or under the quota)
        # Deletions decided (under the lock) and not yet run (after it), by path.
        self._doomed: dict[Path, list[_Doomed]] = {}
        # (st_dev, st_ino, st_ctime_ns) of the files this Recorder published, by path
        self._files: dict[Path, tuple[int, int, int]] = {}
        # The episodes ended with no video saved yet (pending), oldest first: at most
        # MAX_PENDING, so that episodes whose clips all failed do not add up for ever.
        self._pending: dict[EpisodeKey, None] = {}
        self.deleted = 0

    def _episode(self, key: EpisodeKey) -> _Episode:
        episode = self._open.get(key)
        if episode is None:
            episode = self._open[key] = _Episode(next(self._seq), key)
            self._by_seq[episode.seq] = episode
        return episode

    def episode_ended(self, index: int, metadata: Mapping[str, Any], source: object = None) -> None:
        """Episode *index* of *source*, which made clips, ended with *metadata* (its score)."""
        if self._ranking is None:
            return  # a quota alone: episodes are not ranked
        key = (source, index)
        score = _score(metadata.get(self.keep.by))
        effects: list[Callable[[], None]] = []
        with self._lock:
            # An index ended again (submit's default 0, a Recorder used twice): a new episode,
            # whose videos replace the files of the earlier one.
            self._out.pop(key, None)
            self._unscored.pop(key, None)
            earlier = self._open.get(key)
            if earlier is not None and earlier.score is not None:
                del self._open[key]
                if earlier.pending is not None:  # never ranked: nothing refers to it
                    del self._by_seq[earlier.seq]
                    self._pending.pop(key, None)
            episode = self._episode(key)
            episode.score = score
            if score is None:
                _remember(self._unscored, key)
                del self._open[key], self._by_seq[episode.seq]
                for held in episode.videos:  # kept, unranked: by age under a quota
                    held.episode = None
                    if self._quota is None:
                        self._forget(held)
                if not self._unscored_logged:
                    self._unscored_logged = True
                    effects.append(lambda: self._warn_unscored(index))
            elif episode.videos:
                effects += self._rank(episode, index, episode.videos[0].info.path.parent)
            else:
                # Ranked at its first video saved: one whose clips all end without a video
                # (dropped at a close, cancelled, failed) must not push out one that has.
                episode.pending = index
                self._pending[key] = None
                if len(self._pending) > MAX_PENDING:  # its clips surely all ended: forget it
                    stale = self._open.get(next(iter(self._pending)))
                    if stale is not None and stale.pending is not None:
                        del self._open[stale.key], self._by_seq[stale.seq]
                    del self._pending[next(iter(self._pending))]
            effects += self._over_quota()
        for effect in effects:
            effect()

    def saved(self, info: VideoInfo, source: object = None) -> bool:
        """*info* (of *source*'s episode) is on disk; deleted at once if its episode is
        already out (returns False)."""
        index = info.episode_index
        key = None if index is None else (source, index)
        with self._lock:
            earlier = self._held_at.get(info.path)
            if earlier is not None:  # its file was replaced by this one: not to delete now
                self._forget(earlier)
            kept = key is None or key not in self._out
            effects: list[Callable[[], None]] = []
            pending = None if key is None or not kept else self._open.get(key)
            if pending is not None and pending.pending is not None:
                # Its episode ended before any of its videos was saved: ranked now, as if it
                # had been then (this video is deleted at once if it is not kept).
                effects += self._rank(pending, pending.pending, info.path.parent)
                kept = key not in self._out
            if not kept:
                reason = f"not among the {self.keep.describe()}"
                effects.append(self._deletion(Held(info, -1), reason))
            else:
                # Ranked with its episode; by age under a quota when there is no ranking, no
                # episode (a clip named freely) or no score.
                episode = None
                if self._ranking is not None and key is not None and key not in self._unscored:
                    episode = self._episode(key)
                quota = self._quota
                held = Held(info, -1, episode) if quota is None else quota.add(info, episode)
                if episode is not None:
                    episode.videos.append(held)
                if episode is not None or quota is not None:
                    self._held_at[info.path] = held
                effects += self._over_quota()
        for effect in effects:
            effect()
        return kept

    def _rank(self, episode: _Episode, index: int, folder: Path) -> list[Callable[[], None]]:
        """Rank *episode* (index *index*, scored, its videos in *folder*; lock held): the
        manifest line and the deletions of the episodes it pushes out, to run after it."""
        assert self._ranking is not None
        assert episode.score is not None
        episode.pending = None
        self._pending.pop(episode.key, None)
        gone = self._ranking.add(episode.seq, episode.score)
        why = self._ranking.why(episode.seq) or f"not among the {self.keep.describe()}"
        line = {"event": "keep", "episode_index": index, "score": episode.score}
        line |= {"kept": episode.seq not in gone, "why": why}
        effects: list[Callable[[], None]] = [lambda: self._record(line, folder)]
        reason = f"not among the {self.keep.describe()}"
        for seq in gone:
            victim = self._by_seq.pop(seq)
            if self._open.get(victim.key) is victim:
                del self._open[victim.key]
                _remember(self._out, victim.key)
            effects += [self._deletion(held, reason) for held in list(victim.videos)]
        return effects

    def _forget(self, held: Held) -> None:
        """No longer hold *held* (lock held): deleted, replaced, or kept for good."""
        if self._held_at.get(held.info.path) is held:
            del self._held_at[held.info.path]
        if self._quota is not None:
            self._quota.remove(held)
        episode = held.episode
        if isinstance(episode, _Episode) and held in episode.videos:
            episode.videos.remove(held)

    def _over_quota(self) -> list[Callable[[], None]]:
        """Decide what the quota deletes now (lock held); the deletions, to run after it."""
        quota = self._quota
        if quota is None:
            return []
        places = {} if self._ranking is None else self._ranking.positions()

        def value(held: Held) -> tuple[float, ...] | None:
            episode = held.episode
            if episode is None:
                return BY_AGE
            assert isinstance(episode, _Episode)
            if episode.score is None:
                return None  # not ranked yet: it may be the best
            # The episode furthest from both ends first; ties keep the earlier episode.
            return (-places[episode.seq], -episode.seq, held.seq)

        total = quota.total
        gone = quota.over(value)
        why = (
            "the oldest video goes first"
            if self._ranking is None
            else ("the videos of no ranked episode go first, oldest first, then the lowest-ranked")
        )
        reason = f"over the byte quota: {total} bytes of videos > max_bytes {quota.max_bytes}; "
        return [self._deletion(held, reason + why) for held in gone]

    def _deletion(self, held: Held, reason: str) -> Callable[[], None]:
        """Delete *held* (lock held: no longer counted); returns the deletion, to run after."""
        self._forget(held)
        self.deleted += 1
        doomed = _Doomed(self._files.get(held.info.path))
        self._doomed.setdefault(held.info.path, []).append(doomed)
        return lambda: self._delete(held.info, reason, doomed)

    def replacing(self, path: Path, file: tuple[int, int, int] | None = None) -> None:
        """A new video was just renamed to *path* (under the folder's publish lock), the file
        *file* (st_dev, st_ino, st_ctime_ns): the one it replaced is no longer held, and its
        deletions decided but not yet run must not delete the new one (its :meth:`saved`
        comes later, after its sidecars)."""
        with self._lock:
            if file is not None:
                self._files[path] = file
            earlier = self._held_at.get(path)
            if earlier is not None:
                self._forget(earlier)
            for doomed in self._doomed.pop(path, ()):
                doomed.void = True
                self.deleted -= 1

    def _delete(self, info: VideoInfo, reason: str, doomed: _Doomed) -> None:
        """Delete *info*'s video, then its sidecar and companions, then say so in the manifest:
        the live gallery removes its card at that line."""
        with publishing(info.path.parent):  # not between another writer's video and sidecar
            with self._lock:
                void = doomed.void
                waiting = self._doomed.get(info.path, [])
                if doomed in waiting:
                    waiting.remove(doomed)
                    if not waiting:
                        del self._doomed[info.path]
                # Its file is deleted now, or was replaced (by this Recorder: noted anew).
                if doomed.file is not None and self._files.get(info.path) == doomed.file:
                    del self._files[info.path]
            if void or not _same_file(info.path, doomed.file):
                return  # its file now holds a newer video (see replacing), or another's
            for path in companions(info.path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        logger.debug("keep: deleted %s (%s)", info.path, reason)
        self._record(
            {
                "event": "deleted",
                "file": info.path.name,
                "episode_index": info.episode_index,
                "reason": reason,
            },
            info.path.parent,  # where its card is: that folder's gallery removes it
        )

    def _warn_unscored(self, index: int) -> None:
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
    try:
        score = float(value)
    except OverflowError:  # an int beyond a float's range
        return None
    return score if math.isfinite(score) else None


def companions(video: Path) -> list[Path]:
    """*video* and the files that go with it: its sidecar, timeline and captions."""
    return [video, video.with_suffix(SIDECAR_SUFFIX), *timeline_paths(video)]
