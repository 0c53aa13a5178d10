"""How videos are encoded (:class:`Codec`), what an encoder is asked to write
(:class:`VideoSpec`), and the interface every encoder has (:class:`Encoder`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from recorder._base.frames import FrameFormat, Image
from recorder._base.validate import describe, is_int

#: swscale's filters for the RGB to YUV 4:2:0 conversion, by name.
INTERPOLATIONS = ("point", "bilinear", "bicubic", "area")


@dataclass(frozen=True, slots=True)
class Codec:
    """How videos are encoded.

    Args:
        name: ``"h264"`` (mp4, default), ``"h265"`` (mp4), ``"vp9"`` (webm) or ``"gif"``.
            An mp4 survives a crash up to its last 2 s fragment (see :class:`PyAVEncoder` and
            :func:`recorder.recover`); webm and gif are written as they are and do not.
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
        check_codec_settings(self.name, self.crf, self.preset)
        if not is_int(self.threads):
            raise TypeError(f"threads must be an int, got {describe(self.threads)}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: FFmpeg decides), got {self.threads}")
        if not isinstance(self.options, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.options.items()
        ):
            raise TypeError(f"options must be a dict of str to str, got {describe(self.options)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {self.interpolation!r}"
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


# x265 takes the same names.
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


def check_codec_settings(codec: object, crf: object, preset: object, flag: str = "") -> None:
    """Raise for a codec, crf or preset that the encoder would refuse, or ignore (gif).

    FFmpeg would only say so when the first video opens, once per video, in the background.
    *flag* prefixes the names in the message (the command line's ``--``).
    """
    if not isinstance(codec, str) or codec not in _CODECS:
        raise ValueError(f"{flag}codec must be one of {sorted(_CODECS)}, got {codec!r}")
    if codec == "gif":
        for name, value in (("crf", crf), ("preset", preset)):
            if value is not None:
                raise ValueError(
                    f"{flag}{name} does not apply to {flag}codec gif (it has no such setting)"
                )
        return
    if crf is not None:
        if isinstance(crf, bool) or not isinstance(crf, int | np.integer):
            raise TypeError(f"{flag}crf must be an int, got {describe(crf)}")
        top = 63 if codec == "vp9" else 51  # x265 refuses more than 51; x264 clamps it to 51
        if not 0 <= crf <= top:
            raise ValueError(f"{flag}crf for {flag}codec {codec} must lie in 0..{top}, got {crf}")
    if preset is None:
        return
    if not isinstance(preset, str):
        raise TypeError(f"{flag}preset must be a str, got {describe(preset)}")
    if codec == "vp9":
        try:
            ok = -8 <= int(preset) <= 8  # libvpx-vp9 refuses the rest of FFmpeg's -16..16
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{flag}preset for {flag}codec vp9 is its cpu-used level, an integer -8..8; "
                f"got {preset!r}"
            )
    elif preset not in X264_PRESETS:
        raise ValueError(
            f"{flag}preset {preset!r} is not an x264/x265 preset ({flag}codec {codec}): "
            + ", ".join(X264_PRESETS)
        )


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
    #: look at the frames too (blank, frozen): the encoder's ``seen`` after close, see below.
    health: bool = False


class Encoder(Protocol):
    """One video being written. Calls come from one worker thread at a time, in frame order.

    An encoder that reads frames after :meth:`write` returns (an encoder process reads them
    from the shared arena) also has ``released() -> int``, how many of the frames written it
    is done with, in order, and ``drain()``, which returns once it is done with all of them;
    the worker keeps such frames in the budget until then. Without them, a frame is free
    again as soon as ``write`` returns. An encoder that looks at the frames (``spec.health``)
    has ``seen``, read after :meth:`close`: what it saw (``recorder._encode.health.Seen``).
    """

    def write(self, image: Image, text: str | None = None) -> None:
        """Encode one frame (a buffer of ``spec.frame_format.shape``; see above for keeping it).

        *text*: an overlay to draw onto a copy of it (the frame itself stays as it is); given
        only to the encoders of a Recorder with ``overlay=``.
        """

    def close(self) -> None:
        """Finish the file: flush the encoder and write the container trailer."""

    def abort(self) -> None:
        """Release everything without finishing the file (it is deleted afterwards)."""


class EncoderFactory(Protocol):
    """Makes the encoder of one video; an injection point for tests."""

    def __call__(self, spec: VideoSpec) -> Encoder: ...
