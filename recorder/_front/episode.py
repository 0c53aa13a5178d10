"""Clip planning: which clips an episode starts, and which of them want each frame.

gymnasium.utils.save_video's rules, applied frame by frame on the caller's thread.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any, Self

from recorder._base.frames import FrameFormat, Image, check_size, format_of, image_and_format
from recorder._base.info import Checked, check_info
from recorder._base.metadata import check_metadata, first_error, split_metadata
from recorder._base.results import ClipHandle, ClipKind, RecorderClosedError
from recorder._base.stride import kept
from recorder._base.validate import check_index, describe, shape_changed
from recorder._service.service import Clip, ClipPlan, ClipService


class Episode:
    """One episode streamed frame by frame; get it from :meth:`Recorder.episode`.

    Frame 0 is the reset frame; frame ``k >= 1`` is step ``step_starting_index + k - 1``.
    Three ways to stream, all recording exactly the clips, frames and names
    :func:`gymnasium.utils.save_video.save_video` makes of the same frames::

        ep.offer(env.render)            # renders only when a clip wants the frame

        if ep.wants_frame:              # no else branch needed
            ep.append(env.render())

        if ep.wants_frame:              # an explicit skip works as well
            ep.append(env.render())
        else:
            ep.skip()

    **One** :attr:`wants_frame` answer per frame: reading it again after a False answer, with
    no :meth:`append`/:meth:`skip` in between, means that frame went by (the episode advances
    past it, then answers for the next frame). After a True answer it stays on the frame until
    :meth:`append`. :meth:`append` after a False answer advances too (the frame is ignored).
    Leaving the ``with`` block (or :meth:`close`) ends the episode's clips.

    An episode closed without having advanced at all while a clip could have started is
    *stalled*: logged (a warning the first time per Recorder, then at DEBUG) and counted in
    ``stats().episodes_stalled``; not when the ``with`` block is left by an exception.
    """

    def __init__(
        self,
        service: ClipService,
        plan: ClipPlan,
        episode_index: int,
        step_starting_index: int,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.episode_index = check_index("episode_index", episode_index)
        self.step_starting_index = check_index("step_starting_index", step_starting_index)
        # What the clips store (JSON data, a copy): checked here, then again as the clips start
        # and when the episode ends, for what the caller added to ``metadata`` meanwhile.
        self._stored = check_metadata(metadata)
        #: facts about the episode for the sidecars; add to it until the episode ends.
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._service = service
        self._plan = plan
        trigger = plan.episode_trigger
        self._want_episode = trigger is not None and bool(trigger(episode_index))
        self._k = 0  # frames seen so far (appended, skipped or passed by)
        self._step_wanted: bool | None = None  # step_trigger for frame k, once evaluated
        # wants_frame's last answer for frame k (None: not asked since the last advance).
        self._answer: bool | None = None
        self._open: list[Clip] = []  # clips that may still want frames
        self._clips: list[Clip] = []  # every clip started
        self._stride = plan.frame_stride
        self._starts: dict[Clip, int] = {}  # with a frame stride: each clip's first frame
        self._format: FrameFormat | None = None
        self._closed = False
        self._whole = False  # the frames are all given at once (submit)
        # Collected unclosed (a forgotten close()), its clips must not stay open until the
        # Recorder closes (each holds a file and an encoder): the service ends them.
        self._finalizer = weakref.finalize(self, service.orphan, self.episode_index, self._clips)
        self._finalizer.atexit = False  # at exit the Recorder's own close ends them

    @property
    def handles(self) -> list[ClipHandle]:
        """Handles of the clips this episode has started, in order."""
        return [clip.handle for clip in self._clips]

    @property
    def frames_seen(self) -> int:
        """Frames appended, skipped or passed by (see the class docstring) so far."""
        return self._k

    @property
    def wants_frame(self) -> bool:
        """Whether a clip needs the next frame; read it once per frame (see the class doc).

        After a False answer, reading it again advances past that frame first.
        """
        self._check_open()
        if self._answer is False:
            self._skip()  # the frame no clip wanted went by
        answer = self._wants()
        self._answer = answer
        return answer

    def offer(self, render: Callable[[], Any], info: Mapping[str, Any] | None = None) -> bool:
        """Call ``render()`` and append its frame if a clip wants this frame; always advance.

        One call per frame, e.g. ``ep.offer(env.render)``: nothing to get wrong. A False
        :attr:`wants_frame` answer just before counts for this frame.

        Args:
            render: a callable of no arguments returning the frame (called at most once).
            info: the frame's data, as :meth:`append` takes it (checked only when the frame
                is appended).

        Returns:
            Whether *render* was called (and its frame appended).

        Raises:
            TypeError: *render* is not callable, or the frame is not an image.
            ValueError, QueueFullError, RecorderClosedError: as :meth:`append`.
            Exception: whatever *render* raises; the episode then stays at this frame.
        """
        if not callable(render):
            raise TypeError(
                f"offer() takes a callable that renders a frame (env.render, not env.render()), "
                f"got {describe(render)}"
            )
        self._check_open()
        if not self._wants():
            self._skip()
            return False
        checked = check_info(info)  # before render(): a bad info leaves the episode as it was
        frame = render()
        self._check_open()  # render() may have closed it (or the recorder)
        self._append_image(*image_and_format(frame), checked)
        return True

    def append(self, frame: Any, info: Mapping[str, Any] | None = None) -> None:
        """Add the next frame: validated and copied now, encoded in the background.

        Args:
            frame: the image (HxW, HxWx1, HxWx3 or HxWx4).
            info: the frame's data, e.g. ``{"reward": r, "action": a}``: str keys, values
                numbers, bools, None, strings of up to 64 characters or vectors of up to 32
                numbers, about 1 kB in all. With ``sidecars`` it is written beside each video
                as ``{name}.timeline.json`` and ``{name}.vtt``; an ``overlay`` draws it.

        Raises:
            TypeError, ValueError: a bad frame, or one whose shape differs from the first; a
                bad info. Nothing is appended then.
            QueueFullError: ``on_full="raise"`` and the budget is full.
            RecorderClosedError: the episode or the recorder is closed.
        """
        self._check_open()
        image, fmt = image_and_format(frame)
        self._append_image(image, fmt, check_info(info))

    def skip(self) -> None:
        """Advance past a frame that was not rendered (when :attr:`wants_frame` is False)."""
        self._check_open()
        if self._wants():
            raise RuntimeError("skip() called for a frame that a clip wants; append it")
        self._skip()

    # -- for the Recorder and the async facade (recorder._front.aio) ----------------------------

    def _record_all(
        self, images: list[Image], infos: list[Checked | None] | None = None
    ) -> list[ClipHandle]:
        """Record a whole episode's validated frames (and their checked infos), and close
        the episode."""
        self._whole = True
        try:
            for i, image in enumerate(images):
                if self._wants():
                    self._append_image(image, format_of(image), None if infos is None else infos[i])
                else:
                    self._skip()
        except BaseException:
            # The frames were all there: a clip cut short by a raising trigger, a full
            # budget (on_full="raise") or Ctrl-C would be a truncated video. Drop it whole.
            self._abort("submit() was interrupted")
            raise
        self.close()
        return self.handles

    def _peek(self) -> bool:
        """Whether a clip wants the frame :meth:`append` would add now (never advances)."""
        self._check_open()
        return self._wants()

    # -- the episode's own state ---------------------------------------------------------------

    def _wants(self) -> bool:
        if self._k == 0:
            return self._want_episode
        if self._stride > 1:
            return any(c.accepting for c in self._due(self._k)) or self._step_fires()
        return any(c.accepting for c in self._open) or self._step_fires()

    def _due(self, k: int) -> list[Clip]:
        """The open clips whose stride takes frame *k* (frame_stride > 1)."""
        stride, starts = self._stride, self._starts
        return [c for c in self._open if (k - starts[c]) % stride == 0]

    def _skip(self) -> None:
        self._answer = None
        self._step_wanted = None
        self._k += 1
        self._open = [c for c in self._open if c.accepting]

    def _append_checked(self, image: Image, info: Checked | None) -> None:
        """:meth:`append` of a frame and info checked already (the async facade's)."""
        self._check_open()
        self._append_image(*image_and_format(image), info)

    def _append_image(self, image: Image, fmt: FrameFormat, info: Checked | None = None) -> None:
        """Add a validated frame and its checked info."""
        # The training thread's hot path: every line here costs each recorded frame.
        if fmt is not self._format:
            if self._format is None:
                check_size(fmt, self._service.codec.name)
                self._format = fmt
            elif fmt != self._format:
                raise shape_changed(f"episode {self.episode_index}", self._format, fmt)
        k = self._k
        if k == 0:
            if self._want_episode:
                self._start("episode", self.episode_index)
        elif self._step_fires():
            self._start("step", self.step_starting_index + k - 1)
        self._k = k + 1
        self._step_wanted = None
        self._answer = None
        if self._stride > 1:
            self._admit_strided(image, fmt, k, info)
        elif self._open:
            self._open = self._service.admit(image, fmt, self._open, info)

    def _admit_strided(self, image: Image, fmt: FrameFormat, k: int, info: Checked | None) -> None:
        """Queue frame *k* for the open clips whose stride takes it; the others wait for theirs."""
        due = self._due(k)
        if due:
            still = self._service.admit(image, fmt, due, info)
            self._open = [c for c in self._open if c in still or (c not in due and c.accepting)]

    def _step_fires(self) -> bool:
        if self._step_wanted is None:
            trigger = self._plan.step_trigger
            step = self.step_starting_index + self._k - 1
            self._step_wanted = trigger is not None and bool(trigger(step))
        return self._step_wanted

    def _start(self, kind: ClipKind, index: int) -> None:
        plan = self._plan
        self._store_metadata()  # its refusals are raised when the episode ends
        clip = self._service.new_clip(
            f"{plan.name_prefix}-{kind}-{index}",
            kind,
            index,
            folder=plan.folder,
            fps=plan.fps / plan.frame_stride,
            length=kept(plan.video_length, plan.frame_stride),
            episode_index=self.episode_index,
            first_step=self.step_starting_index + max(self._k - 1, 0),
            metadata=self._stored,
            whole=self._whole,
        )
        self._open.append(clip)
        self._clips.append(clip)
        if self._stride > 1:
            self._starts[clip] = self._k
        if self._closed:  # by another thread meanwhile: its close() did not see this clip
            self._service.end_clip(clip)

    def _store_metadata(self) -> list[TypeError | ValueError]:
        """Update what the open clips store to :attr:`metadata`'s storable items; the errors
        of the others (left out)."""
        stored, errors = split_metadata(self.metadata, "ep.metadata")
        # In place: the open clips share it (each takes a copy as it ends, maybe on another
        # thread: Recorder.close()), so every state it passes through holds checked values.
        self._stored.update(stored)
        for key in [key for key in self._stored if key not in stored]:
            del self._stored[key]
        return errors

    def _abort(self, reason: str) -> None:
        """Drop every clip this episode started (the files are discarded)."""
        self._closed = True
        self._finalizer.detach()
        for clip in self._clips:
            self._service.drop_clip(clip, reason)
        self._open = []

    def _check_open(self) -> None:
        if self._closed:
            raise RecorderClosedError(f"episode {self.episode_index} is closed")
        if not self._service.usable:  # also while an aclose() has begun
            self._service.check_usable()  # says why: closed, or a forked child
            raise RecorderClosedError("this Recorder is closed")

    def close(self) -> None:
        """End the episode: its clips are finished in the background. Idempotent.

        A stalled episode (see the class docstring) is logged and counted.

        Raises:
            TypeError, ValueError: a value added to :attr:`metadata` that cannot be stored
                (see :func:`recorder._encode.sidecars.json_ready`); the clips are saved without it.
        """
        error = self._close(check_stalled=True)
        if error is not None:
            raise error

    def _close(self, *, check_stalled: bool, cut: bool = False) -> TypeError | ValueError | None:
        """End the episode (*cut*: its open clips cut short); the error of the metadata that
        cannot be stored, if any."""
        if self._closed:
            return None
        self._closed = True
        self._finalizer.detach()
        errors = self._store_metadata()
        for clip in self._open:
            self._service.end_clip(clip, cut=cut)
        self._open = []
        # An episode whose every clip was dropped has no video: ranked, it would take a keep
        # slot from one that has (its drop is counted and logged already).
        if any(not clip.dropped for clip in self._clips):
            self._service.episode_ended(self.episode_index, self._stored)
        if (
            check_stalled
            and self._k == 0
            and (self._want_episode or self._plan.step_trigger is not None)
        ):
            if self._want_episode:
                why = "episode_trigger fired, but no frame was appended"
            else:
                why = (
                    "it never advanced past its reset frame, so no step clip could start "
                    "(read wants_frame once per frame, call skip() or append() for each "
                    "frame, or use offer())"
                )
            self._service.stalled(self.episode_index, why)
        if not errors:
            return None
        error = first_error(errors)
        error.add_note(f"episode {self.episode_index}'s videos are saved without it")
        return error

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None = None, *_: object
    ) -> None:
        self._exit(exc_type, exc)

    def _exit(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, *, cut: bool = False
    ) -> None:
        """Leave the ``with`` block; *cut*: its open clips were cut short (a cancellation)."""
        # An exception ends the episode early on purpose: that is not a stall to report.
        error = self._close(check_stalled=exc_type is None, cut=cut)
        if error is None:
            return
        if exc is None:
            raise error
        exc.add_note(f"and when episode {self.episode_index} ended: {error}")
