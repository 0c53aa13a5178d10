"""The commands on a folder of videos: ``recorder gallery``, ``serve`` and ``recover``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

from recorder._cli.console import CLIError, recorder_command
from recorder._folder.gallery import build_gallery, scan, write_gallery
from recorder._folder.html import videos
from recorder._folder.recover import recover
from recorder._folder.serve import serve


def cmd_gallery(args: argparse.Namespace) -> int:
    """``recorder gallery``: see :func:`recorder._cli.main.build_parser`."""
    folder = _existing_folder(args.folder)
    entries = scan(folder)
    with _cannot(f"cannot write the gallery in {args.folder!r}"):
        page = write_gallery(folder, entries, title=args.title)
    print(f"wrote {page} ({videos(len(entries))})")
    if not args.serve:
        print(f"open {page.resolve().as_uri()}")
        print(f"or serve it: {_serve_command(folder)}")
        return 0
    return _serve_forever(folder, args)


def cmd_serve(args: argparse.Namespace) -> int:
    """``recorder serve``: see :func:`recorder._cli.main.build_parser`."""
    return _serve_forever(_existing_folder(args.folder), args)


def _serve_forever(folder: Path, args: argparse.Namespace) -> int:
    with _cannot(f"cannot serve on {args.host}:{args.port}"):
        server = serve(folder, args.host, args.port, quiet=not args.log_requests, title=args.title)
    with server, contextlib.suppress(KeyboardInterrupt):  # Ctrl-C once this is said stops it
        print(
            f"serving the live gallery of {folder} on http://{args.host}:{server.server_port}/ "
            "(new videos appear as they are saved; Ctrl-C to stop)",
            flush=True,
        )
        server.serve_forever()
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    """``recorder recover``: see :func:`recorder._cli.main.build_parser`."""
    folder = _existing_folder(args.folder)
    with _cannot(f"cannot recover in {args.folder!r}"):
        report = recover(folder)
    for line in report.lines():
        print(line)
    return 0


def gallery_after_record(folder: Path, out: str) -> None:
    """``recorder record --gallery``: write *folder*'s page and say where it is."""
    with _cannot(f"cannot write the gallery in {out!r}"):
        page = build_gallery(folder)
    print(f"gallery: {page.resolve().as_uri()} (or serve it: {_serve_command(folder)})")


def _existing_folder(name: str) -> Path:
    folder = Path(name)
    if not folder.is_dir():
        raise CLIError(f"{name!r} is not a folder")
    return folder


@contextlib.contextmanager
def _cannot(doing: str) -> Iterator[None]:
    """An OSError in the block becomes the one-line error ``{doing}: {reason}``."""
    try:
        yield
    except OSError as e:
        raise CLIError(f"{doing}: {e.strerror or e}") from None


def _serve_command(folder: Path) -> str:
    return recorder_command("serve", str(folder))
