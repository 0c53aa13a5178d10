"""The HTML of the gallery page: one offline file, every string from a file or metadata escaped.

Posters are PNG data URIs, style and script are inline, and a Content-Security-Policy
forbids anything that is not in the folder.
"""

from __future__ import annotations

import base64
import html
import json
import time
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recorder._gallery import GalleryEntry

# Fields of the sidecar shown in the card's list, in order, with their labels.
_SHOWN = ("episode_index", "first_step", "frames", "fps", "duration", "size", "codec", "size_bytes")
# Fields not repeated in the card's "all metadata" table (shown above, or noise).
_HIDDEN = {"path", "name", "metadata"}


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


def as_int(value: Any) -> int | None:
    """*value* if it is an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
