"""Record from many Ray actors into one folder: a sink actor receives every finished video.

Producers (env runners, any Ray actor or task) encode where their frames are, and send each
finished video, bytes and metadata, to the sink; only encoded videos cross the network::

    sink = recorder.ray.start_sink("videos")          # on the driver

    # in each env runner (the handle pickles):
    env = recorder.wrappers.RecordVideo(env, "/tmp/spool", recorder_kwargs={"sink": sink})

Needs ``pip install "recorder[ray]"``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import importlib
import itertools
import os
import re
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recorder._base.metadata import dumps
from recorder._base.modes import share
from recorder._encode.sidecars import append_manifest, read_manifest, write_atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["SinkStats", "VideoSink", "start_sink"]

LOCK_NAME = ".recorder-sink.lock"
# Set in a process forked while Ray was connected: Ray's connection does not survive fork()
# (calls from here would never be answered).
_forked_from_ray = False
TMP_SUFFIX = ".sink-tmp"
# The default-named sessions opened in this process (see _default_producer).
_sessions = itertools.count(1)
_PRODUCER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _ray() -> Any:
    try:
        ray = importlib.import_module("ray")  # the optional extra, loaded on first use
    except ImportError as e:  # pragma: no cover - the extra is installed in tests
        raise ImportError(
            'recorder.ray needs Ray: pip install "recorder[ray]" (or pip install ray)'
        ) from e
    return ray


def check_producer(name: str) -> str:
    """A producer name goes into file names: letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(name, str) or not _PRODUCER.fullmatch(name):
        raise ValueError(
            "a producer name is 1-64 letters, digits, '.', '_' or '-', not starting with "
            f"'.', '_' or '-'; got {name!r}"
        )
    return name


@dataclass(frozen=True)
class ProducerStats:
    """What one producer delivered."""

    videos: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class SinkStats:
    """The sink's counters, from :meth:`VideoSink.stats`.

    Attributes:
        folder: the sink's folder (on the sink's node).
        videos: videos written.
        bytes: bytes of video written.
        producers: per producer name, what it delivered.
        renamed: videos written under ``-2``, ``-3``... because their name was taken.
        repeated: deliveries received again after a retry, recognised and not written twice.
        failures: deliveries that raised (the producer's handle raised too).
        busy_seconds: time spent writing deliveries (what bounds one sink's rate).
        errors: the newest failures' messages.
    """

    folder: str
    videos: int
    bytes: int
    producers: dict[str, ProducerStats]
    renamed: int
    repeated: int
    failures: int
    busy_seconds: float = 0.0
    errors: tuple[str, ...] = ()


class SinkServer:
    """The sink actor's body: writes delivered videos atomically, with sidecar and manifest.

    One sink per folder (an flock on ``.recorder-sink.lock``), so the sink's temporary files
    are its own: a restarted sink deletes those a killed one left.
    """

    MAX_ERRORS = 20

    def __init__(self, folder: str) -> None:
        self.folder = Path(os.path.abspath(folder))
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                raise RuntimeError(f"another recorder sink is writing to {self.folder}") from None
        for leftover in self.folder.glob(f".*{TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        # Deliveries already written (a retry after a restart must not write them twice).
        self._delivered: dict[str, str] = {
            r["delivery"]: str(self.folder / r["path"])
            for r in read_manifest(self.folder)
            if isinstance(r.get("delivery"), str) and isinstance(r.get("path"), str)
        }
        self._videos = 0
        self._bytes = 0
        self._producers: dict[str, ProducerStats] = {}
        self._renamed = 0
        self._numbered: dict[tuple[str, str], int] = {}  # the next number to try, by stem
        self._repeated = 0
        self._failures = 0
        self._busy = 0.0
        self._errors: list[str] = []

    def ping(self) -> str:
        """The folder, once the actor is up."""
        return str(self.folder)

    def deliver(
        self, producer: str, delivery: str, name: str, data: bytes, record: dict[str, Any]
    ) -> str:
        """Write one video as ``{producer}-{name}`` (``-2``... if taken); returns its path."""
        if delivery in self._delivered:
            self._repeated += 1
            return self._delivered[delivery]
        start = time.perf_counter()
        try:
            path = self._write(check_producer(producer), name, data, record, delivery)
        except BaseException as e:
            self._failures += 1
            self._errors = [*self._errors, f"{producer}/{name}: {e!r}"][-self.MAX_ERRORS :]
            raise
        finally:
            self._busy += time.perf_counter() - start
        self._delivered[delivery] = str(path)
        self._videos += 1
        self._bytes += len(data)
        before = self._producers.get(producer, ProducerStats())
        self._producers[producer] = ProducerStats(before.videos + 1, before.bytes + len(data))
        return str(path)

    def _write(
        self, producer: str, name: str, data: bytes, record: dict[str, Any], delivery: str
    ) -> Path:
        suffix = Path(name).suffix
        stem = f"{producer}-{Path(name).stem}"
        if Path(name).name != name or not suffix or stem.startswith("."):
            raise ValueError(f"not a video file name: {name!r}")
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=TMP_SUFFIX, dir=self.folder)
        try:
            share(fd)  # the mode open() gives, kept by the link to the final name
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            final = self._link_free(Path(tmp), stem, suffix)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        record = {
            **record,
            "path": final.name,
            "name": final.stem,
            "producer": producer,
            "delivery": delivery,
            "size_bytes": len(data),
            "created": time.time(),
        }
        sidecar = final.with_suffix(".json")
        write_atomic(sidecar, dumps(record, indent=2) + b"\n", final.stem)
        append_manifest(self.folder, record)
        return final

    def _link_free(self, tmp: Path, stem: str, suffix: str) -> Path:
        """Give *tmp* the first free name of ``stem``, ``stem-2``... (from the last number
        this sink gave the stem: a name delivered again and again is not probed from 1 each
        time): link() never replaces a file, so a name taken by anyone is kept."""
        key = (stem, suffix)
        for n in itertools.count(self._numbered.get(key, 1)):
            final = self.folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            if final.with_suffix(".json").exists():  # taken by a video of another suffix
                continue
            try:
                os.link(tmp, final)
            except FileExistsError:
                continue
            if n > 1:
                self._renamed += 1
                self._numbered[key] = n + 1  # (stems never repeated take no entry)
            return final
        raise AssertionError("unreachable")

    def stats(self) -> SinkStats:
        """The counters (see :class:`SinkStats`)."""
        return SinkStats(
            folder=str(self.folder),
            videos=self._videos,
            bytes=self._bytes,
            producers=dict(self._producers),
            renamed=self._renamed,
            repeated=self._repeated,
            failures=self._failures,
            busy_seconds=self._busy,
            errors=tuple(self._errors),
        )


@dataclass(frozen=True)
class VideoSink:
    """A handle on a sink actor: picklable, for env creators and actors.

    Give it to a Recorder (``sink=``) or a wrapper (``recorder_kwargs={"sink": sink}``).

    Attributes:
        actor: the sink's Ray actor handle.
        folder: the sink's folder, on the sink's node.
        name: the producer name put in file names (see :meth:`producer`); ``None``: one of
            each Recorder's own, ``{actor}-{pid}`` (the Ray actor's name, else ``actor-{id}``;
            outside an actor the host's name), ``-2``, ``-3``... for a process's next ones.
        timeout: seconds to wait for :meth:`stats`; in a producer, seconds the sink may leave
            every delivery unanswered before they fail with TimeoutError.
    """

    actor: Any
    folder: str
    name: str | None = None
    timeout: float = field(default=60.0, repr=False)

    def producer(self, name: str) -> VideoSink:
        """This sink, for a producer called *name* (e.g. ``f"runner-{ctx.worker_index}"``)."""
        return dataclasses.replace(self, name=check_producer(name))

    def stats(self, timeout: float | None = None) -> SinkStats:
        """The sink's counters (videos and bytes per producer, failures)."""
        stats: SinkStats = _ray().get(self.actor.stats.remote(), timeout=timeout or self.timeout)
        return stats

    def open(self) -> _Session:
        """Connect this process as a producer (the Recorder calls this).

        Raises:
            RuntimeError: Ray is not initialized here, or this process was forked from one
                where it was (Ray's connection does not survive fork()).
        """
        ray = _ray()
        if _forked_from_ray:
            raise RuntimeError(
                "a recorder.ray sink is used in a process forked from one connected to Ray: "
                "Ray's connection does not survive fork(), so no video would reach the sink. "
                "Record in the Ray actor or task itself (e.g. envs stepped there, not in "
                "forked env processes), or give the forked process a Recorder without sink="
            )
        if not ray.is_initialized():
            raise RuntimeError(
                "a recorder.ray sink is used from a process where Ray is not initialized: "
                "use it inside Ray actors or tasks, or call ray.init() first"
            )
        return _Session(self.actor, self.name or _default_producer(ray), self.timeout)

    def shutdown(self) -> None:
        """Kill the sink actor (what it has written stays)."""
        _ray().kill(self.actor)


class _Session:
    """A producer's connection: numbered deliveries, so that a retried one is recognised."""

    def __init__(self, actor: Any, producer: str, timeout: float) -> None:
        self.actor = actor
        self.producer = check_producer(producer)
        self.timeout: float | None = timeout
        self._token = uuid.uuid4().hex[:12]
        self._seq = itertools.count()

    def send(
        self, name: str, data: bytes, record: dict[str, Any]
    ) -> concurrent.futures.Future[str]:
        delivery = f"{self.producer}:{self._token}:{next(self._seq)}"
        ref = self.actor.deliver.remote(self.producer, delivery, name, data, record)
        future: concurrent.futures.Future[str] = ref.future()
        return future


def _default_producer(ray: Any) -> str:
    """A name no other producer has: the actor's (its name, else ``actor-{id}``) or the
    host's, this process's id (an actor restarted after a crash is a new process, with new
    episode numbers from 0), and ``-2``, ``-3``... for the second and next sessions of the
    process (an env runner with several envs, each with its own Recorder)."""
    context = ray.get_runtime_context()
    actor_id = context.get_actor_id()
    base = ""
    if actor_id:
        with contextlib.suppress(Exception):
            actor_name = context.get_actor_name()
            if actor_name and _PRODUCER.fullmatch(actor_name):
                base = str(actor_name)[:40]
        base = base or f"actor-{actor_id[:8]}"
    else:
        base = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "host"
    session = next(_sessions)
    return f"{base}-{os.getpid()}" + (f"-{session}" if session > 1 else "")


def start_sink(
    folder: str | os.PathLike[str],
    *,
    max_restarts: int = 0,
    name: str | None = None,
    timeout: float = 60.0,
    server: type[SinkServer] = SinkServer,
    server_args: tuple[Any, ...] = (),
    **actor_options: Any,
) -> VideoSink:
    """Start the sink actor on this node (where *folder* is), and wait until it runs.

    Args:
        folder: where videos go, on this node; created if missing.
        max_restarts: restarts of the sink actor if it dies; deliveries in flight are then
            retried (and recognised if they had been written).
        name: a Ray actor name (to find the sink with ``ray.get_actor``).
        timeout: seconds to wait for the actor to start and for :meth:`VideoSink.stats`; a
            producer's deliveries fail with TimeoutError when the sink has answered none of
            them for as long (see :class:`VideoSink`).
        server: the actor's class: :class:`SinkServer` or a subclass (to do more with each
            video, e.g. upload it), made as ``server(folder, *server_args)``.
        server_args: more arguments for *server*.
        actor_options: more ``ray.remote`` options (e.g. another scheduling_strategy).

    Raises:
        RuntimeError: another sink writes to *folder*.
    """
    ray = _ray()
    if not ray.is_initialized():
        ray.init()
    strategies = importlib.import_module("ray.util.scheduling_strategies")
    options: dict[str, Any] = {
        "num_cpus": 0,
        "max_restarts": max_restarts,
        "max_task_retries": -1 if max_restarts else 0,
        "scheduling_strategy": strategies.NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False
        ),
    }
    if name is not None:
        options["name"] = name
    options.update(actor_options)
    actor = ray.remote(server).options(**options).remote(os.fspath(folder), *server_args)
    try:
        path = ray.get(actor.ping.remote(), timeout=timeout)
    except ray.exceptions.RayActorError as e:
        cause = e.__cause__ or e
        raise RuntimeError(f"the sink for {folder} did not start: {cause}") from e
    return VideoSink(actor, path, timeout=timeout)


def _note_fork() -> None:
    global _forked_from_ray
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        _forked_from_ray = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_fork)
