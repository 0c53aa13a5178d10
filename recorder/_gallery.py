"""``index.html`` for a folder of videos: a filterable grid with posters and metadata.

The page is one offline file: posters are PNG data URIs (first frame, decoded and encoded with
PyAV: no Pillow), style and script are inline, and a Content-Security-Policy forbids anything
that is not in the folder. Every string that comes from a file name or metadata is escaped.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import http.server
import json
import math
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from recorder._metadata import MANIFEST, read_manifest

INDEX = "index.html"
VIDEO_SUFFIXES = (".mp4", ".webm")
IMAGE_SUFFIXES = (".gif",)
POSTER_WIDTH = 320

# Fields of the sidecar shown in the card's list, in order, with their labels.
_SHOWN = ("episode_index", "first_step", "frames", "fps", "duration", "size", "codec", "size_bytes")
# Fields not repeated in the card's "all metadata" table (shown above, or noise).
_HIDDEN = {"path", "name", "metadata"}
_NAME_INDEX = re.compile(r"-(episode|step)-(\d+)$")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class GalleryEntry:
    """One video of the gallery.

    Attributes:
        file: the file name in the folder.
        info: what is known about it: the sidecar (or manifest line) over what probing found.
        source: ``"sidecar"``, ``"manifest"`` or ``"probe"`` (no record of the recorder).
        poster: PNG bytes of the first frame, or None when it could not be decoded.
        error: why the video could not be read, or None.
    """

    file: str
    info: dict[str, Any] = field(default_factory=dict)
    source: str = "probe"
    poster: bytes | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        """The file name without its extension."""
        return Path(self.file).stem

    @property
    def is_video(self) -> bool:
        """Whether it plays in a ``<video>`` element (a gif is shown as an image)."""
        return self.file.lower().endswith(VIDEO_SUFFIXES)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The user metadata recorded with the episode (seed, return...)."""
        meta = self.info.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    def sort_key(self) -> tuple[float, float, str]:
        """By episode, then first step, then name; unknown episodes last."""
        episode = _as_int(self.info.get("episode_index"))
        step = _as_int(self.info.get("first_step"))
        return (
            math.inf if episode is None else episode,
            -1 if step is None else step,
            self.name,
        )


def scan(folder: str | os.PathLike[str]) -> list[GalleryEntry]:
    """Describe every video in *folder*, sorted by episode.

    Metadata comes from the ``{name}.json`` sidecar, else from the last ``manifest.jsonl`` line
    about the file, else only from probing the video with PyAV.
    """
    root = Path(folder)
    manifest: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(OSError, ValueError):
        for record in read_manifest(root):
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                manifest[record["path"]] = record
    entries = []
    for path in sorted(root.iterdir()):
        suffix = path.suffix.lower()
        if path.name.startswith(".") or suffix not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
            continue
        if not path.is_file():
            continue
        entry = GalleryEntry(path.name)
        try:
            entry.info, entry.poster = probe(path)
        except (OSError, ValueError, StopIteration, av.FFmpegError) as e:
            entry.error = f"cannot read the video: {e}" if str(e) else "cannot read the video"
            entry.info = {"size_bytes": _size(path)}
        recorded = _read_sidecar(path)
        if recorded is not None:
            entry.source = "sidecar"
        else:
            recorded = manifest.get(path.name)
            if recorded is not None:
                entry.source = "manifest"
        if recorded is not None:
            entry.info.update(recorded)
        elif (m := _NAME_INDEX.search(entry.name)) and m.group(1) == "episode":
            entry.info.setdefault("episode_index", int(m.group(2)))
        entries.append(entry)
    entries.sort(key=GalleryEntry.sort_key)
    return entries


def probe(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes | None]:
    """What PyAV finds in a video, and a PNG poster of its first frame.

    Raises:
        av.FFmpegError, OSError: the file cannot be opened or decoded.
        ValueError: it has no video stream.
    """
    info: dict[str, Any] = {"size_bytes": _size(path)}
    poster = None
    with av.open(os.fspath(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        info.update(codec=ctx.name, width=ctx.width, height=ctx.height)
        if stream.average_rate:
            info["fps"] = float(stream.average_rate)
        if container.duration:
            info["duration"] = container.duration / av.time_base
        frames = stream.frames
        for frame in container.decode(stream):
            poster = poster_png(frame)
            break
    if not frames:  # webm and gif do not store a count: count the packets (no decoding)
        with av.open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for p in container.demux(stream) if p.size)
    info["frames"] = frames
    return info, poster


def poster_png(frame: Any, width: int = POSTER_WIDTH) -> bytes:
    """Scale a decoded ``av.VideoFrame`` to at most *width* pixels wide and encode it as PNG."""
    w, h = frame.width, frame.height
    if w > width:
        w, h = width, max(1, round(frame.height * width / frame.width))
    rgb = frame.reformat(width=w, height=h, format="rgb24")
    codec: Any = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = w, h, "rgb24"
    packets = [*codec.encode(rgb), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


def build_gallery(folder: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write ``folder/index.html``: every video with its poster and metadata.

    Args:
        folder: a folder of videos (sidecars and ``manifest.jsonl`` are used when present).
        title: the page title; the folder's name by default.

    Returns:
        The path of the page.

    Raises:
        NotADirectoryError, FileNotFoundError: *folder* is not a folder.
        OSError: the page cannot be written.
    """
    root = Path(folder)
    if not root.is_dir():
        if root.exists():
            raise NotADirectoryError(f"not a folder: {root}")
        raise FileNotFoundError(f"no such folder: {root}")
    return write_gallery(root, scan(root), title=title)


def write_gallery(
    folder: str | os.PathLike[str], entries: Iterable[GalleryEntry], *, title: str | None = None
) -> Path:
    """Write the page for *entries* (from :func:`scan`) as ``folder/index.html``, atomically."""
    root = Path(folder)
    page = render(entries, title or root.resolve().name or str(root))
    target = root / INDEX
    fd, tmp = tempfile.mkstemp(prefix=f".{INDEX}.", suffix=".rec-tmp", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a page is for sharing
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def render(entries: Iterable[GalleryEntry], title: str) -> str:
    """The HTML page for *entries* (in the order given)."""
    entries = list(entries)
    cards = "\n".join(_card(e) for e in entries)
    count = f"{len(entries)} video{'s' if len(entries) != 1 else ''}"
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return _PAGE.format(
        title=html.escape(title),
        count=html.escape(count),
        generated=html.escape(generated),
        cards=cards,
        empty="" if entries else "<p class=note>No videos in this folder yet.</p>",
        csp=html.escape(_CSP),
        style=_STYLE,
        script=_SCRIPT,
    )


def _card(entry: GalleryEntry) -> str:
    esc = html.escape
    info = entry.info
    src = esc(urllib.parse.quote(entry.file))
    width, height = _as_int(info.get("width")), _as_int(info.get("height"))
    size_attrs = f' width="{width}" height="{height}"' if width and height else ""
    poster = ""
    if entry.poster is not None:
        data = base64.b64encode(entry.poster).decode("ascii")
        poster = f"data:image/png;base64,{data}"
    if entry.is_video:
        poster_attr = f' poster="{esc(poster)}"' if poster else ""
        media = (
            f'<video src="{src}"{poster_attr}{size_attrs} controls muted loop playsinline '
            f'preload="metadata"></video>'
        )
    else:
        media = f'<img src="{src}"{size_attrs} alt="{esc(entry.name)}" loading="lazy">'
    facts = "".join(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in _facts(entry))
    user = "".join(
        f"<dt>{esc(str(key))}</dt><dd>{esc(_fmt(value))}</dd>"
        for key, value in entry.metadata.items()
    )
    rest = "".join(
        f"<tr><th>{esc(str(key))}</th><td>{esc(_fmt(value))}</td></tr>"
        for key, value in info.items()
        if key not in _HIDDEN
    )
    error = f'<p class="error">{esc(entry.error)}</p>' if entry.error else ""
    source = "" if entry.source != "probe" else '<p class="note">no sidecar: probed</p>'
    return (
        f'<article class="card" data-name="{esc(entry.name.lower())}">'
        f"{media}"
        f'<h2><a href="{src}">{esc(entry.name)}</a></h2>{error}'
        f"<dl>{facts}{user}</dl>{source}"
        f"<details><summary>all metadata</summary><table>{rest}</table></details>"
        f"</article>"
    )


def _facts(entry: GalleryEntry) -> list[tuple[str, str]]:
    info = entry.info
    out: list[tuple[str, str]] = []
    for key in _SHOWN:
        value = info.get(key)
        if key == "size":
            w, h = info.get("width"), info.get("height")
            if w is not None and h is not None:
                out.append(("size", f"{_fmt(w)} x {_fmt(h)}"))
            continue
        if value is None:
            continue
        if key == "episode_index":
            out.append(("episode", _fmt(value)))
        elif key == "first_step":
            out.append(("first step", _fmt(value)))
        elif key == "duration" and isinstance(value, int | float):
            out.append(("duration", f"{value:.2f} s"))
        elif key == "size_bytes" and isinstance(value, int | float):
            out.append(("file", _human_bytes(value)))
        elif key == "fps" and isinstance(value, int | float):
            out.append(("fps", f"{value:g}"))
        else:
            out.append((key, _fmt(value)))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None or isinstance(value, bool | int):
        return json.dumps(value)
    return json.dumps(value, default=repr, ensure_ascii=False)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _size(path: str | os.PathLike[str]) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _read_sidecar(video: Path) -> dict[str, Any] | None:
    sidecar = video.with_suffix(".json")
    if sidecar.name == MANIFEST:
        return None
    try:
        with open(sidecar, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None  # missing or not ours: probing still describes the video
    return record if isinstance(record, dict) else None


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder as ``python -m http.server`` does, and answers byte ``Range`` requests.

    Browsers can seek in a video only when the server sends ranges (206): without them,
    Chromium snaps ``currentTime`` back to 0.
    """

    _left: int | None = None

    def end_headers(self) -> None:
        """Advertise ranges on every response."""
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def send_head(self) -> Any:
        """The response head: 206 with ``Content-Range`` for one satisfiable range."""
        self._left = None
        spec = self.headers.get("Range")
        match = None if spec is None else _RANGE.fullmatch(spec.strip())
        path = self.translate_path(self.path)
        if match is None or not any(match.groups()) or not os.path.isfile(path):
            return super().send_head()  # no range, several ranges (RFC 9110 allows 200)...
        try:
            f = open(path, "rb")  # noqa: SIM115 - returned to the base class, which closes it
        except OSError:
            self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            size = os.fstat(f.fileno()).st_size
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:  # "bytes=-N": the last N bytes
                start, end = max(0, size - int(last)), size - 1
            if start > end:
                f.close()
                self.send_response(http.HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(http.HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header(
                "Last-Modified", self.date_time_string(int(os.fstat(f.fileno()).st_mtime))
            )
            self.end_headers()
            f.seek(start)
            self._left = end - start + 1
            return f
        except BaseException:
            f.close()
            raise

    def copyfile(self, source: Any, outputfile: Any) -> None:
        """Copy the whole file, or only the range."""
        if self._left is None:
            super().copyfile(source, outputfile)
            return
        left = self._left
        while left > 0:
            chunk = source.read(min(left, 2**16))
            if not chunk:
                break
            outputfile.write(chunk)
            left -= len(chunk)


def serve(
    folder: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = True
) -> http.server.ThreadingHTTPServer:
    """An HTTP server for *folder* (with byte ranges); call ``serve_forever()`` on it.

    Raises:
        OSError: the address cannot be bound (in use...).
    """

    class Handler(RangeRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:
                super().log_message(format, *args)

    handler = functools.partial(Handler, directory=os.fspath(folder))
    return http.server.ThreadingHTTPServer((host, port), handler)


# Only what is in the folder loads: no network, even if a metadata string tried.
_CSP = (
    "default-src 'none'; img-src 'self' data: file:; media-src 'self' file:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)

_STYLE = """
:root { color-scheme: light dark; --card: #fff; --fg: #222; --muted: #666; --bg: #f2f2f2; }
@media (prefers-color-scheme: dark) {
  :root { --card: #1e1e1e; --fg: #ddd; --muted: #999; --bg: #111; }
}
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: var(--bg); color: var(--fg); }
header { position: sticky; top: 0; z-index: 1; background: var(--bg); padding: 12px 16px;
         display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap;
         border-bottom: 1px solid #8884; }
h1 { font-size: 20px; margin: 0; }
header p { margin: 0; color: var(--muted); }
#filter { font: inherit; padding: 4px 8px; min-width: 16em; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr));
       gap: 16px; padding: 16px; }
.card { background: var(--card); border-radius: 8px; padding: 8px;
        box-shadow: 0 1px 3px #0003; overflow: hidden; }
.card[hidden] { display: none; }
h2 a { color: inherit; }
video, img { display: block; width: 100%; height: auto; background: #000; border-radius: 4px; }
h2 { font-size: 14px; margin: 8px 0 4px; word-break: break-all; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 0 12px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; word-break: break-word; }
details { margin-top: 6px; color: var(--muted); }
table { font-size: 12px; border-collapse: collapse; }
th { text-align: left; padding-right: 8px; font-weight: normal; vertical-align: top; }
td { word-break: break-word; }
.error { color: #c33; }
.note { color: var(--muted); font-style: italic; margin: 4px 0 0; }
"""

_SCRIPT = """
(function () {
  var input = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  function apply() {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var n = 0;
    cards.forEach(function (card) {
      var name = card.getAttribute("data-name");
      var ok = words.every(function (w) { return name.indexOf(w) >= 0; });
      card.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = words.length ? " · " + n + " shown" : "";
  }
  input.addEventListener("input", apply);
  apply();
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<p>{count} · generated {generated}<span id="shown"></span></p>
<input id="filter" type="search" placeholder="Filter by name" aria-label="Filter by name">
</header>
{empty}
<main id="grid">
{cards}
</main>
<script>{script}</script>
</body>
</html>
"""
