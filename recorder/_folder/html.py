"""The HTML of the gallery page: one offline file, every string from a file or metadata escaped.

Posters are PNG data URIs, style and script are inline, and a Content-Security-Policy
forbids anything that is not in the folder, and any script but the page's own (by its hash).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import importlib.resources
import json
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from recorder._folder.entry import GalleryEntry, as_int

# Fields of the sidecar shown in the card's list, in order, with their labels.
_SHOWN = ("episode_index", "first_step", "frames", "fps", "duration", "size", "codec", "size_bytes")
# Fields not repeated in the card's "all metadata" table (shown above, or noise).
_HIDDEN = {"path", "name", "metadata"}


def render(
    entries: Iterable[GalleryEntry], title: str, *, live: Mapping[str, Any] | None = None
) -> str:
    """The HTML page for *entries* (in the order given).

    Args:
        entries: the videos, in the page's order.
        title: the page's title.
        live: for a served page, where and how often it asks for new videos
            (``{"offset", "updates", "poll_ms"}``, see ``_live``); None for a static file.
    """
    entries = list(entries)
    cards = "\n".join(card(e) for e in entries)
    count = f"{len(entries)} video{'s' if len(entries) != 1 else ''}"
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    data = {"live": dict(live) if live else None, "points": [e.point() for e in entries]}
    script = _asset("gallery.js")
    return _PAGE.format(
        title=html.escape(title),
        count=html.escape(count),
        generated=html.escape(generated),
        cards=cards,
        empty="" if entries else '<p class="note" id="empty">No videos in this folder yet.</p>',
        csp=html.escape(_CSP.format(script=_sha256(script))),
        style=_asset("gallery.css"),
        script=script,
        data=script_json(data),
        newest=" selected" if live else "",
    )


def card(entry: GalleryEntry) -> str:
    """One video's ``<article>``: the video (or GIF), its name and every metadata field, escaped."""
    esc = html.escape
    info = entry.info
    src = esc(urllib.parse.quote(entry.file))
    width, height = as_int(info.get("width")), as_int(info.get("height"))
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
        f'<article class="card" data-name="{esc(entry.name.lower())}" '
        f'data-file="{esc(entry.file)}" data-series="{esc(entry.series)}">'
        f"{media}"
        f'<h2><a href="{src}">{esc(entry.name)}</a></h2>{error}'
        f"<dl>{facts}{user}</dl>{source}"
        f"<details><summary>all metadata</summary><table>{rest}</table></details>"
        f"</article>"
    )


def script_json(value: Any) -> str:
    """*value* as JSON safe inside ``<script>``: no ``</script>`` or ``<!--`` can close it."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.cache
def _asset(name: str) -> str:
    return importlib.resources.files("recorder._folder").joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    """The CSP source that allows exactly the inline script *text*."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


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


# Only what is in the folder loads: no network, even if a metadata string tried; and only our
# script runs (its hash), not one a string that escaped escaping would bring.
_CSP = (
    "default-src 'none'; img-src 'self' data: file:; media-src 'self' file:; "
    "style-src 'unsafe-inline'; script-src {script}; connect-src 'self'"
)

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
<p><span id="count">{count}</span> · <span id="status">generated {generated}</span>\
<span id="shown"></span></p>
<div class="controls">
<input id="filter" type="search" placeholder="Filter by name" aria-label="Filter by name">
<select id="series" aria-label="Series"><option value="">all series</option></select>
<label>episodes <input id="ep-min" type="number" step="1" aria-label="First episode">
&ndash; <input id="ep-max" type="number" step="1" aria-label="Last episode"></label>
<select id="sort" aria-label="Order"><option value="episode">by episode</option>
<option value="newest"{newest}>newest first</option></select>
</div>
</header>
<section id="plot-box" hidden>
<div class="plot-head"><label>plot <select id="field" aria-label="Plotted field"></select></label>
<span class="hint">against the episode; a click on a point plays its video</span>
<span id="legend"></span></div>
<svg id="plot" role="img" aria-label="metadata per episode"></svg>
</section>
{empty}
<main id="grid">
{cards}
</main>
<script type="application/json" id="recorder-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
