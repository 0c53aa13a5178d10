"""The gallery page: what it lists, how it escapes, and that Chromium really plays every video."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from helpers import CELL, decode, painted, read_index, serving

from recorder import Recorder
from recorder._testing import build_gallery, quality_of, scan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from gallery_check import PLAY

EVIL = "evil <b>\"&'#?% x"


@dataclass
class Made:
    """A video the fixture wrote: its frames, fps and the painted index of its first frame."""

    file: str
    frames: int
    fps: float
    first: int
    episode: int


def make_videos(root: Path) -> list[Made]:
    """Videos of every kind the gallery meets, in episode order."""
    made = []
    with Recorder(root, fps=10, episode_trigger=lambda e: True) as rec:
        rec.submit(
            [painted(100 + k, 41, 101) for k in range(12)],
            episode_index=1,
            metadata={"seed": 11, "return": 3.5},
        )
        rec.submit([painted(k) for k in range(25)], episode_index=0, fps=25, metadata={"seed": 10})
    made += [
        Made("rl-video-episode-0.mp4", 25, 25, 0, 0),
        Made("rl-video-episode-1.mp4", 12, 10, 100, 1),
    ]
    with Recorder(root, fps=20, episode_trigger=lambda e: True, codec="vp9") as rec:
        rec.submit([painted(200 + k) for k in range(16)], episode_index=2)
    made.append(Made("rl-video-episode-2.webm", 16, 20, 200, 2))
    with Recorder(root, fps=15, name_prefix=EVIL, episode_trigger=lambda e: True) as rec:
        note = {"note": "</script><script>alert(1)</script>", "<key>": "&amp;"}
        rec.submit([painted(300 + k) for k in range(9)], episode_index=3, metadata=note)
    made.append(Made(f"{EVIL}-episode-3.mp4", 9, 15, 300, 3))
    # A step clip whose sidecar is gone: the manifest still knows its episode.
    with Recorder(
        root, fps=12, name_prefix="steps", step_trigger=lambda s: s == 5, video_length=6
    ) as rec:
        rec.submit([painted(400 + k) for k in range(20)], episode_index=4)
    (root / "steps-step-5.json").unlink()
    made.append(Made("steps-step-5.mp4", 6, 12, 406, 4))
    # Adaptive quality that changed preset within the video (at keyframes), and AV1.
    fills = itertools.chain([0.0] * 2, [0.9] * 2, itertools.repeat(0.0))
    with Recorder(root, fps=8, name_prefix="tuned", episode_trigger=lambda e: True) as rec:
        quality_of(rec)._fill = lambda: next(fills)  # type: ignore[attr-defined]
        (tuned,) = rec.submit([painted(500 + k) for k in range(48)], episode_index=5)
    assert len(tuned.result().preset_changes) >= 2
    made.append(Made("tuned-episode-5.mp4", 48, 8, 500, 5))
    with Recorder(
        root, fps=10, name_prefix="av1", episode_trigger=lambda e: True, codec="av1"
    ) as rec:
        rec.submit([painted(600 + k) for k in range(20)], episode_index=6)
    made.append(Made("av1-episode-6.mp4", 20, 10, 600, 6))
    # No sidecar, no manifest line: probed; the episode comes from the name.
    with Recorder(
        root, fps=30, name_prefix="plain", episode_trigger=lambda e: True, sidecars=False
    ) as rec:
        rec.submit([painted(700 + k) for k in range(30)], episode_index=7)
    made.append(Made("plain-episode-7.mp4", 30, 30, 700, 7))
    return made


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Made]]:
    root = tmp_path_factory.mktemp("gallery")
    made = make_videos(root)
    build_gallery(root)
    return root, made


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


# -- the page --------------------------------------------------------------------------------


def test_scan_sorts_by_episode_and_finds_metadata(tmp_path: Path) -> None:
    made = make_videos(tmp_path)
    entries = scan(tmp_path)
    assert [e.file for e in entries] == [m.file for m in made]
    sources = {e.file: e.source for e in entries}
    assert sources == {
        "rl-video-episode-0.mp4": "sidecar",
        "rl-video-episode-1.mp4": "sidecar",
        "rl-video-episode-2.webm": "sidecar",
        f"{EVIL}-episode-3.mp4": "sidecar",
        "steps-step-5.mp4": "manifest",
        "tuned-episode-5.mp4": "sidecar",
        "av1-episode-6.mp4": "sidecar",
        "plain-episode-7.mp4": "probe",
    }
    for entry, m in zip(entries, made, strict=True):
        assert entry.error is None
        assert entry.info["frames"] == m.frames == len(decode(tmp_path / m.file).frames)
        assert entry.info["fps"] == pytest.approx(m.fps)
        assert entry.info["episode_index"] == m.episode
    assert entries[1].metadata == {"seed": 11, "return": 3.5}
    assert entries[1].info["width"] == 101  # the sidecar's original size, not the padded one
    assert entries[-1].info["width"] == 112  # probed
    assert entries[-1].info["codec"] == "h264"


def test_posters_are_pngs_of_the_first_frame(gallery: tuple[Path, list[Made]]) -> None:
    root, made = gallery
    tags = parse((root / "index.html").read_text())
    videos = [attrs for tag, attrs in tags if tag == "video"]
    assert [urllib.parse.unquote(v["src"] or "") for v in videos] == [m.file for m in made]
    for attrs, m in zip(videos, made, strict=True):
        poster = attrs["poster"] or ""
        prefix = "data:image/png;base64,"
        assert poster.startswith(prefix)
        data = base64.b64decode(poster[len(prefix) :])
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with av.open(io.BytesIO(data)) as container:
            image = next(container.decode(video=0)).to_ndarray(format="rgb24")
        assert read_index(image) == m.first


def test_posters_are_scaled_down(tmp_path: Path) -> None:
    with Recorder(tmp_path, episode_trigger=lambda e: True) as rec:
        rec.submit([np.zeros((400, 600, 3), np.uint8)] * 2)
    (entry,) = scan(tmp_path)
    assert entry.poster is not None
    with av.open(io.BytesIO(entry.poster)) as container:
        image = next(container.decode(video=0))
    assert (image.width, image.height) == (320, 213)


def test_every_dynamic_string_is_escaped_and_nothing_is_external(
    gallery: tuple[Path, list[Made]],
) -> None:
    root, made = gallery
    page = (root / "index.html").read_text()
    assert "<b>" not in page
    assert "alert(1)</script>" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "evil &lt;b&gt;&quot;&amp;&#x27;#?% x-episode-3" in page
    assert "&lt;key&gt;" in page
    assert page.count("<script>") == 1  # ours, inline
    tags = parse(page)
    assert sum(tag == "article" for tag, _ in tags) == len(made)
    for tag, attrs in tags:
        assert tag not in ("iframe", "object", "embed", "base")
        if tag == "script":
            assert "src" not in attrs
        for name in ("src", "href", "poster"):
            url = attrs.get(name)
            if url is None:
                continue
            if url.startswith("data:image/png;base64,") or (tag, url) == ("link", "data:,"):
                continue
            parts = urllib.parse.urlsplit(url)
            assert not parts.scheme, url  # relative: in the folder
            assert not parts.netloc, url
            assert (root / urllib.parse.unquote(parts.path)).is_file(), url
    csp = next(a for t, a in tags if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in (csp["content"] or "")
    # Our script only, by its hash: 'unsafe-inline' would run any script that got in.
    (ours,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(ours.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in (csp["content"] or "")
    assert "script-src 'unsafe-inline'" not in (csp["content"] or "")


def test_unreadable_video_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "rl-video-episode-0.mp4").write_bytes(b"not a video at all")
    (tmp_path / "rl-video-episode-0.json").write_text("{not json")
    (tmp_path / ".rl-video-episode-1.abc.rec-tmp").write_bytes(b"half written")
    page = build_gallery(tmp_path).read_text()
    (entry,) = scan(tmp_path)
    assert entry.error is not None
    assert entry.error.startswith("cannot read the video")
    assert entry.poster is None
    assert 'class="error"' in page
    assert "rec-tmp" not in page
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No videos in this folder yet" in build_gallery(empty).read_text()


def test_a_torn_manifest_line_loses_only_its_own_video(tmp_path: Path) -> None:
    with Recorder(tmp_path, fps=10, episode_trigger=lambda e: True) as rec:
        rec.submit([painted(0)] * 3, episode_index=0, metadata={"policy": "ckpt-good-0042"})
        rec.submit([painted(1)] * 3, episode_index=1, metadata={"policy": "ckpt-torn-0043 é"})
    for sidecar in tmp_path.glob("*.json"):
        sidecar.unlink()  # only the manifest knows the metadata now
    manifest = tmp_path / "manifest.jsonl"
    lines = manifest.read_bytes().splitlines()
    good, torn = (next(line for line in lines if word in line) for word in (b"good", b"torn"))
    cut = torn.index("é".encode()) + 1  # inside the UTF-8 sequence: the line does not decode
    manifest.write_bytes(good + b"\n" + torn[:cut] + b'\n[1, 2]\n\n"text"\n')
    entries = {e.file: e for e in scan(tmp_path)}
    kept = entries["rl-video-episode-0.mp4"]
    assert (kept.source, kept.metadata) == ("manifest", {"policy": "ckpt-good-0042"})
    assert entries["rl-video-episode-1.mp4"].source == "probe"
    page = build_gallery(tmp_path).read_text()
    assert "<dt>policy</dt><dd>ckpt-good-0042</dd>" in page
    assert page.count("no sidecar: probed") == 1


def test_build_gallery_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_gallery(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        build_gallery(tmp_path / "file")


# -- in a browser ----------------------------------------------------------------------------


@pytest.fixture
def served(gallery: tuple[Path, list[Made]]) -> Iterator[str]:
    """The gallery folder over http://127.0.0.1 (file:// media can behave differently)."""
    root, _ = gallery
    with serving(root) as url:
        yield url


def test_server_answers_byte_ranges(served: str, gallery: tuple[Path, list[Made]]) -> None:
    root, made = gallery
    name = made[0].file
    data = (root / name).read_bytes()
    url = served + urllib.parse.quote(name)

    def get(range_: str | None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(url, headers={"Range": range_} if range_ else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    status, headers, body = get(None)
    assert (status, body, headers["Accept-Ranges"]) == (200, data, "bytes")
    assert headers["Content-type"] == "video/mp4"
    status, headers, body = get("bytes=10-19")
    assert (status, body) == (206, data[10:20])
    assert headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert get("bytes=-7")[2] == data[-7:]
    assert get(f"bytes={len(data) - 3}-")[2] == data[-3:]
    assert get(f"bytes=5-{len(data) + 100}")[2] == data[5:]
    status, headers, _ = get(f"bytes={len(data)}-")
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(data)}")
    assert get("bytes=0-1,5-6")[0] == 200  # several ranges: the whole file, as RFC 9110 allows
    assert get(None)[0] == 200
    # Numbers too long for int() are still compared with the size (valid ranges).
    huge = "9" * 5000
    status, headers, _ = get(f"bytes={huge}-")
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(data)}")
    status, headers, body = get(f"bytes=5-{huge}")
    assert (status, body) == (206, data[5:])
    status, headers, body = get(f"bytes=-{huge}")
    assert (status, body) == (206, data)
    status, headers, body = get("bytes=0000000000000000000000000000010-19")
    assert (status, body) == (206, data[10:20])
    # Invalid ones are ignored (RFC 9110 §14.1.1): the whole file.
    for invalid in ["bytes=20-10", f"bytes={huge}-10", "bytes=-", "bytes=1-2-3", "items=0-1"]:
        status, headers, body = get(invalid)
        assert (status, body) == (200, data), invalid


# Loads, plays until the clock moves (as scripts/gallery_check.py does), then seeks to a frame
# and reads its top rows of pixels.
PLAY_AND_READ = (
    "async (video, seekTo) => {"
    + PLAY
    + """
  const seeked = wait(["seeked", "error"]);
  video.currentTime = seekTo;
  await seeked;
  // The frame drawn can lag "seeked" under load (seen once with a webm): two painted frames.
  for (let i = 0; i < 2; i++) await new Promise((resolve) => requestAnimationFrame(resolve));
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0);
  const pixels = Array.from(ctx.getImageData(0, 0, 96, 8).data);
  return {
    loaded, played, playError, pixels,
    duration: video.duration, width: video.videoWidth, height: video.videoHeight,
    error: video.error && (video.error.code + " " + video.error.message),
  };
}
"""
)


def test_chromium_plays_every_video(
    chromium: Any, served: str, gallery: tuple[Path, list[Made]], tmp_path: Path
) -> None:
    _, made = gallery
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(served + "index.html")
    probe = page.evaluate(
        """() => document.createElement("video").canPlayType('video/mp4; codecs="avc1.64001f"')"""
    )
    assert probe == "probably", "this Chromium cannot decode H.264 (build without it?)"

    videos = page.query_selector_all("video")
    assert len(videos) == len(made)
    by_file = {m.file: m for m in made}
    for handle in videos:
        m = by_file.pop(urllib.parse.unquote(handle.get_attribute("src") or ""))
        middle = m.frames // 2
        got = handle.evaluate(PLAY_AND_READ, (middle + 0.5) / m.fps)
        assert got["error"] is None, (m.file, got["error"])
        assert got["playError"] is None, (m.file, got["playError"])
        assert got["loaded"]["readyState"] >= 2, m.file  # HAVE_CURRENT_DATA
        assert got["played"]["time"] > 0, m.file
        assert got["duration"] == pytest.approx(m.frames / m.fps, abs=0.5 / m.fps), m.file
        assert got["width"] % 2 == 0
        assert got["height"] % 2 == 0
        top = np.array(got["pixels"], np.uint8).reshape(CELL, 96, 4)[..., :3]
        assert read_index(top) == m.first + middle, m.file  # the browser decoded that frame

    # The filter hides the cards whose name does not match.
    page.fill("#filter", "EPISODE-1")
    visible = page.locator("article.card:visible h2").all_inner_texts()
    assert visible == ["rl-video-episode-1"]
    assert "1 shown" in page.inner_text("header")
    page.fill("#filter", "evil episode")
    assert page.locator("article.card:visible h2").all_inner_texts() == [f"{EVIL}-episode-3"]
    page.fill("#filter", "")
    assert page.locator("article.card:visible").count() == len(made)

    shot = tmp_path / "gallery.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    print(f"screenshot: {shot}")

    assert problems == []  # no CSP violation, no script error
    outside = [u for u in requests if not u.startswith((served, "data:"))]
    assert outside == []
    assert {urllib.parse.unquote(u[len(served) :]) for u in requests if u.startswith(served)} >= {
        m.file for m in made
    }


def test_chromium_plays_from_file_urls_too(chromium: Any, gallery: tuple[Path, list[Made]]) -> None:
    root, made = gallery
    page = chromium.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto((root / "index.html").as_uri())
    states = page.evaluate(
        """async () => Promise.all(Array.from(document.querySelectorAll("video"), (v) =>
             new Promise((resolve) => {
               const done = () => resolve([v.readyState, v.error && v.error.code]);
               if (v.readyState >= 2 || v.error) done();
               v.addEventListener("loadeddata", done, { once: true });
               v.addEventListener("error", done, { once: true });
               v.load();
             })))"""
    )
    assert len(states) == len(made)
    assert all(ready >= 2 and error is None for ready, error in states), states
    assert problems == []


def test_a_script_that_got_into_the_page_does_not_run(
    chromium: Any, gallery: tuple[Path, list[Made]], tmp_path: Path
) -> None:
    root, _ = gallery
    page_text = (root / "index.html").read_text()
    # As if a string had escaped escaping: an inline script of someone else's, before ours.
    injected = page_text.replace("<main", "<script>document.title = 'pwned'</script><main", 1)
    (tmp_path / "index.html").write_text(injected)
    page = chromium.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto((tmp_path / "index.html").as_uri())
    assert page.title() == root.name
    # Ours ran (it fills the series menu) and the browser said why the other did not (the
    # videos are not beside this copy: their errors aside).
    assert page.locator("#series option").count() > 1
    refused = [p for p in problems if "ERR_FILE_NOT_FOUND" not in p]
    assert len(refused) == 1, refused
    assert "violates the following Content Security Policy directive" in refused[0]


def test_gallery_title_is_the_folder_name(gallery: tuple[Path, list[Made]]) -> None:
    root, _ = gallery
    page = (root / "index.html").read_text()
    assert re.search(rf"<title>{re.escape(root.name)}</title>", page)
