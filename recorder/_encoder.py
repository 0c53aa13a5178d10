"""Video encoders: the PyAV one, and the interface a test can swap in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import av
from av.video.reformatter import Interpolation, VideoReformatter

from recorder._frames import FrameFormat, Image


@dataclass(frozen=True, slots=True)
class Codec:
    """How videos are encoded.

    Args:
        name: ``"h264"`` (mp4, default), ``"h265"`` (mp4), ``"vp9"`` (webm) or ``"gif"``.
        crf: constant rate factor, lower is better quality (h264 default 23, h265 28, vp9 32);
            ignored for gif.
        preset: x264/x265 speed preset (``"ultrafast"`` ... ``"veryslow"``), default
            ``"ultrafast"``: the encoder shares the machine with the training loop. At crf 23
            it encodes faster than ``"veryfast"`` and than gymnasium's writer (preset
            ``"medium"``) at a PSNR at least theirs minus 1 dB (higher on CartPole frames), for
            files several times larger; for vp9 the ``cpu-used`` level (-8..8, default 8).
        threads: codec threads per video; 1 keeps one video on one core.
        options: extra codec options passed to FFmpeg as they are.
        interpolation: swscale's filter for the RGB to YUV 4:2:0 conversion (the frame is
            never resized, only its chroma subsampled): ``"area"`` (default), ``"bilinear"``
            and ``"bicubic"`` average each 2x2 block's colour, at the same cost; ``"point"``
            takes it from one pixel: a faster conversion (which at 600x400 costs about as much
            as x264 ultrafast itself), but on images with colour noise a PSNR about 1 dB
            below gymnasium's writer.

    Figures (PSNR, kB per second of video, encode frames/s, against gymnasium's writer):
    ``docs/benchmarks.md``, from ``scripts/bench_quality.py`` and ``scripts/bench_encode.py``.
    """

    name: str = "h264"
    crf: int | None = None
    preset: str | None = None
    threads: int = 1
    options: dict[str, str] = field(default_factory=dict)
    interpolation: str = "area"

    def __post_init__(self) -> None:
        if self.name not in _CODECS:
            raise ValueError(f"codec must be one of {sorted(_CODECS)}, got {self.name!r}")
        if self.crf is not None and not (0 <= self.crf <= 63):
            raise ValueError(f"crf must lie in 0..63, got {self.crf}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: FFmpeg decides), got {self.threads}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {sorted(_INTERPOLATIONS)}, "
                f"got {self.interpolation!r}"
            )

    @property
    def extension(self) -> str:
        """File extension of the videos, with the dot."""
        return _CODECS[self.name][1]

    def ffmpeg_settings(self) -> tuple[str, str, str, dict[str, str]]:
        """(FFmpeg encoder, container format, pixel format, encoder options)."""
        encoder, _ext, container, pix_fmt, crf, preset = _CODECS[self.name]
        opts: dict[str, str] = {}
        if self.name in ("h264", "h265"):
            opts = {"crf": str(self.crf if self.crf is not None else crf)}
            opts["preset"] = self.preset or preset
            if self.name == "h265":
                opts["x265-params"] = "log-level=error"
        elif self.name == "vp9":
            opts = {
                "crf": str(self.crf if self.crf is not None else crf),
                "b": "0",
                "deadline": "realtime",
                "cpu-used": self.preset or preset,
                "row-mt": "0" if self.threads == 1 else "1",
            }
        opts.update(self.options)
        return encoder, container, pix_fmt, opts


_INTERPOLATIONS = {
    "point": Interpolation.POINT,
    "bilinear": Interpolation.BILINEAR,
    "bicubic": Interpolation.BICUBIC,
    "area": Interpolation.AREA,
}

# name: (ffmpeg encoder, extension, container, pixel format, default crf, default preset)
_CODECS: dict[str, tuple[str, str, str, str, int, str]] = {
    "h264": ("libx264", ".mp4", "mp4", "yuv420p", 23, "ultrafast"),
    "h265": ("libx265", ".mp4", "mp4", "yuv420p", 28, "ultrafast"),
    "vp9": ("libvpx-vp9", ".webm", "webm", "yuv420p", 32, "8"),
    "gif": ("gif", ".gif", "gif", "rgb8", 0, ""),
}


@dataclass(frozen=True, slots=True)
class VideoSpec:
    """What an encoder is asked to write: one video, at a temporary path."""

    path: str
    fps: float
    codec: Codec
    frame_format: FrameFormat
    #: the recorder's open descriptor of the file at *path*: write through it (see
    #: :func:`writable_path`), so that a name swapped for a symlink meanwhile is not followed.
    fd: int | None = None


def writable_path(spec: VideoSpec) -> str:
    """A name that opens *spec*'s own file: ``/proc/self/fd/N`` where Linux has it."""
    if spec.fd is not None and os.path.isdir("/proc/self/fd"):
        return f"/proc/self/fd/{spec.fd}"
    return spec.path


class Encoder(Protocol):
    """One video being written. Calls come from one worker thread at a time, in frame order."""

    def write(self, image: Image) -> None:
        """Encode one frame (a buffer of ``spec.frame_format.shape``; do not keep it)."""

    def close(self) -> None:
        """Finish the file: flush the encoder and write the container trailer."""

    def abort(self) -> None:
        """Release everything without finishing the file (it is deleted afterwards)."""


class EncoderFactory(Protocol):
    """Makes the encoder of one video; an injection point for tests."""

    def __call__(self, spec: VideoSpec) -> Encoder: ...


class PyAVEncoder:
    """Encodes with PyAV: zero-copy frame wrap, one persistent reformatter, libx264 by default."""

    def __init__(self, spec: VideoSpec) -> None:
        encoder, container_format, pix_fmt, options = spec.codec.ffmpeg_settings()
        fmt = spec.frame_format
        height, width = fmt.shape[0], fmt.shape[1]
        container_options = {"movflags": "+faststart"} if container_format == "mp4" else {}
        # faststart reopens the file by name to move the moov atom: that name is the fd's too.
        self._container: Any = av.open(
            writable_path(spec), "w", format=container_format, options=container_options
        )
        try:
            rate = Fraction(spec.fps).limit_denominator(1001)
            stream: Any = self._container.add_stream(encoder, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            # Before the codec opens: PyAV's default is sliced threading with an auto count.
            stream.codec_context.thread_count = spec.codec.threads
            stream.codec_context.time_base = 1 / rate
            stream.options = options
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._reformatter = VideoReformatter()
        self._src_format = fmt.pix_fmt
        self._pix_fmt = pix_fmt
        self._width, self._height = width, height
        # swscale's default (0) is one thread per CPU: keep the conversion on the codec's.
        self._threads = spec.codec.threads
        self._interpolation = _INTERPOLATIONS[spec.codec.interpolation]
        self._pts = 0

    def write(self, image: Image) -> None:
        """Encode one frame."""
        frame = av.VideoFrame.from_numpy_buffer(image, format=self._src_format)
        out = self._reformatter.reformat(
            frame,
            format=self._pix_fmt,
            width=self._width,
            height=self._height,
            threads=self._threads,
            interpolation=self._interpolation,
        )
        out.pts = self._pts
        self._pts += 1
        self._container.mux(self._stream.encode(out))

    def close(self) -> None:
        """Flush the encoder and write the trailer (moov atom)."""
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

    def abort(self) -> None:
        """Close the container without flushing the encoder."""
        self._container.close()
