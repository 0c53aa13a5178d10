"""``on_saved`` callbacks that log each saved video to TensorBoard or Weights & Biases.

Neither library is a dependency: pass the writer or run you already have::

    writer = tensorboardX.SummaryWriter("runs/cartpole")   # or torch.utils.tensorboard's
    recorder.Recorder("videos", on_saved=recorder.integrations.tensorboard(writer))

    run = wandb.init(project="cartpole")
    recorder.wrappers.RecordVideo(env, "videos", on_saved=recorder.integrations.wandb(run))

The callbacks run on the recorder's worker threads (never in ``step()``); an exception they
raise is reported like an encoding error.
"""

from __future__ import annotations

import importlib
import io
import threading
from collections.abc import Callable
from typing import Any

import av
import numpy as np

from recorder._base.results import VideoInfo

__all__ = ["decode_frames", "gif_bytes", "tensorboard", "wandb"]


def decode_frames(info: VideoInfo, max_frames: int | None = None) -> np.ndarray[Any, Any]:
    """The frames of a saved video as a ``(T, H, W, 3)`` uint8 array, padding removed."""
    frames = []
    with av.open(str(info.path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24")[: info.height, : info.width])
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError(f"{info.path} has no frame to log")
    return np.stack(frames)


def _step(info: VideoInfo, step: str) -> int | None:
    value = getattr(info, step) if step in ("episode_index", "index", "first_step") else None
    return None if value is None else int(value)


def tensorboard(
    writer: Any,
    tag: str = "video",
    *,
    step: str = "episode_index",
    max_frames: int | None = None,
) -> Callable[[VideoInfo], None]:
    """A callback adding each saved video to *writer* as TensorBoard's video summary (an
    animated GIF in the Images tab, as ``add_video`` makes).

    The GIF is made here, one GIF frame per video frame (``add_video`` goes through moviepy,
    which drops a frame at some frame rates, e.g. 12 frames at 30 fps give 11), with an
    adaptive palette per frame (Pillow, which TensorBoard's video summaries need anyway).

    Args:
        writer: a ``tensorboardX.SummaryWriter`` or ``torch.utils.tensorboard.SummaryWriter``.
        tag: the summary's tag.
        step: which :class:`VideoInfo` field is the global step: ``"episode_index"``,
            ``"index"`` or ``"first_step"``.
        max_frames: log at most this many frames of each video (GIFs are large).
    """
    if step not in ("episode_index", "index", "first_step"):
        raise ValueError(f"step must be 'episode_index', 'index' or 'first_step', got {step!r}")
    file_writer = getattr(writer, "_get_file_writer", None)
    if not callable(file_writer):
        raise TypeError(f"writer must be a tensorboardX or torch SummaryWriter, got {writer!r}")
    _pil_image()  # here, not in the worker at each video
    if type(writer).__module__.startswith("torch"):
        summary_pb2 = importlib.import_module("tensorboard.compat.proto.summary_pb2")
    else:
        summary_pb2 = importlib.import_module("tensorboardX.proto.summary_pb2")
    lock = threading.Lock()  # several workers may save videos at once

    def log(info: VideoInfo) -> None:
        frames = decode_frames(info, max_frames)
        image = summary_pb2.Summary.Image(
            height=frames.shape[1],
            width=frames.shape[2],
            colorspace=3,
            encoded_image_string=gif_bytes(frames, info.fps),
        )
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)])
        with lock:
            # What add_video itself does with the summary it makes.
            file_writer().add_summary(summary, _step(info, step))

    return log


def _pil_image() -> Any:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError as e:
        raise ImportError("TensorBoard video summaries need Pillow: pip install pillow") from e


def gif_bytes(frames: np.ndarray[Any, Any], fps: float) -> bytes:
    """An animated GIF of *frames* (T, H, W, 3), looping, one GIF frame per frame."""
    pil_image = _pil_image()
    images = [pil_image.fromarray(f).quantize(colors=256) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
        optimize=False,
    )
    return buffer.getvalue()


def wandb(
    run: Any,
    key: str = "video",
    *,
    step_metric: str = "episode",
) -> Callable[[VideoInfo], None]:
    """A callback logging each saved mp4 to a W&B *run* as ``wandb.Video`` (no re-encoding).

    Videos arrive out of order (several workers), so they are logged against *step_metric*
    (the episode index), not W&B's own step.

    Args:
        run: the object ``wandb.init()`` returned.
        key: the key the video is logged under.
        step_metric: the metric, set to each video's episode index, that *key* is plotted
            against.
    """
    try:
        wandb_module = importlib.import_module("wandb")
    except ImportError as e:
        raise ImportError("recorder.integrations.wandb needs wandb: pip install wandb") from e
    if not callable(getattr(run, "log", None)):
        raise TypeError(f"run must be a wandb run (from wandb.init()), got {run!r}")
    run.define_metric(step_metric)
    run.define_metric(key, step_metric=step_metric)
    lock = threading.Lock()

    def log(info: VideoInfo) -> None:
        video = wandb_module.Video(str(info.path), format=info.path.suffix.lstrip("."))
        with lock:
            run.log({key: video, step_metric: info.episode_index})

    return log
