"""Video encoders: the PyAV one, and the interface a test can swap in."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from recorder._base.codec import Codec, VideoSpec
from recorder._base.frames import Image
from recorder._base.validate import frame_rate
from recorder._encode.health import Probe, Seen
from recorder._encode.mp4 import scan_fragments
from recorder._encode.overlay import PLANES_FROM, TextBand

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

#: the recorder's temporary file of a video: ``.{stem}.{random}.rec-tmp``.
TMP_SUFFIX = ".rec-tmp"
#: the fragmented mp4 an encoder writes first: ``.{stem}.{random}.mp4.rec-frag``.
FRAGMENT_SUFFIX = ".rec-frag"
#: seconds of video between keyframes, so between fragments: what a crash can lose at most.
KEYFRAME_SECONDS = 2.0
#: the muxer options of a fragment file: a playable prefix after every fragment (one per
#: keyframe), written out at once (flush_packets) rather than kept in PyAV's 32 KiB buffer.
FRAGMENT_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "flush_packets": "1",
}
#: (movie_timescale: the edit list that starts a B-frame video at 0 is in the movie's time
#: scale, 1000 by default: a 1.5 ms shift cut to 1 ms lost a frame at 2,000 fps.)
FASTSTART_OPTIONS = {"movflags": "+faststart", "movie_timescale": "1000000"}


def quiet_svt() -> None:
    """Keep SVT-AV1's banner (``Svt[info]: ...`` on stderr, at each video's first frame) and
    warnings off the terminal; its errors still show. The library reads ``SVT_LOG`` once per
    process, at its first encoder; one set by the user is kept."""
    os.environ.setdefault("SVT_LOG", "1")  # 1: errors (-1 all .. 4 debug)


def writable_path(spec: VideoSpec) -> str:
    """A name that opens *spec*'s own file: ``/proc/self/fd/N`` where Linux has it."""
    if spec.fd is not None and os.path.isdir("/proc/self/fd"):
        return f"/proc/self/fd/{spec.fd}"
    return spec.path


def keyframe_interval(fps: float) -> int:
    """Frames between the keyframes (so the fragments) of an mp4 at *fps*: x264's ``keyint``."""
    return max(1, round(fps * KEYFRAME_SECONDS))


def _fd_path(fd: int, path: str) -> str:
    """A name that opens the file of *fd*: ``/proc/self/fd/N`` where Linux has it."""
    return f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else path


def fragment_path(path: str, extension: str) -> str:
    """The fragment file of the video whose temporary file is *path*.

    ``.{stem}.{random}.rec-tmp`` gives ``.{stem}.{random}{extension}.rec-frag``: beside it,
    hidden, unique while the temporary file exists, and mapping back to ``{stem}{extension}``.
    """
    folder, name = os.path.split(path)
    name = name.removesuffix(TMP_SUFFIX)
    if not name.startswith("."):
        name = "." + name
    return os.path.join(folder, f"{name}{extension}{FRAGMENT_SUFFIX}")


def fragmented(codec: Codec) -> bool:
    """Whether videos of *codec* are written as fragmented mp4 first (h264, h265)."""
    return codec.ffmpeg_settings()[1] == "mp4"


def lock_file(fd: int, *, block: bool = True) -> bool:
    """Take ``flock(LOCK_EX)`` on *fd*: the mark of a live writer (it dies with the process).

    Returns False when *block* is False and another open file holds the lock; True where
    there is no flock (not POSIX).
    """
    if fcntl is None:  # pragma: no cover - not on Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


#: frames a packet's decoding may come before its presentation (x265 reorders at most 16).
MAX_REORDER = 64


# Ordered (Bayer 4x4) dithering into rgb8, a gif's palette: 3 bits of red and green, 2 of
# blue. Each pixel is rounded up or down by its place's threshold, never by its neighbours'
# errors: swscale's error diffusion turned black lines on white yellow, flat colours to noise.
_BAYER = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])


def _dither_table(bits: int, shift: int, step: int) -> Image:
    """Per Bayer cell (16) and 8-bit value, its rgb8 bits, between palette levels *step*
    apart: a level's own value stays exact, others average right (to the top level)."""
    top = (1 << bits) - 1
    threshold = (np.arange(16)[:, None] + 0.5) / 16
    level = np.floor(np.arange(256)[None, :] / step + threshold)
    return (np.minimum(level, top).astype(np.uint8) << shift).astype(np.uint8)


# FFmpeg's rgb8 palette: red and green 0, 36 ... 252; blue 0, 85, 170, 255.
_RED, _GREEN, _BLUE = _dither_table(3, 5, 36), _dither_table(3, 2, 36), _dither_table(2, 0, 85)
_cells: dict[tuple[int, int], Image] = {}


def _bayer_cells(height: int, width: int) -> Image:
    """Each pixel's Bayer cell (0..15), for frames of this size (cached)."""
    cells = _cells.get((height, width))
    if cells is None:
        tiled = np.tile(_BAYER, (height // 4 + 1, width // 4 + 1))
        cells = _cells[height, width] = np.ascontiguousarray(tiled[:height, :width], np.intp)
    return cells


def _dithered_rgb8(convert: Callable[[Any], Any] | None, frame: Any) -> Any:
    """*frame* in rgb8, dithered by :data:`_BAYER` (after *convert* to rgb24, if given)."""
    rgb = (frame if convert is None else convert(frame)).to_ndarray()
    cells = _bayer_cells(rgb.shape[0], rgb.shape[1])
    out = _RED[cells, rgb[..., 0]]
    out |= _GREEN[cells, rgb[..., 1]]
    out |= _BLUE[cells, rgb[..., 2]]
    return av.VideoFrame.from_ndarray(out, format="rgb8")


def _tag_colors(context: Any) -> None:
    """Say how the YUV frames were made from RGB: swscale's default, BT.601 coefficients in
    limited range, from sRGB (BT.709) primaries. Untagged, players guess from the size:
    Chromium takes 720-line and larger videos for BT.709 (greens 39 units off)."""
    if context.pix_fmt.startswith("yuv"):
        context.colorspace = _SMPTE170M
        context.color_range = _MPEG_RANGE
        context.color_primaries = context.color_trc = _BT709


def _sane_dts(packet: Any) -> None:
    """Give *packet* ``dts = pts`` when its dts cannot be right (after pts, or too far before).

    libx265, flushed with a clip of 1 or 2 frames, leaves their dts uninitialised (measured:
    about half such clips, any value); the mp4 muxer then refuses them and the video fails.
    So short a clip is not reordered: its packets decode in presentation order.
    """
    pts, dts = packet.pts, packet.dts
    if pts is not None and dts is not None and not pts - MAX_REORDER <= dts <= pts:
        packet.dts = pts


class Readable(Protocol):
    """A binary file object PyAV can read from and seek in."""

    def read(self, n: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


def remux(
    source: str | Readable,
    target: str,
    options: dict[str, str] | None = None,
    format: str = "mp4",
) -> int:
    """Copy the video packets of *source* into a new file *target* (no re-encoding).

    The timestamps are shifted so that the first frame shows at 0: a fragment file has no
    edit list, so frames an encoder reordered (B-frames) start 1-2 frames late there.

    Args:
        source: a file name, or a binary file object (read from its current position).
        target: the file to write (created or truncated).
        options: the muxer options of *target*; ``+faststart`` by default.
        format: the container format of *target*.

    Returns:
        The number of packets copied: the frames of the video.

    Raises:
        av.FFmpegError, OSError: *source* cannot be read or *target* written.
        ValueError: *source* has no video stream.
    """
    start = None if isinstance(source, str) else source.tell()
    copied, shifted = _copy_packets(source, target, options, format, shift=True)
    if shifted and not _dts_increase(target):
        # The mp4 muxer mangles a shifted stream at some time bases (measured: 1/10000 with
        # B-frames, every dts 0): copied as it was then, late but whole.
        if start is not None:
            assert not isinstance(source, str)
            source.seek(start)
        copied, _ = _copy_packets(source, target, options, format, shift=False)
    return copied


def _copy_packets(
    source: str | Readable,
    target: str,
    options: dict[str, str] | None,
    format: str,
    *,
    shift: bool,
) -> tuple[int, bool]:
    """:func:`remux`'s copy, its timestamps shifted (*shift*) or not; the packets copied, and
    whether they were moved."""
    with av.open(source, "r") as src:
        if not src.streams.video:
            raise ValueError("no video stream")
        in_stream = src.streams.video[0]
        out_options = FASTSTART_OPTIONS if options is None else options
        with av.open(target, "w", format=format, options=out_options) as dst:
            # opaque: the template's own codec (a decoder, libdav1d for av1: no encoder named so)
            out_stream = dst.add_stream_from_template(in_stream, opaque=True)
            copied = 0
            by: int | None = None
            for packet in src.demux(in_stream):
                if packet.dts is None:  # the demuxer's end-of-stream packet
                    continue
                if by is None:
                    by = (packet.pts or 0) if shift else 0
                if by:
                    assert packet.pts is not None
                    packet.pts -= by
                    packet.dts -= by
                packet.stream = out_stream
                dst.mux(packet)
                copied += 1
    return copied, bool(by)


def _dts_increase(path: str) -> bool:
    """Whether the decoding timestamps of *path*'s video rise packet by packet."""
    with av.open(path, "r") as container:
        last = None
        for packet in container.demux(container.streams.video[0]):
            if packet.dts is None:
                continue
            if last is not None and packet.dts <= last:
                return False
            last = packet.dts
    return True


# FFmpeg's AVColorSpace, AVColorRange and AVColorPrimaries/AVColorTransferCharacteristic.
_SMPTE170M, _MPEG_RANGE, _BT709 = 6, 1, 1
_INTERPOLATIONS = {
    "point": Interpolation.POINT,
    "bilinear": Interpolation.BILINEAR,
    "bicubic": Interpolation.BICUBIC,
    "area": Interpolation.AREA,
}


class PyAVEncoder:
    """Encodes with PyAV: zero-copy frame wrap, one persistent reformatter, libx264 by default.

    An mp4 (h264, h265) is written as fragmented mp4 first, into a fragment file of its own
    beside ``spec.path`` (see :func:`fragment_path`; created exclusively, mode 0600, under
    ``flock`` while written), with a keyframe, so a fragment, every :data:`KEYFRAME_SECONDS`:
    after a crash, every fragment written plays (``recorder recover``). :meth:`close` copies
    the packets into the file of *spec* as a plain ``+faststart`` mp4 and deletes the fragment
    file. webm and gif are written into the file of *spec* directly.

    :meth:`retune` changes the settings at the next keyframe (adaptive quality).
    """

    def __init__(self, spec: VideoSpec) -> None:
        encoder, container_format, pix_fmt, options = spec.codec.ffmpeg_settings()
        if encoder == "libsvtav1":
            quiet_svt()
        fmt = spec.frame_format
        height, width = fmt.shape[0], fmt.shape[1]
        self._target = writable_path(spec)
        # PyAV's errors name the file as it was opened: /proc/self/fd/N says which file?
        self._names = {self._target: f"the temporary file {spec.path}"}
        self._fragment: str | None = None
        self._fragment_fd: int | None = None
        if container_format == "mp4":
            self._fragment = fragment_path(spec.path, spec.codec.extension)
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            self._fragment_fd = os.open(self._fragment, flags | os.O_CLOEXEC, 0o600)
            fragment = _fd_path(self._fragment_fd, self._fragment)
            self._names[fragment] = f"the fragment file {self._fragment}"
            try:
                lock_file(self._fragment_fd)
                self._container: Any = av.open(
                    fragment, "w", format=container_format, options=FRAGMENT_OPTIONS
                )
            except BaseException as e:
                self._name_file(e)
                self._drop_fragment()
                raise
        else:
            try:
                self._container = av.open(self._target, "w", format=container_format)
            except BaseException as e:
                self._name_file(e)
                raise
        try:
            rate = frame_rate(spec.fps)
            stream: Any = self._container.add_stream(encoder, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            _tag_colors(stream.codec_context)
            # Before the codec opens: PyAV's default is sliced threading with an auto count.
            stream.codec_context.thread_count = spec.codec.threads
            stream.codec_context.time_base = 1 / rate
            if self._fragment is not None:
                stream.codec_context.gop_size = keyframe_interval(spec.fps)
            stream.options = options
        except BaseException:
            self._container.close()
            self._drop_fragment()
            raise
        self._stream = stream
        self._encode: Callable[[Any], list[Any]] = stream.encode
        self._codec = spec.codec  # the settings encoding now
        self._next: Codec | None = None  # ... and from the next keyframe (retune)
        self._at_once = False  # ... or from the next frame
        self._keyint = stream.codec_context.gop_size
        self._start = 0  # the frame the current encoder began at: its keyframes follow
        self._src_format = fmt.pix_fmt
        self._pix_fmt, self._size = pix_fmt, (width, height)
        self._reformat = self._reformatter(spec.codec)
        self._pts = 0
        self._probe = Probe(fmt.shape) if spec.health else None
        self._band: TextBand | None = None  # the overlay's, made at its first text
        # The text goes onto the converted frame (no copy) for a large frame to yuv420p.
        self._on_planes = pix_fmt == "yuv420p" and fmt.nbytes >= PLANES_FROM

    def write(self, image: Image, text: str | None = None) -> None:
        """Encode one frame, with *text* drawn onto it (an overlay: onto the converted frame, or
        a copy of a small one; never onto *image*)."""
        if self._next is not None and (
            self._at_once or (self._pts - self._start) % self._keyint == 0
        ):
            self._switch()
        if self._probe is not None:
            self._probe.see(image)  # the frame as rendered: an overlay's text is not the scene
        planes: TextBand | None = None  # the band to draw onto the converted frame
        if text:
            band = self._band
            if band is None:
                band = self._band = TextBand(image.shape)
            if self._on_planes:
                planes = band
            else:
                # The copy is reused: the reformatter below makes a frame of its own from it.
                image = band.draw(image, text)
        frame = av.VideoFrame.from_numpy_buffer(image, format=self._src_format)
        out = self._reformat(frame)
        if planes is not None and text:
            # rgb24 or gray converted: a buffer of the reformatter's, never the queue's frame
            planes.draw_planes(out, text)
        out.pts = self._pts
        self._pts += 1
        try:
            self._container.mux(self._encode(out))
        except OSError as e:  # a full disk, say
            self._name_file(e)
            raise

    @property
    def seen(self) -> Seen | None:
        """What the frames written showed (``spec.health``; read after :meth:`close`)."""
        return None if self._probe is None else self._probe.seen()

    def close(self) -> None:
        """Flush the encoder and write the trailer; an mp4 is then remuxed with +faststart."""
        try:
            try:
                self._container.mux(self._flushed())
            finally:
                self._container.close()
            if self._fragment_fd is not None and self._fragment is not None:
                self._check_fragments(self._fragment_fd, self._fragment)
                # faststart reopens the target by name to move the moov atom: the fd's name.
                remux(_fd_path(self._fragment_fd, self._fragment), self._target)
        except OSError as e:
            self._name_file(e)
            raise
        finally:
            self._drop_fragment()

    def _flushed(self) -> list[Any]:
        """The packets the encoder still holds (it is drained), their dts made sane."""
        packets = self._encode(None)
        for packet in packets:
            _sane_dts(packet)
        return packets

    def retune(self, codec: Codec, at_once: bool = False) -> None:
        """Encode at *codec*'s settings from the current encoder's next keyframe on (maybe the
        next frame), or with *at_once* from the next frame (one keyframe more); the frames
        before keep theirs. A later call replaces one not yet reached.

        There, this encoder is flushed and a new one opened into the same stream (its first
        frame a keyframe, its keyframes every interval from there), so *codec* must write the
        same stream headers (the rungs of a :class:`~recorder._base.codec.Ladder`).
        """
        self._next = None if codec == self._codec else codec
        self._at_once = at_once

    def _reformatter(self, codec: Codec) -> Callable[[Any], Any]:
        """The conversion of this stream's frames at *codec*'s settings: one persistent
        reformatter, its arguments bound once (see docs/design.md)."""
        rgb8 = self._pix_fmt == "rgb8"
        convert = partial(
            VideoReformatter().reformat,
            format="rgb24" if rgb8 else self._pix_fmt,
            width=self._size[0],
            height=self._size[1],
            # swscale's default (0) is one thread per CPU: keep the conversion on the codec's.
            threads=codec.threads,
            interpolation=_INTERPOLATIONS[codec.interpolation],
        )
        if not rgb8:
            return convert
        return partial(_dithered_rgb8, None if self._src_format == "rgb24" else convert)

    def _switch(self) -> None:
        codec, self._next = self._next, None
        assert codec is not None
        if codec.interpolation != self._codec.interpolation:  # adaptive quality's fastest rung
            self._reformat = self._reformatter(codec)
        encoder, _, _, options = codec.ffmpeg_settings()
        try:
            self._container.mux(self._flushed())  # every frame so far, in the old settings
        except OSError as e:
            self._name_file(e)
            raise
        old = self._stream.codec_context
        context: Any = av.CodecContext.create(encoder, "w")
        context.width, context.height, context.pix_fmt = old.width, old.height, old.pix_fmt
        _tag_colors(context)
        context.time_base, context.framerate = old.time_base, old.framerate
        context.gop_size, context.thread_count, context.flags = (
            old.gop_size,
            old.thread_count,
            old.flags,
        )
        context.options = options
        stream = self._stream

        def encode(frame: Any) -> list[Any]:
            packets: list[Any] = context.encode(frame)
            for packet in packets:
                packet.stream = stream
            return packets

        self._encode, self._codec, self._start = encode, codec, self._pts

    def _name_file(self, error: BaseException) -> None:
        """Add a note to *error* saying which file the ``/proc/self/fd/N`` it names is."""
        filename = getattr(error, "filename", None)
        if isinstance(filename, str) and filename.startswith("/proc/") and filename in self._names:
            error.add_note(f"{filename} is {self._names[filename]}")

    def _check_fragments(self, fd: int, path: str) -> None:
        # FFmpeg's fragmenting muxer drops write errors (a full disk, a file-size limit): the
        # file must hold every frame in whole boxes, or the video is not saved.
        size = os.fstat(fd).st_size
        end, frames = scan_fragments(fd)
        if end == size and frames == self._pts:
            return
        message = (
            f"{path} was cut short: {frames} of {self._pts} frames in whole fragments, "
            f"{size} bytes on disk"
        )
        try:  # the reason the write failed, as the system gives it now
            os.pwrite(fd, b"\0", size)
        except OSError as e:
            raise OSError(e.errno, f"{message}: {e.strerror}") from e
        os.ftruncate(fd, size)
        raise OSError(errno.EIO, f"{message}: a write was lost")

    def abort(self) -> None:
        """Close the container without flushing the encoder; delete the fragment file."""
        try:
            self._container.close()
        finally:
            self._drop_fragment()

    def salvage(self) -> None:
        """Finish the fragment file and leave it for ``recorder recover`` (the recorder died).

        Flushes the encoder and closes the fragmented container, so that every frame given
        so far is in the file; releases its lock. Without a fragment file, as :meth:`abort`.
        """
        if self._fragment_fd is None:
            self.abort()
            return
        try:
            try:
                self._container.mux(self._encode(None))
            finally:
                self._container.close()
        except OSError as e:
            self._name_file(e)
            raise
        finally:
            fd, self._fragment_fd, self._fragment = self._fragment_fd, None, None
            os.close(fd)

    def _drop_fragment(self) -> None:
        """Delete the fragment file (if its name is still ours) and close it."""
        fd, path = self._fragment_fd, self._fragment
        self._fragment_fd = self._fragment = None
        if fd is None or path is None:
            return
        try:
            with contextlib.suppress(OSError):
                if os.path.samestat(os.lstat(path), os.fstat(fd)):
                    os.unlink(path)
        finally:
            os.close(fd)
