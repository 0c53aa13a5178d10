"""One clip's file, on the worker that owns the clip: encoder, temporary file, final name.

The outcome (saved, dropped, failed) is counted in the queue and set on the clip's handle.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Container, Sequence
from dataclasses import replace
from pathlib import Path

from recorder._base.codec import Codec, EncoderFactory, VideoSpec
from recorder._base.info import Info, TextOf
from recorder._base.modes import share, umask
from recorder._base.results import ClipDroppedError, VideoHealth, VideoInfo
from recorder._encode.encoder import TMP_SUFFIX, fragment_path, lock_file
from recorder._encode.health import Judge
from recorder._encode.sidecars import (
    SIDECAR_SUFFIX,
    append_manifest,
    publishing,
    record_of,
    remove_beside,
    write_sidecar,
)
from recorder._encode.timeline import TIMELINE_SUFFIXES, write_timeline
from recorder._queue.clip import Clip, Item, State, Work
from recorder._queue.queue import ClipQueue
from recorder._service.keep import Keeper
from recorder._service.presets import Settings, fill_of, quality_of
from recorder._service.sink import Deliveries, Delivery, read_all

logger = logging.getLogger("recorder")


class ClipWriter:
    """Encodes the frames of the clips a worker owns, and saves, discards or fails them."""

    def __init__(
        self,
        queue: ClipQueue,
        codec: Codec,
        encoder_factory: EncoderFactory,
        on_saved: Callable[[VideoInfo], object] | None,
        sidecars: bool,
        deliveries: Deliveries | None = None,
        keeper: Keeper | None = None,
        judge: Judge | None = None,
        cut: Container[Clip] = (),
        overlay: TextOf | None = None,
    ) -> None:
        self.queue = queue  # given by the Recorder: where outcomes are counted
        self.codec = codec
        self.encoder_factory = encoder_factory
        self.on_saved = on_saved
        self.sidecars = sidecars
        self.deliveries = deliveries  # with a sink: finished files go there, not renamed
        self.keeper = keeper
        self.judge = judge  # the videos' health (None: not looked at)
        self.cut = cut  # the clips cut short: VideoInfo.partial
        self.overlay = overlay  # a frame's overlay text from its info
        # Read once: on Linux a read of /proc per video, on the workers' (the GIL's) time.
        self.umask = umask()
        #: whether the frames' info is kept for the videos' timelines (written as sidecars).
        self.timelines = sidecars and deliveries is None
        #: each video's preset: adaptive (from the queue's fill), or the one given
        self.quality = quality_of(codec, fill_of(queue), queue.max_bytes)

    def write(self, clip: Clip, frames: list[Item]) -> tuple[list[Item], int]:
        """Encode *frames* (a batch of one clip's), opening its encoder at the first.

        Returns the frames to release now, and how many of them were encoded: an encoder
        process may still read frames passed to it (they wait in ``clip.held``), and frames
        are left out when the clip is dropped meanwhile.
        """
        start = time.perf_counter()
        if clip.encoder is None:
            assert clip.frame_format is not None
            clip.tmp_fd, clip.tmp_path = locked_tmp(clip.path, self.umask)
            codec = self.quality.open(clip, len(frames))
            clip.encoder = self.encoder_factory(
                VideoSpec(
                    clip.tmp_path,
                    clip.fps,
                    codec,
                    clip.frame_format,
                    clip.tmp_fd,
                    health=self.judge is not None,
                )
            )
            clip.released = getattr(clip.encoder, "released", None)
        else:
            self.quality.tune(clip, len(frames))
        write = clip.encoder.write
        released = clip.released
        overlay = self.overlay
        n = 0
        try:
            for item in frames:
                if clip.state is State.DROPPED:  # a read without the lock: a hint, checked again
                    break
                if overlay is None:
                    write(item.buffer)
                else:
                    write(item.buffer, self._overlay_text(clip, item.info))
                n += 1
        finally:
            if released is not None:
                clip.held.extend(frames[:n])
        if self.timelines:
            clip.infos += [item.info for item in frames[:n]]  # frame i of the video: infos[i]
        if released is None:  # encoded on this thread: done with every frame
            done, written = frames, n
        else:
            held = clip.held
            freed = released() - clip.freed
            clip.freed += freed
            done = [held.popleft() for _ in range(freed)]
            written = freed
            done += frames[n:]
        clip.encode_seconds += time.perf_counter() - start
        return done, written

    def _overlay_text(self, clip: Clip, info: Info | None) -> str | None:
        """The overlay text of a frame of *clip*; None (no text) when the user's overlay
        raises: the video is saved all the same, and the first error per video reported (as
        an on_saved error is: flush() and close() raise it)."""
        assert self.overlay is not None
        try:
            return self.overlay(info)
        except BaseException as e:  # sys.exit() in the callable must not lose the video
            if not clip.overlay_failed:
                clip.overlay_failed = True
                e.add_note(
                    f"in overlay=, for a frame of {clip.path.name} (its info: {info!r}); that "
                    "frame, and any other it fails on, has no text: the video is saved"
                )
                # Logged as text and kept without its traceback: its frames (this call's and
                # its callers') hold the batch's views of the arena, which would outlive close().
                trace = "".join(traceback.format_exception(e)).rstrip()
                logger.error("the overlay failed for %s:\n%s", clip.path, trace)
                self.queue.report(e.with_traceback(None))
            return None

    @staticmethod
    def drain(clip: Clip) -> list[Item]:
        """Wait until *clip*'s encoder no longer reads any frame; return them (all encoded).

        Raises:
            Exception: the error an encoder process answered meanwhile (the frames stay held:
                :meth:`fail` takes them); a clip going idle must not keep it until its next
                frames, which may never come.
        """
        assert clip.encoder is not None
        drain = getattr(clip.encoder, "drain", None)
        if drain is not None:
            drain()
        error = getattr(clip.encoder, "error", None)
        if error is not None:
            raise error
        held = list(clip.held)
        clip.held.clear()
        clip.freed += len(held)
        return held

    def finish(self, clip: Clip) -> None:
        if clip.encoder is None:  # its frames never came (an interrupted append)
            self.queue.drop(clip, "no frames")
            self.discard(clip)
            return
        start = time.perf_counter()
        settings = self.quality.finish(clip)
        try:
            clip.encoder.close()
            seen = getattr(clip.encoder, "seen", None)
            health = None if seen is None or self.judge is None else self.judge.verdict(clip, seen)
            clip.encoder = None
            held = list(clip.held)
            clip.held.clear()
            self.queue.release(clip, held, len(held))  # counted in clip.written below
            assert clip.tmp_path is not None
            assert clip.tmp_fd is not None
            tmp, fd = clip.tmp_path, clip.tmp_fd
            if self.deliveries is not None:
                self._deliver(clip, start, settings, health)
                return
            size = os.fstat(fd).st_size

            def rename() -> None:
                if not os.path.samestat(os.lstat(tmp), os.fstat(fd)):
                    raise FileExistsError(
                        f"{tmp} was replaced by another file while the video was written"
                    )
                os.replace(tmp, clip.path)

            # The rename and the sidecars in one step for other writers of the folder.
            with publishing(clip.path.parent):
                if not self.queue.publish(clip, rename):
                    published = None
                else:
                    if self.keeper is not None:  # a deletion of the video it replaced is void
                        st = os.fstat(fd)
                        self.keeper.replacing(clip.path, (st.st_dev, st.st_ino, st.st_ctime_ns))
                    clip.tmp_path = None
                    clip.tmp_fd = None
                    os.close(fd)
                    clip.encode_seconds += time.perf_counter() - start
                    info = info_of(clip, settings, size, health, partial=clip in self.cut)
                    published = info, self._record(clip, info)
        except BaseException as e:
            self.fail(clip, e)
            return
        if published is None:
            self.discard(clip)
            return
        self._saved(clip, *published)

    def _record(self, clip: Clip, info: VideoInfo) -> list[BaseException]:
        """Write *clip*'s sidecars (saved as *info*) and its manifest line, or with sidecars
        off delete those of an earlier video of its name; the errors (the video is saved)."""
        written = False
        try:
            if not self.sidecars:  # an earlier video's would describe this one
                remove_beside(info.path, (SIDECAR_SUFFIX, *TIMELINE_SUFFIXES))
                return []
            record = record_of(info, self.codec)
            timeline = write_timeline(info.path, info.name, info.fps, clip.infos)
            if not timeline:
                remove_beside(info.path, TIMELINE_SUFFIXES)
            write_sidecar(info, record | timeline)
            written = True
            append_manifest(clip.path.parent, record | timeline)
        except BaseException as e:  # even SystemExit: the video is saved, count it once
            if self.sidecars and not written:  # no sidecar rather than an earlier video's
                with contextlib.suppress(OSError):
                    remove_beside(info.path, (SIDECAR_SUFFIX,))
            e.add_note(f"writing the sidecar or manifest of {clip.path}")
            return [e]
        return []

    def _saved(self, clip: Clip, info: VideoInfo, errors: list[BaseException]) -> None:
        """*clip* is saved as *info* (its metadata written with *errors*): count it, keep it or
        not, resolve its handle."""
        for error in errors:  # logged here, after the folder's lock
            logger.error("could not write the metadata of %s", clip.path, exc_info=error)
        self.queue.saved(clip, info.size_bytes)
        if self.judge is not None:
            self.judge.saved(info)
        clip.infos = []
        kept = True
        if self.keeper is not None:
            try:
                kept = self.keeper.saved(info, clip.source)
            except OSError as e:
                e.add_note(f"deleting {clip.path} (keep)")
                errors.append(e)
        if self.on_saved is not None and kept:
            try:
                self.on_saved(info)
            except BaseException as e:  # sys.exit() in a callback must not kill the worker
                e.add_note(f"in on_saved for {info.path}")
                logger.error("on_saved failed for %s", info.path, exc_info=True)
                errors.append(e)
        clip.handle._resolve(info)
        for error in errors:
            self.queue.report(error)
        self.queue.retire(clip)

    def _deliver(
        self, clip: Clip, start: float, settings: Settings, health: VideoHealth | None
    ) -> None:
        """Hand *clip*'s finished file to the sink; its handle resolves on the sink's answer.

        The bytes count against the budget until then: a slow sink slows admission, never
        the caller (with on_full="drop", clips are dropped whole, as when encoding lags).
        """
        assert self.deliveries is not None
        assert clip.tmp_fd is not None
        data = read_all(clip.tmp_fd)
        if not self.queue.publish(clip, lambda: None):
            self.discard(clip)
            return
        self._cleanup(clip)  # the temporary file: its bytes are in *data*
        clip.encode_seconds += time.perf_counter() - start
        info = info_of(clip, settings, len(data), health, partial=clip in self.cut)
        self.queue.charge(len(data))
        delivery = Delivery(clip, info, len(data), self.delivered)
        try:
            name = clip.name + clip.path.suffix  # the sink prefixes the producer itself
            self.deliveries.send(delivery, name, data, record_of(info, self.codec))
        except BaseException as e:
            self.delivered(delivery, None, e)

    def delivered(self, delivery: Delivery, path: str | None, error: BaseException | None) -> None:
        """The sink's answer for *delivery* (on the delivery thread)."""
        clip: Clip = delivery.clip
        self.queue.uncharge(delivery.size)
        if error is not None or path is None:
            error = error or RuntimeError("the sink gave no path")
            error.add_note(f"delivering {clip.path.name} to the recorder's sink")
            self.fail(clip, error)
            return
        now = time.time()
        info = replace(delivery.info, path=Path(path), created=now, wall_seconds=now - clip.started)
        self._saved(clip, info, [])  # the sink writes the sidecars, with its paths

    def discard(self, clip: Clip) -> None:
        """Delete the file of the dropped *clip* and resolve its handle."""
        encoded = self._cleanup(clip)
        self.queue.discarded(clip, encoded)
        clip.handle._resolve(ClipDroppedError(clip.name, clip.drop_reason))
        self.queue.retire(clip)

    def fail(self, clip: Clip, error: BaseException, held: Sequence[Work] = ()) -> None:
        """Fail *clip*; *held* is the batch the worker had taken (some of it maybe passed
        to the encoder already, then in ``clip.held``)."""
        passed = {id(item) for item in clip.held}
        held = [work for work in held if id(work) not in passed]
        encoded = self._cleanup(clip)
        error.add_note(f"while recording {clip.path}")
        # The error is kept (stats(), flush()); its frames' locals must not keep the failed
        # video's encoder alive with it.
        traceback.clear_frames(error.__traceback__)
        if self.queue.failed(clip, error, held=held, encoded=encoded):
            logger.error("failed to record %s", clip.path, exc_info=error)
            clip.handle._resolve(error)
        else:  # dropped meanwhile: that is its outcome
            clip.handle._resolve(ClipDroppedError(clip.name, clip.drop_reason))
        self.queue.retire(clip)

    def _cleanup(self, clip: Clip) -> list[Item]:
        """Abort *clip*'s encoder and file; returns the frames the encoder had (now free)."""
        self.quality.forget(clip)
        if clip.encoder is not None:
            with contextlib.suppress(Exception):
                clip.encoder.abort()  # returns once it no longer reads any frame
            clip.encoder = None
        encoded = list(clip.held)
        clip.held.clear()
        clip.infos = []
        if clip.tmp_path is not None:
            # The fragment file an encoder process that died could not delete (its name is
            # ours alone while our temporary file exists).
            with contextlib.suppress(OSError):
                os.unlink(fragment_path(clip.tmp_path, self.codec.extension))
            with contextlib.suppress(OSError):
                os.unlink(clip.tmp_path)
            clip.tmp_path = None
        if clip.tmp_fd is not None:
            with contextlib.suppress(OSError):
                os.close(clip.tmp_fd)
            clip.tmp_fd = None
        return encoded


def info_of(
    clip: Clip,
    settings: Settings,
    size: int,
    health: VideoHealth | None = None,
    *,
    partial: bool = False,
) -> VideoInfo:
    """The :class:`VideoInfo` of *clip*, complete now in a file of *size* bytes, encoded at
    *settings*."""
    fmt = clip.frame_format
    assert fmt is not None
    now = time.time()
    return VideoInfo(
        path=clip.path,
        name=clip.name,
        kind=clip.kind,
        index=clip.index,
        frames=clip.written,
        fps=clip.fps,
        width=fmt.width,
        height=fmt.height,
        encoded_width=fmt.shape[1],
        encoded_height=fmt.shape[0],
        codec=settings.codec.name,
        size_bytes=size,
        encode_seconds=clip.encode_seconds,
        episode_index=clip.episode_index,
        first_step=clip.first_step,
        metadata=clip.metadata or {},
        created=now,
        wall_seconds=now - clip.started,
        health=health,
        partial=partial,
        preset=settings.preset,
        preset_changes=settings.changes,
    )


_TMP_ATTEMPTS = 5  # recover leaves a file just created alone: a retry is rare already


def locked_tmp(path: Path, mask: int | None = None) -> tuple[int, str]:
    """Create the temporary file of the video *path*, under ``flock`` (its writer is alive).

    Beside the final file (os.replace cannot cross file systems). mkstemp creates it
    exclusively (O_EXCL): nothing already there is followed. ``recorder recover`` may take
    the lock of a file just created and delete it as a dead writer's: then a new one. Its mode
    is the one ``open()`` gives (mkstemp's is private) under the umask *mask* (None: now),
    kept by the rename.
    """
    for attempt in range(_TMP_ATTEMPTS):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=TMP_SUFFIX, dir=path.parent)
        try:
            share(fd, mask)
            lock_file(fd)
            os.lstat(tmp)
        except FileNotFoundError as e:
            os.close(fd)
            if attempt < _TMP_ATTEMPTS - 1:
                continue
            e.add_note(f"{_TMP_ATTEMPTS} temporary files for {path} deleted as soon as made")
            raise
        except BaseException:
            # Not locked (ENOLCK on some network file systems, Ctrl-C): nobody else would
            # delete it (if the name is still ours).
            with contextlib.suppress(OSError):
                if os.path.samestat(os.lstat(tmp), os.fstat(fd)):
                    os.unlink(tmp)
            os.close(fd)
            raise
        # Replaced by another file meanwhile: the rename's samestat check reports it.
        return fd, tmp
    raise AssertionError("unreachable")
