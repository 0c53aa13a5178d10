"""The gallery page: what it lists, how it escapes, and that Chromium really plays every video."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import os
import re
import shutil
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
from recorder._testing import append_manifest, build_gallery, cli_module, quality_of, scan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from gallery_check import PLAY

EVIL = "evil <b>\"&'#?% x"
HOSTILE = '<img src=x onerror="window.__pwned=1">'


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


def vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def publish(
    folder: Path,
    name: str,
    first: int,
    frames: int,
    fps: float = 10,
    *,
    episode: int = 0,
    columns: dict[str, list[Any]] | None = None,
    captions: bool = True,
    **record: Any,
) -> str:
    """Save a video of painted frames *first*, *first* + 1... in *folder* as a recorder with
    per-frame data does (FEATURES.md's contract): the video, its ``{name}.timeline.json`` and
    ``{name}.vtt``, its sidecar (with *record*'s fields: health, partial...), then its manifest
    line. Returns the video's file name."""
    staging = folder / ".staging"
    # health=False: the sidecar holds the health record the test gives, or none.
    options = {"fps": fps, "name_prefix": name, "episode_trigger": lambda e: True, "health": False}
    with Recorder(staging, **options) as rec:
        rec.submit([painted(first + k) for k in range(frames)], episode_index=episode)
    stem = f"{name}-episode-{episode}"
    sidecar = json.loads((staging / f"{stem}.json").read_text())
    os.replace(staging / f"{stem}.mp4", folder / f"{stem}.mp4")
    shutil.rmtree(staging)
    if columns is None:
        rewards = [float(k % 3) for k in range(frames)]
        returns = [float(sum(rewards[: k + 1])) for k in range(frames)]
        columns = {
            "step": list(range(first, first + frames)),
            "reward": rewards,
            "return": returns,
            "action": [k % 2 for k in range(frames)],
        }
    if columns:
        length = len(next(iter(columns.values())))  # *frames* unless the test says otherwise
        timeline = {"version": 1, "name": stem, "fps": fps, "frames": length, "columns": columns}
        (folder / f"{stem}.timeline.json").write_text(json.dumps(timeline))
        sidecar["timeline"] = f"{stem}.timeline.json"
    if captions:
        cues = "".join(
            f"{vtt_time(k / fps)} --> {vtt_time((k + 1) / fps)}\nstep {first + k} · frame {k}\n\n"
            for k in range(frames)
        )
        (folder / f"{stem}.vtt").write_text("WEBVTT\n\n" + cues, encoding="utf-8")
        sidecar["captions"] = f"{stem}.vtt"
    sidecar.update(record)
    (folder / f"{stem}.json").write_text(json.dumps(sidecar))
    append_manifest(folder, sidecar)
    return f"{stem}.mp4"


def health(why: str | None = None, frames: int = 10) -> dict[str, Any]:
    """A sidecar's health record (FEATURES.md): suspect when *why* is given."""
    return {
        "suspect": why is not None,
        "why": why,
        "frames": frames,
        "blank_frames": frames if why else 0,
        "longest_frozen": frames if why else 1,
        "stale_first_frame": False,
    }


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


def test_files_no_reader_expects_still_make_a_page(tmp_path: Path) -> None:
    with Recorder(tmp_path, fps=10, episode_trigger=lambda e: True) as rec:
        for i in range(3):
            rec.submit([painted(i)] * 3, episode_index=i, metadata={"return": float(i)})
    deep = b"[" * 100_000 + b"]" * 100_000  # json's recursion limit
    (tmp_path / "rl-video-episode-0.json").write_bytes(deep)
    with (tmp_path / "manifest.jsonl").open("ab") as f:
        f.write(deep + b"\n")
    # An int no float holds (written by hand: the recorder refuses it at the call).
    sidecar = json.loads((tmp_path / "rl-video-episode-1.json").read_text())
    sidecar["frames"] = sidecar["metadata"]["return"] = 10**400
    (tmp_path / "rl-video-episode-1.json").write_text(json.dumps(sidecar))
    timeline = tmp_path / "rl-video-episode-1.timeline.json"
    timeline.write_text(json.dumps({"fps": 10, "frames": 3, "columns": {"big": [1, 10**400, 2]}}))
    # A name that is not UTF-8 (a copy of a video, as a tool with another locale may write).
    odd = os.fsencode(tmp_path) + b"/odd-\xff-episode-3.mp4"
    shutil.copyfile(tmp_path / "rl-video-episode-2.mp4", odd)
    page = build_gallery(tmp_path).read_text(encoding="utf-8")
    cards = cards_of(page)
    assert len(cards) == 4
    assert 'href="odd-%FF-episode-3.mp4"' in cards["odd-\\udcff-episode-3.mp4"]  # its bytes
    sources = {e.file: e.source for e in scan(tmp_path)}
    assert sources["rl-video-episode-0.mp4"] == "manifest"  # its nested sidecar is skipped
    assert sources["rl-video-episode-1.mp4"] == "sidecar"


def test_build_gallery_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_gallery(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        build_gallery(tmp_path / "file")


def cards_of(page: str) -> dict[str, str]:
    """Each card's HTML by its data-file."""
    return {
        html.unescape(m.group(1)): m.group(0)
        for m in re.finditer(
            r'<article class="[^"]*" data-name="[^"]*" data-file="([^"]*)".*?</article>', page, re.S
        )
    }


def embedded(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="recorder-data">(.*?)</script>', page)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


BLANK = "all 10 frames are blank (one flat colour): a headless render? <try> MUJOCO_GL=egl & see"


def test_a_card_shows_the_video_first_then_badges_and_key_fields(tmp_path: Path) -> None:
    good = publish(
        tmp_path, "good", 0, 10, episode=0, metadata={"return": 2.5, "seed": 7}, health=health()
    )
    blank = publish(tmp_path, "blank", 0, 10, episode=1, health=health(BLANK))
    cut = publish(tmp_path, "cut", 0, 10, episode=2, partial=True, captions=False, columns={})
    page = build_gallery(tmp_path).read_text()
    cards = cards_of(page)
    assert list(cards) == [good, blank, cut]

    def key(card: str) -> dict[str, str]:
        dl = re.search(r'<dl class="key">(.*?)</dl>', card, re.S)
        assert dl is not None
        return dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", dl.group(1)))

    assert key(cards[good]) == {
        "episode": "0",
        "return": "2.5",
        "length": "10 frames · 1.00 s",
        "health": "ok",
    }
    assert key(cards[blank])["health"] == "suspect"
    assert "health" not in key(cards[cut])  # no health record: nothing claimed
    for card in cards.values():
        # The video first; everything else under "all metadata", after the key fields.
        assert re.match(r'<article class="[^"]*"[^>]*><video ', card)
        details = card.index("<details><summary>all metadata</summary>")
        assert card.index('<dl class="key">') < details
        assert card.index("<dt>fps</dt>") > details
    folded = cards[good][cards[good].index("<details>") :]
    assert "<dt>seed</dt><dd>7</dd>" in folded
    assert "<dt>return</dt>" not in folded  # a key field: not twice

    # The suspect badge says why, escaped; the card is marked for the eye and for the filter.
    assert re.match(r'<article class="card suspect"', cards[blank])
    assert f'<p class="badge suspect"><b>suspect</b> {html.escape(BLANK)}</p>' in cards[blank]
    assert "<try>" not in page
    assert "badge" not in cards[good]
    assert re.match(r'<article class="card partial"', cards[cut])
    assert '<p class="badge partial"><b>partial</b> cut short' in cards[cut]
    points = {p["file"]: p for p in embedded(page)["points"]}
    assert [points[f]["suspect"] for f in (good, blank, cut)] == [False, True, False]
    # Captions as a track, off by default (no "default" attribute); none without a vtt.
    assert (
        f'<track kind="captions" src="{blank[:-4]}.vtt" srclang="en" label="timeline">'
        in cards[blank]
    )
    assert "<track" not in cards[cut]
    assert page.count('<span id="count">3 videos</span>') == 1


def test_one_video_is_one_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(tmp_path, "one", 0, 4)
    assert cli_module.main(["gallery", str(tmp_path)]) == 0
    assert f"({1} video)" in capsys.readouterr().out
    assert '<span id="count">1 video</span>' in (tmp_path / "index.html").read_text()


def test_a_recovered_partial_is_marked_as_recovered(tmp_path: Path) -> None:
    name = publish(tmp_path, "crashed", 0, 5, partial=True, recovered_from=".crashed.mp4.tmp")
    card = cards_of(build_gallery(tmp_path).read_text())[name]
    assert '<p class="badge partial"><b>partial</b> recovered after a crash' in card


def test_the_timeline_is_embedded_small_and_checked(tmp_path: Path) -> None:
    n = 5000
    spike = [0.0] * n
    spike[3333] = 7.0  # one frame: still visible once the column is reduced
    columns = {
        "step": list(range(100, 100 + n)),
        "reward": spike,
        "value": [0.1 + k / 3 if k % 100 else None for k in range(n)],
        "done": [k == n - 1 for k in range(n)],
        "action": [[0.5, -0.5]] * n,  # a vector: not a strip
        "phase": ["reach"] * n,  # a string: not a strip
        HOSTILE: [float("nan"), 1.5, float("inf")] + [2.0] * (n - 3),
    }
    long = publish(tmp_path, "long", 0, 4, fps=30, episode=0, columns=columns, captions=False)
    short = publish(tmp_path, "short", 0, 4, episode=1)
    page = build_gallery(tmp_path).read_text()
    timelines = embedded(page)["timelines"]
    assert timelines[short] == {
        "fps": 10,
        "frames": 4,
        "columns": {
            "step": {"start": 0, "step": 1, "count": 4},
            "reward": [0, 1, 2, 0],
            "return": [0, 1, 3, 3],
            "action": [0, 1, 0, 1],
        },
    }
    strip = timelines[long]
    assert (strip["fps"], strip["frames"]) == (30, n)
    assert sorted(strip["columns"]) == sorted(["step", "reward", "value", "done", HOSTILE])
    assert strip["columns"]["step"] == {"start": 100, "step": 1, "count": n}
    reward = strip["columns"]["reward"]
    assert len(reward["x"]) == len(reward["y"]) <= 1000
    assert 7.0 in reward["y"]
    assert reward["x"][reward["y"].index(7.0)] == 3333
    assert all(a < b for a, b in zip(reward["x"], reward["x"][1:], strict=False))
    value = strip["columns"]["value"]
    assert max(y for y in value["y"] if y is not None) == pytest.approx(0.1 + 4999 / 3, rel=1e-5)
    assert min(strip["columns"][HOSTILE]["y"]) == 1.5  # nan and inf are no points
    assert HOSTILE not in page  # only as JSON escaped inside the script element
    # All of it in a few tens of kB, whatever the episode's length.
    assert len(json.dumps(strip, allow_nan=False)) < 60_000


def test_a_timeline_that_is_not_ours_or_outside_is_ignored(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "videos"
    folder.mkdir()
    good = {"version": 1, "fps": 10, "frames": 2, "columns": {"reward": [1, 2]}}
    (outside / "secret.timeline.json").write_text(json.dumps(good))
    (outside / "secret.vtt").write_text("WEBVTT\n")
    bad_cases: list[tuple[dict[str, Any], Any]] = [
        ({"timeline": "../outside/secret.timeline.json"}, None),
        ({"timeline": str(outside / "secret.timeline.json")}, None),
        ({}, "link"),  # the default name, a symlink that leaves the folder
        ({}, "[1, 2"),  # torn
        ({}, json.dumps({"fps": 5, "columns": [[1, 2]]})),  # not columns by name
        ({}, json.dumps({"columns": {"note": ["a", "b"]}, "fps": 5})),  # nothing to plot
        ({}, "[" * 100_000),  # too deep for the parser
        ({}, '{"fps": 1, "columns": {"r": [' + "9" * 5000 + "]}}"),  # int() refuses it
    ]
    names = []
    for k, (fields, content) in enumerate(bad_cases):
        name = publish(folder, f"v{k}", 0, 2, episode=k, columns={}, captions=False, **fields)
        stem = name[:-4]
        if content == "link":
            (folder / f"{stem}.timeline.json").symlink_to(outside / "secret.timeline.json")
            (folder / f"{stem}.vtt").symlink_to(outside / "secret.vtt")
        elif content is not None:
            (folder / f"{stem}.timeline.json").write_text(content)
        names.append(name)
    entries = {e.file: e for e in scan(folder)}
    assert sorted(entries) == sorted(names)
    for name in names:
        assert entries[name].timeline is None, name
        assert entries[name].captions is None, name
    # A sidecar's fps is used when the timeline has none; a huge file is not read.
    fine = publish(folder, "fine", 0, 2, episode=99, columns={}, captions=False)
    (folder / "fine-episode-99.timeline.json").write_text(json.dumps({"columns": {"r": [1, 2]}}))
    assert scan(folder)[-1].timeline == {"fps": 10, "frames": 2, "columns": {"r": [1, 2]}}
    with open(folder / "fine-episode-99.timeline.json", "r+b") as f:
        f.truncate(17 * 2**20)
    assert {e.file: e for e in scan(folder)}[fine].timeline is None


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


# -- the timeline strip, in a browser --------------------------------------------------------


@pytest.fixture(scope="module")
def strips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Videos with timelines and captions, a suspect one, a partial one without either."""
    root = tmp_path_factory.mktemp("strips")
    other = {
        "reward": [0.5] * 10 + [-1.0] * 10,
        "return": [0.5 * k for k in range(20)],
        HOSTILE: list(range(20)),
    }
    files = {
        "main": publish(
            root, "main", 1000, 30, episode=0, metadata={"return": 9.0}, health=health()
        ),
        "other": publish(
            root, "other", 2000, 20, fps=20, episode=1, columns=other, health=health(BLANK)
        ),
        "cut": publish(root, "cut", 3000, 8, episode=2, partial=True, captions=False, columns={}),
    }
    build_gallery(root)
    return root, files


def open_page(chromium: Any, url: str) -> tuple[Any, list[str]]:
    """A page at *url* and the problems it reports (console errors, script errors)."""
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    return page, problems


# Loads the card's video up to its first frame.
LOAD = """async (card) => {
  const video = card.querySelector("video");
  if (video.readyState < 2 && !video.error) {
    const ready = new Promise((resolve) => {
      video.addEventListener("loadeddata", resolve, { once: true });
      video.addEventListener("error", resolve, { once: true });
    });
    video.load();
    await ready;
  }
  return video.readyState;
}"""

# Once the card's video is done seeking: the painted rows of the frame it shows (read back as
# test_chromium_plays_every_video does) and the frame its strip's playhead is on.
SHOWN = """async (card) => {
  const video = card.querySelector("video");
  while (video.seeking) {
    await new Promise((resolve) => video.addEventListener("seeked", resolve, { once: true }));
  }
  for (let i = 0; i < 2; i++) await new Promise((resolve) => requestAnimationFrame(resolve));
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0);
  const strip = card.querySelector(".strip-plot");
  return {
    pixels: Array.from(ctx.getImageData(0, 0, 96, 8).data),
    playhead: Number(strip.getAttribute("data-frame")),
    valuenow: Number(strip.getAttribute("aria-valuenow")),
    readout: card.querySelector(".strip-value").textContent,
  };
}"""


def shown(card: Any) -> tuple[int, int, str]:
    """The painted index of the frame *card*'s video shows, its playhead's frame, the readout."""
    got = card.evaluate(SHOWN)
    top = np.array(got["pixels"], np.uint8).reshape(CELL, 96, 4)[..., :3]
    assert got["valuenow"] == got["playhead"]
    return read_index(top), got["playhead"], got["readout"]


def at_frame(page: Any, card: Any, frame: int, frames: int) -> tuple[float, float]:
    """Where on the page the middle of *frame* is on *card*'s strip."""
    strip = card.query_selector(".strip-plot")
    strip.scroll_into_view_if_needed()
    box = strip.bounding_box()
    return box["x"] + (frame + 0.5) / frames * box["width"], box["y"] + box["height"] / 2


def test_the_strip_follows_the_video_and_seeks_it(
    chromium: Any, strips: tuple[Path, dict[str, str]]
) -> None:
    root, files = strips
    with serving(root) as base:  # a page from file:// cannot read its videos' pixels back
        page, problems = open_page(chromium, base)
        follows_and_seeks(page, files)
    assert problems == []


def follows_and_seeks(page: Any, files: dict[str, str]) -> None:
    card = page.query_selector(f'article[data-file="{files["main"]}"]')
    assert card.evaluate(LOAD) >= 2
    assert page.locator(".strip").count() == 2  # the partial clip has no timeline
    assert shown(card) == (1000, 0, "frame 0 · reward 0")

    # Seeking the video (as its own controls do) moves the playhead to the frame on screen.
    for frame, into in [(7, 0.5), (12, 0.05), (12, 0.95), (29, 0.5), (0, 0.3)]:
        card.evaluate(
            "(card, t) => { card.querySelector('video').currentTime = t; }", (frame + into) / 10
        )
        painted, playhead, _ = shown(card)
        assert (painted - 1000, playhead) == (frame, frame), (frame, into)

    # A click on the strip seeks to the frame under the pointer.
    for frame in (21, 3, 29):
        page.mouse.click(*at_frame(page, card, frame, 30))
        painted, playhead, readout = shown(card)
        assert (painted - 1000, playhead) == (frame, frame)
        assert readout == f"frame {frame} · reward {frame % 3}"
    # A drag too, ending where it is let go.
    page.mouse.move(*at_frame(page, card, 5, 30))
    page.mouse.down()
    page.mouse.move(*at_frame(page, card, 16, 30), steps=6)
    page.mouse.up()
    painted, playhead, _ = shown(card)
    assert (painted - 1000, playhead) == (16, 16)
    # The keyboard: the strip is a slider.
    page.keyboard.press("ArrowRight")
    assert shown(card)[:2] == (1017, 17)
    page.keyboard.press("Home")
    assert shown(card)[:2] == (1000, 0)
    page.keyboard.press("End")
    assert shown(card)[:2] == (1029, 29)

    # While it plays, the playhead follows: it is on the frame shown when paused.
    page.keyboard.press("Home")
    shown(card)
    card.evaluate("(card) => card.querySelector('video').play()")
    page.wait_for_function(
        "(card) => Number(card.querySelector('.strip-plot').dataset.frame) >= 6",
        arg=card,
        timeout=10000,
    )
    card.evaluate("(card) => card.querySelector('video').pause()")
    painted, playhead, _ = shown(card)
    assert playhead >= 6
    assert painted - 1000 == playhead

    # Another video, another frame rate.
    other = page.query_selector(f'article[data-file="{files["other"]}"]')
    assert other.evaluate(LOAD) >= 2
    page.mouse.click(*at_frame(page, other, 13, 20))
    painted, playhead, readout = shown(other)
    assert (painted - 2000, playhead) == (13, 13)
    assert readout == "frame 13 · reward -1"


def test_the_strip_plots_the_field_chosen(
    chromium: Any, strips: tuple[Path, dict[str, str]]
) -> None:
    root, files = strips
    page, problems = open_page(chromium, (root / "index.html").as_uri())
    main = page.locator(f'article[data-file="{files["main"]}"]')
    other = page.locator(f'article[data-file="{files["other"]}"]')
    assert main.locator(".strip select option").all_inner_texts() == [
        "reward",
        "return",
        "action",
        "step",
    ]
    assert other.locator(".strip select option").all_inner_texts() == ["reward", "return", HOSTILE]
    assert main.locator(".strip-range").inner_text() == "0 … 2"
    line = main.locator(".strip-line").get_attribute("d")
    # The field selector works from the keyboard, and every strip that has the field follows.
    main.locator(".strip select").focus()
    page.keyboard.press("ArrowDown")
    assert main.locator(".strip select").input_value() == "return"
    assert other.locator(".strip select").input_value() == "return"
    assert main.locator(".strip-line").get_attribute("d") != line
    assert main.locator(".strip-range").inner_text() == "0 … 30"
    assert other.locator(".strip-value").inner_text() == "frame 0 · return 0"
    # A field named by a hostile string is text, wherever it shows.
    other.locator(".strip select").select_option(HOSTILE)
    assert other.locator(".strip-value").inner_text() == f"frame 0 · {HOSTILE} 0"
    assert main.locator(".strip select").input_value() == "return"  # main has no such field
    assert page.evaluate("window.__pwned") is None
    assert page.locator("article img").count() == 0
    # From file:// too, a click on the strip seeks the video to the middle of that frame.
    page.mouse.click(*at_frame(page, other.element_handle(), 11, 20))
    assert other.locator(".strip-plot").get_attribute("data-frame") == "11"
    assert other.locator("video").evaluate("v => v.currentTime") == pytest.approx(11.5 / 20)
    assert problems == []


# Turns the card's captions on and waits for its track to load (or fail, unless *later*: the
# page from file:// gives the track its source only once it is turned on).
TRACK_LOADS = """async (card, later) => {
  const track = card.querySelector("track");
  const before = track.track.mode;
  const loaded = new Promise((resolve) => {
    track.addEventListener("load", () => resolve("load"), { once: true });
    if (!later) track.addEventListener("error", () => resolve("error"), { once: true });
  });
  track.track.mode = "showing";  // what the captions button of the controls does
  const result = await loaded;
  const cues = Array.from(track.track.cues || [], (c) => [c.startTime, c.endTime, c.text]);
  return { before, result, src: track.src, cues };
}"""


@pytest.mark.parametrize("where", ["file", "served"])
def test_the_captions_load_as_a_track(
    chromium: Any, strips: tuple[Path, dict[str, str]], where: str
) -> None:
    root, files = strips
    with serving(root) as base:
        url = (root / "index.html").as_uri() if where == "file" else base
        page, problems = open_page(chromium, url)
        card = page.query_selector(f'article[data-file="{files["main"]}"]')
        got = card.evaluate(TRACK_LOADS, where == "file")
    assert got["before"] == "disabled"  # off until asked for
    assert got["result"] == "load", got
    # From file://, the page hands the track its captions, unpacked, as a blob.
    assert got["src"].startswith("blob:" if where == "file" else base)
    assert len(got["cues"]) == 30
    assert got["cues"][3] == [pytest.approx(0.3), pytest.approx(0.4), "step 1003 · frame 3"]
    assert problems == []


def test_the_health_filter(chromium: Any, strips: tuple[Path, dict[str, str]]) -> None:
    root, files = strips
    page, problems = open_page(chromium, (root / "index.html").as_uri())

    def visible() -> list[str]:
        return sorted(
            page.eval_on_selector_all(
                "#grid article:not([hidden])", "a => a.map(e => e.dataset.file)"
            )
        )

    assert page.locator("#health option").all_inner_texts() == [
        "all videos",
        "only suspect (1)",
        "hide suspect",
    ]
    page.select_option("#health", "suspect")
    assert visible() == [files["other"]]
    assert "1 shown" in page.inner_text("header")
    page.select_option("#health", "ok")
    assert visible() == sorted([files["main"], files["cut"]])
    # The plot follows the filter; a suspect point is marked.
    page.select_option("#field", "frames")
    assert page.locator("#plot circle").count() == 2
    page.select_option("#health", "")
    assert visible() == sorted(files.values())
    assert page.eval_on_selector_all("#plot circle.suspect", "a => a.map(e => e.dataset.file)") == [
        files["other"]
    ]
    badge = page.locator(f'article[data-file="{files["other"]}"] .badge.suspect')
    assert badge.inner_text() == f"suspect {BLANK}"
    assert problems == []
