"""How videos are encoded (:class:`Codec`), what an encoder is asked to write
(:class:`VideoSpec`), and the interface every encoder has (:class:`Encoder`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
        name: ``"h264"`` (mp4, default), ``"h265"`` (mp4), ``"av1"`` (mp4, libsvtav1), ``"vp9"``
            (webm) or ``"gif"``. An mp4 survives a crash up to its last 2 s fragment (see
            :class:`PyAVEncoder` and :func:`recorder.recover`); webm and gif are written as they
            are and do not.
        crf: constant rate factor, lower is better quality (h264 default 23, h265 28, av1 30,
            vp9 32); ignored for gif.
        preset: the encoder's speed preset. ``None`` (default) for h264 and av1: *adaptive*,
            each video starts at the most size-efficient preset of :data:`LADDERS` while the
            queue has room and steps toward the fastest as the backlog grows (h264: within a
            video too, at a keyframe), so that the encoder keeps up with the training loop.
            A preset given pins it: x264/x265 ``"ultrafast"`` ... ``"veryslow"`` (h265's
            default ``"ultrafast"``), SVT-AV1 ``"0"`` ... ``"13"``, vp9 its ``cpu-used`` level
            (-8..8, default 8).
        threads: codec threads per video; 1 keeps one video on one core.
        options: extra codec options passed to FFmpeg as they are.
        interpolation: swscale's filter for the RGB to YUV 4:2:0 conversion (the frame is
            never resized, only its chroma subsampled): ``"area"`` (default), ``"bilinear"``
            and ``"bicubic"`` average each 2x2 block's colour, at the same cost; ``"point"``
            takes it from one pixel: a faster conversion (which at 600x400 costs about as much
            as x264 ultrafast itself), but on images with colour noise a PSNR about 1 dB
            below gymnasium's writer. Adaptive quality's fastest rung, which only a backlog
            gets, always converts with ``"point"``.

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

    @property
    def adaptive(self) -> bool:
        """Whether the preset adapts to the backlog (no preset given, a codec with a ladder)."""
        return self.preset is None and self.name in LADDERS

    def at(self, preset: str) -> Codec:
        """This codec at one preset of its ladder, with the options every rung shares."""
        return replace(
            self, preset=preset, options=_merged(LADDERS[self.name].options, self.options)
        )

    def ffmpeg_settings(self) -> tuple[str, str, str, dict[str, str]]:
        """(FFmpeg encoder, container format, pixel format, encoder options).

        An adaptive codec gives the settings of its ladder's first (most size-efficient) rung.
        """
        if self.adaptive:
            return self.at(LADDERS[self.name].presets[0]).ffmpeg_settings()
        encoder, _ext, container, pix_fmt, crf, preset = _CODECS[self.name]
        opts: dict[str, str] = {}
        if self.name in ("h264", "h265"):
            opts = {"crf": str(self.crf if self.crf is not None else crf)}
            opts["preset"] = self.preset or preset
            if self.name == "h265":
                opts["x265-params"] = "log-level=error"
        elif self.name == "av1":
            opts = {"crf": str(self.crf if self.crf is not None else crf)}
            opts["preset"] = self.preset or preset
            if self.threads:  # SVT-AV1's own threads: FFmpeg's thread count does not reach it
                opts["svtav1-params"] = f"lp={self.threads}"
        elif self.name == "vp9":
            opts = {
                "crf": str(self.crf if self.crf is not None else crf),
                "b": "0",
                "deadline": "realtime",
                "cpu-used": self.preset or preset,
                "row-mt": "0" if self.threads == 1 else "1",
            }
        return encoder, container, pix_fmt, _merged(opts, self.options)


def _merged(ours: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """*ours* updated with *given*; the ``...-params`` strings joined, *given*'s last (it wins)."""
    merged = dict(ours)
    for key, value in given.items():
        known = merged.get(key)
        merged[key] = f"{known}:{value}" if known and key.endswith("-params") else value
    return merged


@dataclass(frozen=True, slots=True)
class Ladder:
    """The presets an adaptive codec moves between, and the options they all get.

    Attributes:
        presets: from the most size-efficient (used while the queue has room) to the fastest.
        options: given at every rung. For h264 they make the rungs write the same SPS and PPS
            (CABAC, 8x8 transform, one reference, no B-frames, weighted P prediction), so that
            a video can change preset at a keyframe and stay one valid stream.
        within_video: whether a video may change preset at a keyframe (else per video).
    """

    presets: tuple[str, ...]
    options: dict[str, str]
    within_video: bool


#: Adaptive quality, by codec (``preset=None``): see :class:`Ladder`. Measured in
#: docs/benchmarks.md ("Quality"): h264 veryfast with these options is about gymnasium's size
#: on CartPole frames, and its ultrafast rung about ultrafast's speed.
LADDERS: dict[str, Ladder] = {
    "h264": Ladder(
        ("veryfast", "superfast", "ultrafast"),
        {"x264-params": "cabac=1:8x8dct=1:ref=1:bframes=0:weightp=1"},
        within_video=True,
    ),
    # SVT-AV1's presets change its sequence header: a video keeps the preset it started with.
    "av1": Ladder(("8", "10", "11"), {}, within_video=False),
}

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


#: SVT-AV1's presets (as strings, like the others): 0 (slowest) .. 13.
SVT_PRESETS = tuple(str(n) for n in range(14))


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
        top = 63 if codec in ("vp9", "av1") else 51  # x265 refuses more than 51; x264 clamps it
        if not 0 <= crf <= top:
            raise ValueError(f"{flag}crf for {flag}codec {codec} must lie in 0..{top}, got {crf}")
    if preset is None:
        return
    if not isinstance(preset, str):
        raise TypeError(f"{flag}preset must be a str, got {describe(preset)}")
    if codec == "vp9":
        try:
            # ASCII only: int() reads other scripts' digits ("٣"), FFmpeg does not.
            ok = preset.isascii() and -8 <= int(preset) <= 8  # libvpx-vp9 refuses the rest
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{flag}preset for {flag}codec vp9 is its cpu-used level, an integer -8..8; "
                f"got {preset!r}"
            )
    elif codec == "av1":
        if preset not in SVT_PRESETS:
            raise ValueError(
                f"{flag}preset for {flag}codec av1 is an SVT-AV1 preset, an integer 0..13 "
                f"(higher is faster); got {preset!r}"
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
    "av1": ("libsvtav1", ".mp4", "mp4", "yuv420p", 30, "8"),
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
    One that can change settings within the video also has ``retune(codec)``: from the next
    keyframe on, encode at *codec*'s (adaptive quality).
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
