"""What a command shows on stderr: one-line errors, warnings and log records, progress bars."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO

# Exit statuses: argparse uses 2 for a bad command line.
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141  # what a shell reports for a program killed by SIGPIPE

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # gymnasium colours its warnings


class CLIError(Exception):
    """An error reported in one line, without a traceback."""


def recorder_command(*args: str) -> str:
    """``recorder ARGS`` as the user can type it here: ``recorder`` when that is this
    program on the PATH, else this environment's script or ``PYTHON -m recorder`` by path."""
    script = Path(sys.executable).parent / "recorder"
    if script.is_file():
        found = shutil.which("recorder")
        program = "recorder" if found and Path(found).samefile(script) else _here(script)
    else:
        program = f"{python_command()} -m recorder"
    return " ".join([program, *map(shlex.quote, args)])


def pip_command(*requirements: str) -> str:
    """A pip command that installs *requirements* into the environment running this."""
    return " ".join([python_command(), "-m", "pip", "install", *map(shlex.quote, requirements)])


def python_command() -> str:
    """This interpreter as the user can type it here: ``python`` if that is it."""
    found = shutil.which("python")
    if found and os.path.abspath(found) == os.path.abspath(sys.executable):
        return "python"
    return _here(Path(sys.executable))


def _here(path: Path) -> str:
    """*path* (absolute, symlinks kept) relative to the current folder when inside it."""
    path = Path(os.path.abspath(path))
    with contextlib.suppress(ValueError):
        relative = str(path.relative_to(Path.cwd()))
        # With a slash, the shell takes it as a path rather than a name to look up.
        return shlex.quote(relative if "/" in relative else f"./{relative}")
    return shlex.quote(str(path))


def stdout_closed() -> None:
    """The reader of stdout went away: send what is left to /dev/null, so that the
    interpreter's final flush does not print a BrokenPipeError traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def headless_video() -> None:
    """On a machine without a display, have SDL (pygame) render without one, quietly.

    Without a driver set, SDL tries Wayland and X11 first and prints
    ``XDG_RUNTIME_DIR is invalid or not set`` before it falls back.
    """
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def one_line(text: str) -> str:
    """*text* with every run of whitespace (newlines too) made one space."""
    return " ".join(text.split())


class Bar(Protocol):
    """The part of a tqdm progress bar the command uses."""

    def update(self, n: float = 1) -> object: ...

    def set_postfix(self, ordered_dict: dict[str, Any], refresh: bool = ...) -> None: ...

    def close(self) -> None: ...


class _NoBar:
    def update(self, n: float = 1) -> None:
        pass

    def set_postfix(self, ordered_dict: dict[str, Any], refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


class Console:
    """stderr while a command runs: progress bars, and one-line messages that do not break them.

    Args:
        progress: show tqdm progress bars.

    Raises:
        CLIError: progress bars wanted but tqdm missing (with the install hint).
    """

    def __init__(self, *, progress: bool) -> None:
        self._tqdm: Any = None
        if progress:
            try:
                tqdm_module = importlib.import_module("tqdm")
            except ImportError:
                raise CLIError(
                    f"the progress bar needs tqdm: {pip_command('tqdm')} (or pass --no-progress)"
                ) from None
            # No monitor thread: a command leaves no thread behind.
            self._tqdm = type("Bar", (tqdm_module.tqdm,), {"monitor_interval": 0})

    def bar(self, **kwargs: Any) -> Bar:
        """A progress bar on stderr (tqdm's arguments), or one that shows nothing."""
        if self._tqdm is None:
            return _NoBar()
        bar: Bar = self._tqdm(file=sys.stderr, mininterval=0.2, dynamic_ncols=True, **kwargs)
        return bar

    def line(self, text: str) -> None:
        """Print one line on stderr, above the progress bars."""
        text = one_line(text)
        if self._tqdm is None:
            print(text, file=sys.stderr, flush=True)
        else:
            self._tqdm.write(text, file=sys.stderr)

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Show warnings (gymnasium's checks...) and the recorder's log records as one line each.

        Each distinct warning is shown once; log records show no traceback (the summary
        lists the failed videos).
        """
        seen: set[str] = set()

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            text = one_line(_ANSI.sub("", str(message)).removeprefix("WARN: "))
            if text not in seen:
                seen.add(text)
                self.line(f"recorder: warning: {category.__name__}: {text}")

        handler = _LineHandler(self)
        log = logging.getLogger("recorder")
        propagate = log.propagate
        log.addHandler(handler)
        log.propagate = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                warnings.showwarning = show
                yield
        finally:
            log.removeHandler(handler)
            log.propagate = propagate


class _LineHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f": {type(error).__name__}: {error}"
        try:
            self._console.line(f"recorder: {record.levelname.lower()}: {text}")
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a job scheduler stopping us) unwinds like Ctrl-C: the videos are flushed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
