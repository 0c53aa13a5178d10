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
import os
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from recorder._folder.entry import GalleryEntry, as_int, finite
from recorder._folder.strip import pack_captions

#: how a page is encoded: a file name that is not UTF-8 (its lone surrogates) shows escaped.
ENCODING_ERRORS = "backslashreplace"

# Fields of the sidecar listed under "all metadata", in order (the card's key fields, the
# episode, return, length and health, are above it).
_SHOWN = ("first_step", "fps", "size", "codec", "size_bytes")
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
            (``{"offset", "updates", "poll_ms"}``, see ``_live``); None for a static file,
            which then carries its captions too (a page from ``file://`` cannot load them).
    """
    entries = list(entries)
    cards = "\n".join(card(e) for e in entries)
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    captions = {}
    if not live:
        captions = {e.file: c for e in entries if e.captions and (c := pack_captions(e.captions))}
    data = {
        "live": dict(live) if live else None,
        "points": [e.point() for e in entries],
        "timelines": {e.file: e.timeline for e in entries if e.timeline},
        "captions": captions,
    }
    script = _asset("gallery.js")
    return _PAGE.format(
        title=html.escape(title),
        count=html.escape(videos(len(entries))),
        generated=html.escape(generated),
        cards=cards,
        empty="" if entries else '<p class="note" id="empty">No videos in this folder yet.</p>',
        csp=html.escape(_CSP.format(script=_sha256(script))),
        style=_asset("gallery.css"),
        script=script,
        data=script_json(data),
        newest=" selected" if live else "",
    )


def videos(count: int) -> str:
    """``"1 video"``, ``"2 videos"``."""
    return f"{count} video{'' if count == 1 else 's'}"


def card(entry: GalleryEntry) -> str:
    """One video's ``<article>``: the video (or GIF) first, its badges, name and key fields,
    then every metadata field under "all metadata"; every string escaped."""
    esc = html.escape
    info = entry.info
    src = esc(urllib.parse.quote(os.fsencode(entry.file)))  # the name's bytes, UTF-8 or not
    width, height = as_int(info.get("width")), as_int(info.get("height"))
    size_attrs = f' width="{width}" height="{height}"' if width and height else ""
    poster = ""
    if entry.poster is not None:
        data = base64.b64encode(entry.poster).decode("ascii")
        poster = f"data:image/png;base64,{data}"
    if entry.is_video:
        poster_attr = f' poster="{esc(poster)}"' if poster else ""
        track = ""
        if entry.captions is not None:  # no "default": captions are off until asked for
            vtt = esc(urllib.parse.quote(os.fsencode(entry.captions.name)))
            track = f'<track kind="captions" src="{vtt}" srclang="en" label="timeline">'
        media = (
            f'<video src="{src}"{poster_attr}{size_attrs} controls muted loop playsinline '
            f'preload="metadata">{track}</video>'
        )
    else:
        media = f'<img src="{src}"{size_attrs} alt="{esc(entry.name)}" loading="lazy">'
    key = "".join(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in _key(entry))
    facts = "".join(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in _facts(entry))
    user = "".join(
        f"<dt>{esc(str(k))}</dt><dd>{esc(_fmt(v))}</dd>"
        for k, v in entry.metadata.items()
        if k != "return"
    )
    rest = "".join(
        f"<tr><th>{esc(str(key))}</th><td>{esc(_fmt(value))}</td></tr>"
        for key, value in info.items()
        if key not in _HIDDEN
    )
    error = f'<p class="error">{esc(entry.error)}</p>' if entry.error else ""
    source = "" if entry.source != "probe" else '<p class="note">no sidecar: probed</p>'
    classes = "card" + " suspect" * entry.suspect + " partial" * entry.partial
    return (
        f'<article class="{classes}" data-name="{esc(entry.name.lower())}" '
        f'data-file="{esc(entry.file)}" data-series="{esc(entry.series)}">'
        f"{media}{_badges(entry)}"
        f'<h2><a href="{src}">{esc(entry.name)}</a></h2>{error}'
        f'<dl class="key">{key}</dl>{source}'
        f"<details><summary>all metadata</summary><dl>{facts}{user}</dl>"
        f"<table>{rest}</table></details>"
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


def _badges(entry: GalleryEntry) -> str:
    """What is wrong with the video, in words, where the eye lands after the video."""
    out = ""
    if entry.suspect:
        why = entry.health.get("why") if entry.health else None
        text = why if isinstance(why, str) and why else "the health check found it suspect"
        out += f'<p class="badge suspect"><b>suspect</b> {html.escape(text)}</p>'
    if entry.partial:
        if entry.info.get("recovered_from") is not None:
            text = "recovered after a crash: the frames written before it"
        else:
            text = "cut short: the recording stopped (Ctrl-C, close) before the episode ended"
        out += f'<p class="badge partial"><b>partial</b> {text}</p>'
    return out


def _key(entry: GalleryEntry) -> list[tuple[str, str]]:
    """The fields a card shows above "all metadata": episode, return, length, health."""
    info = entry.info
    out: list[tuple[str, str]] = []
    if (episode := info.get("episode_index")) is not None:
        out.append(("episode", _fmt(episode)))
    if "return" in entry.metadata:
        out.append(("return", _fmt(entry.metadata["return"])))
    frames, duration = info.get("frames"), info.get("duration")
    length = [f"{_fmt(frames)} frames"] if frames is not None else []
    if finite(duration):
        length.append(f"{duration:.2f} s")
    if length:
        out.append(("length", " · ".join(length)))
    if entry.health is not None:
        out.append(("health", "suspect" if entry.suspect else "ok"))
    return out


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
        if key == "first_step":
            out.append(("first step", _fmt(value)))
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
# script runs (its hash), not one a string that escaped escaping would bring. blob: media are
# the captions our script unpacks for a page opened from file://.
_CSP = (
    "default-src 'none'; img-src 'self' data: file:; media-src 'self' file: blob:; "
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
<select id="health" aria-label="Health"><option value="">all videos</option>
<option value="suspect">only suspect</option><option value="ok">hide suspect</option></select>
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
