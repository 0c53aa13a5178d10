"""The live gallery: what the server follows and serves, and a page that updates in Chromium."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from helpers import Child, painted, serving
from test_gallery import (
    BLANK,
    LOAD,
    TRACK_LOADS,
    at_frame,
    embedded,
    health,
    open_page,
    publish,
    shown,
)

from recorder import Recorder
from recorder._testing import (
    MANIFEST,
    LiveFolder,
    append_manifest,
    build_gallery,
    live_cached,
    live_module,
    read_manifest,
    serve,
)

HOSTILE = {
    "note": '<img src=x onerror="window.__pwned=1">',
    "</script><script>window.__pwned=2</script>": "&amp; <!--",
}


def record(folder: Path, episode: int, prefix: str = "run", **metadata: Any) -> str:
    """One 6-frame episode saved in *folder*: its file name."""
    with Recorder(folder, fps=10, name_prefix=prefix, episode_trigger=lambda e: True) as rec:
        rec.submit([painted(10 * episode + k) for k in range(6)], episode, metadata=metadata)
    return f"{prefix}-episode-{episode}.mp4"


# -- what the server follows -----------------------------------------------------------------


def test_updates_follow_the_manifest(tmp_path: Path) -> None:
    first = record(tmp_path, 0, **{"return": 1.5})
    live = LiveFolder(tmp_path, poll_ms=250)
    data = embedded(live.page())
    offset = data["live"]["offset"]
    assert offset == (tmp_path / MANIFEST).stat().st_size
    assert data["live"]["poll_ms"] == 250
    assert [p["file"] for p in data["points"]] == [first]
    assert data["points"][0]["values"]["return"] == 1.5
    assert live.updates(offset) == {"offset": offset, "more": False, "events": []}

    second = record(tmp_path, 1, prefix="other", **{"return": -2.0, "seed": 3, "tag": "x"})
    answer = live.updates(offset)
    assert answer["offset"] == (tmp_path / MANIFEST).stat().st_size
    [event] = answer["events"]
    add = event["add"]
    assert add["file"] == second
    assert f'data-file="{second}"' in add["html"]
    point = add["point"]
    assert (point["series"], point["episode"]) == ("other", 1)
    assert point["values"]["return"] == -2.0
    assert point["values"]["seed"] == 3
    assert "tag" not in point["values"]  # only numbers can be plotted
    assert point["values"]["frames"] == 6
    # Asking again from the start gives both, in order.
    assert [e["add"]["file"] for e in live.updates(0)["events"]] == [first, second]


def test_a_line_being_written_waits_and_a_deletion_is_an_event(tmp_path: Path) -> None:
    name = record(tmp_path, 0)
    live = LiveFolder(tmp_path)
    start = embedded(live.page())["live"]["offset"]
    line = json.dumps({"event": "deleted", "file": name}).encode() + b"\n"
    with open(tmp_path / MANIFEST, "ab") as f:
        f.write(line[:10])
    assert live.updates(start) == {"offset": start, "more": False, "events": []}
    with open(tmp_path / MANIFEST, "ab") as f:
        f.write(line[10:])
    answer = live.updates(start)
    assert answer["events"] == [{"remove": name}]
    assert answer["offset"] == start + len(line)


def test_a_server_forgets_the_videos_deleted_while_it_runs(tmp_path: Path) -> None:
    # Keep deletes as a run goes on; the server cached every video it had ever shown (its
    # poster and probe), about 27 MB per 1000 videos of a folder that held 38.
    live = LiveFolder(tmp_path)
    offset = embedded(live.page())["live"]["offset"]
    names = [record(tmp_path, i) for i in range(4)]
    answer = live.updates(offset)
    assert [e["add"]["file"] for e in answer["events"]] == names
    assert live_cached(live) == set(names)
    for name in names[:2]:  # deleted as keep does: the file, then a manifest line
        (tmp_path / name).unlink()
        append_manifest(tmp_path, {"event": "deleted", "file": name, "reason": "test"})
    answer = live.updates(answer["offset"])
    assert answer["events"] == [{"remove": n} for n in names[:2]]
    assert live_cached(live) == set(names[2:])
    (tmp_path / names[2]).unlink()  # gone without a line (by hand): the next page load forgets
    live.page()
    assert live_cached(live) == {names[3]}


def test_a_torn_last_line_does_not_swallow_the_next_video(tmp_path: Path) -> None:
    first = record(tmp_path, 0)
    torn = b'{"path": "run-episode-9.mp4", "fra'  # its writer was killed mid-line
    with open(tmp_path / MANIFEST, "ab") as f:
        f.write(torn)
    live = LiveFolder(tmp_path)
    start = embedded(live.page())["live"]["offset"]
    second = record(tmp_path, 1)
    assert [e["add"]["file"] for e in live.updates(start)["events"]] == [second]
    assert [r["path"] for r in read_manifest(tmp_path)] == [first, second]
    assert (tmp_path / MANIFEST).read_bytes().splitlines()[1] == torn  # a line of its own
    assert [p["file"] for p in embedded(live.page())["points"]] == [first, second]


def test_a_replaced_or_missing_manifest_resets_the_page(tmp_path: Path) -> None:
    live = LiveFolder(tmp_path)
    assert embedded(live.page())["live"]["offset"] == 0
    assert live.updates(0)["events"] == []
    record(tmp_path, 0)
    assert live.updates(10**9)["reset"] is True
    (tmp_path / MANIFEST).unlink()
    assert live.updates(5)["reset"] is True


def test_a_hostile_manifest_cannot_point_outside_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = record(outside, 0)
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "link-episode-0.mp4").symlink_to(outside / secret)
    (folder / "sub").mkdir()
    record(folder / "sub", 1)
    names = ["../outside/" + secret, str(outside / secret), "sub/run-episode-1.mp4"]
    names += ["link-episode-0.mp4", "..", "", "a\\b.mp4", 7]
    for name in names:
        append_manifest(folder, {"path": name, "episode_index": 0})
    live = LiveFolder(folder)
    assert live.updates(0)["events"] == []
    assert embedded(live.page())["points"] == []  # the symlink is not on the page either


def test_hostile_metadata_is_escaped_in_cards_and_data(tmp_path: Path) -> None:
    name = record(tmp_path, 0, prefix="evil <b>&", **HOSTILE)
    live = LiveFolder(tmp_path, title="<i>title</i>")
    page = live.page()
    add = live.updates(0)["events"][0]["add"]
    for html in (page, add["html"]):
        assert "<img src=x" not in html
        assert "<script>window" not in html
        assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in html
    assert "<i>title</i>" not in page
    # One </script> only for each <script>: the data cannot close its element early.
    assert page.count("</script>") == page.count("<script")
    assert embedded(page)["points"][0]["file"] == name
    assert embedded(page)["points"][0]["series"] == "evil <b>&"


def test_updates_carry_the_timeline_and_the_badges(tmp_path: Path) -> None:
    live = LiveFolder(tmp_path)
    start = embedded(live.page())["live"]["offset"]
    name = publish(tmp_path, "run", 0, 6, health=health(BLANK), partial=True)
    [event] = live.updates(start)["events"]
    add = event["add"]
    assert add["timeline"]["columns"]["reward"] == [0, 1, 2, 0, 1, 2]
    assert add["timeline"]["fps"] == 10
    assert add["point"]["suspect"] is True
    assert '<p class="badge suspect">' in add["html"]
    assert '<p class="badge partial">' in add["html"]
    assert '<track kind="captions" src="run-episode-0.vtt"' in add["html"]
    data = embedded(live.page())
    assert data["timelines"][name] == add["timeline"]
    assert data["captions"] == {}  # served: the track loads the file itself
    plain = publish(tmp_path, "plain", 0, 3, episode=1, columns={}, captions=False)
    assert [e["add"]["timeline"] for e in live.updates(start)["events"]] == [add["timeline"], None]
    assert embedded(live.page())["timelines"].keys() == {name}
    assert plain in [p["file"] for p in embedded(live.page())["points"]]


# -- what the server serves ------------------------------------------------------------------


def get(base: str, path: str, host: str | None = None) -> tuple[int, bytes]:
    """GET *path* exactly as written (http.client does not normalize ``..``), *host* as Host."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request("GET", path, headers={} if host is None else {"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_server_serves_only_files_inside_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    folder = tmp_path / "videos"
    folder.mkdir()
    name = record(folder, 0, **{"return": 2.0})
    (folder / "escape.mp4").symlink_to(outside)
    (folder / "inner.mp4").symlink_to(folder / name)
    (folder / ".hidden.mp4").write_bytes(b"x")
    (folder / "sub").mkdir()
    (folder / "sub" / "clip.mp4").write_bytes(b"inside")
    with serving(folder) as base:
        status, body = get(base, "/")
        assert status == 200
        assert b'id="recorder-data"' in body
        assert embedded(body.decode())["live"]["updates"] == "_recorder/updates"
        assert get(base, "/index.html")[0] == 200
        assert get(base, "/" + name) == (200, (folder / name).read_bytes())
        assert get(base, "/inner.mp4")[0] == 200  # a symlink that stays inside
        assert get(base, "/sub/clip.mp4") == (200, b"inside")
        assert get(base, "/" + MANIFEST)[0] == 200
        for path in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/sub/../../secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/escape.mp4",
            "/.hidden.mp4",
            "/sub",
            "/sub/",
            "/nothing.mp4",
            "/" + urllib.parse.quote(str(outside)),
        ]:
            status, body = get(base, path)
            assert status == 404, path
            assert b"secret" not in body, path
        status, body = get(base, "/_recorder/updates?offset=0")
        assert status == 200
        assert json.loads(body)["events"][0]["add"]["file"] == name
        for bad in ["", "?offset=", "?offset=-1", "?offset=abc", "?offset=%D9%A3"]:
            assert get(base, "/_recorder/updates" + bad)[0] == 400, bad
        status, body = get(base, "/_recorder/updates?offset=" + "9" * 5000)
        assert (status, json.loads(body)["reset"]) == (200, True)  # past the end: reload


def test_the_server_serves_a_video_and_captions_whose_name_is_not_utf8(tmp_path: Path) -> None:
    prefix = os.fsdecode(b"caf\xe9")  # a Latin-1 name, as os.listdir gives it
    with Recorder(tmp_path, name_prefix=prefix) as rec:
        rec.submit([painted(i) for i in range(3)], infos=[{"reward": 1.0}] * 3)
    with serving(tmp_path) as base:
        status, page = get(base, "/")
        assert status == 200
        assert b'src="caf%E9-episode-0.vtt"' in page
        for suffix in (".mp4", ".vtt"):
            path = tmp_path / f"{prefix}-episode-0{suffix}"
            assert get(base, "/caf%E9-episode-0" + suffix) == (200, path.read_bytes())
        assert get(base, "/caf%C3%A9-episode-0.mp4")[0] == 404  # the UTF-8 name: not this one


def test_only_requests_naming_this_server_are_answered(tmp_path: Path) -> None:
    name = record(tmp_path, 0)
    with serving(tmp_path) as base:
        port = urllib.parse.urlsplit(base).port
        for host in [
            f"localhost:{port}",
            f"127.0.0.1:{port}",
            f"[::1]:{port}",
            f"LocalHost:{port}",
        ]:
            assert get(base, "/", host)[0] == 200, host
            assert get(base, "/" + name, host)[0] == 200, host
        # A page of evil.example whose name now resolves to 127.0.0.1 (DNS rebinding), a
        # wrong port, no Host at all, and the like: refused, whatever they ask for.
        for host in [
            f"evil.example:{port}",
            f"localhost.evil.example:{port}",
            f"10.0.0.7:{port}",
            "localhost",
            f"localhost:{port + 1}",
            f"localhost:{port}@evil.example",
            "",
        ]:
            for path in ["/", "/" + name, "/" + MANIFEST, "/_recorder/updates?offset=0"]:
                status, body = get(base, path, host)
                assert status == 421, (host, path)
                assert len(body) < 1000, (host, path)
                assert b"run-episode" not in body, (host, path)


def test_a_server_on_every_interface_answers_its_addresses_and_name(tmp_path: Path) -> None:
    with serving(tmp_path, host="0.0.0.0") as base:
        port = urllib.parse.urlsplit(base).port
        for host in ["10.0.0.7", "[fe80::1]", socket.gethostname(), "localhost"]:
            assert get(base, "/", f"{host}:{port}")[0] == 200, host
        for host in ["evil.example", "10.0.0.7.evil.example", "1.2.3"]:
            assert get(base, "/", f"{host}:{port}")[0] == 421, host


def test_a_folder_deleted_while_served_is_a_404(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "videos"
    name = record(folder, 0)
    with serving(folder) as base:
        assert get(base, "/")[0] == 200
        shutil.rmtree(folder)
        assert get(base, "/")[0] == 404
        assert get(base, "/" + name)[0] == 404
        assert json.loads(get(base, "/_recorder/updates?offset=10")[1])["reset"]
        folder.write_text("now a file")
        assert get(base, "/")[0] == 404
        assert json.loads(get(base, "/_recorder/updates?offset=10")[1])["reset"]
        folder.unlink()
        (folder / MANIFEST).mkdir(parents=True)  # its manifest's name now a folder
        assert json.loads(get(base, "/_recorder/updates?offset=10")[1])["reset"]
    assert "Traceback" not in capsys.readouterr().err


def test_a_manifest_line_about_a_video_already_shown_updates_it(tmp_path: Path) -> None:
    # No sidecar: the manifest is the video's only record, and may come after a page showed it.
    name = record(tmp_path, 0)
    (tmp_path / name.replace(".mp4", ".json")).unlink()
    (tmp_path / MANIFEST).unlink()
    live = LiveFolder(tmp_path)
    assert embedded(live.page())["points"][0]["episode"] == 0  # from the name, probed
    append_manifest(tmp_path, {"path": name, "episode_index": 7, "metadata": {"return": 4.5}})
    [event] = live.updates(0)["events"]
    assert (event["add"]["point"]["episode"], event["add"]["point"]["values"]["return"]) == (7, 4.5)
    assert embedded(live.page())["points"][0]["episode"] == 7  # a reload of the same server


def test_the_server_binds_this_machine_only_by_default(tmp_path: Path) -> None:
    server = serve(tmp_path, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


# -- in Chromium, while another process records ----------------------------------------------

# Records one episode per line of stdin ({"prefix", "episode", "metadata"}) and says
# "saved NAME" once the video and its manifest line are on disk.
CHILD = """
import json, sys
from helpers import painted
from recorder import Recorder

recorders = {}
try:
    for line in sys.stdin:
        spec = json.loads(line)
        prefix = spec["prefix"]
        if prefix not in recorders:
            recorders[prefix] = Recorder(
                sys.argv[1], fps=10, name_prefix=prefix, episode_trigger=lambda e: True
            )
        rec = recorders[prefix]
        with rec.episode(spec["episode"], metadata=spec["metadata"]) as ep:
            for k in range(8):
                ep.offer(lambda: painted(100 * spec["episode"] + k))
        rec.flush()
        print("saved", f"{prefix}-episode-{spec['episode']}.mp4", flush=True)
finally:
    for rec in recorders.values():
        rec.close()
"""

# Waits (no polling from Python) until the video plays: its clock moved.
PLAYS = """(file) => {
  const card = document.querySelector(`article[data-file="${file}"]`);
  const video = card && card.querySelector("video");
  return video && !video.paused && video.currentTime > 0 && card.classList.contains("playing");
}"""


def save(child: Child, prefix: str, episode: int, **metadata: Any) -> str:
    """Have the recording process (CHILD) save one episode: the video's name, once saved."""
    child.say(json.dumps({"prefix": prefix, "episode": episode, "metadata": metadata}))
    return child.expect("saved").split()[1]


@pytest.mark.slow
def test_the_open_page_shows_each_new_video_and_its_point(chromium: Any, tmp_path: Path) -> None:
    with Child(CHILD, tmp_path) as child:
        first = save(child, "alpha", 0, **{"return": 1.0})
        with serving(tmp_path, poll_ms=200) as base:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(base)
            page.evaluate("window.__marker = 42")
            assert page.locator("#plot circle").count() == 1

            returns = {first: 1.0}
            plan = [("beta", 1, 3.0), ("alpha", 2, 2.5), ("beta", 3, -1.0), ("alpha", 4, 4.0)]
            for prefix, episode, value in plan:
                name = save(child, prefix, episode, **{"return": value})
                returns[name] = value
                # Within 5 s of being saved, without a reload.
                page.wait_for_selector(f'#grid article[data-file="{name}"]', timeout=5000)
                page.wait_for_selector(f'#plot circle[data-file="{name}"]', timeout=5000)
            unscored = save(child, "beta", 5, seed=9)
            hostile = save(child, "alpha", 6, **HOSTILE)
            page.wait_for_selector(f'article[data-file="{hostile}"]', timeout=5000)
            assert page.evaluate("window.__marker") == 42

            # Newest first; one point per episode with a return, one series per prefix.
            files = page.eval_on_selector_all("#grid article", "a => a.map(e => e.dataset.file)")
            assert files[:3] == [hostile, unscored, "alpha-episode-4.mp4"]
            assert len(files) == len(returns) + 2
            dots = page.eval_on_selector_all("#plot circle", "a => a.map(e => e.dataset.file)")
            assert sorted(dots) == sorted(returns)
            assert page.locator("#legend span").all_inner_texts() == ["alpha", "beta"]
            assert page.evaluate("window.__pwned") is None
            # As text, under "all metadata" (folded: not in inner_text).
            assert HOSTILE["note"] in page.text_content(f'article[data-file="{hostile}"]')

            # A click on a point plays that episode's video, and only it.
            page.click('#plot circle[data-file="beta-episode-3.mp4"]')
            page.wait_for_function(PLAYS, arg="beta-episode-3.mp4", timeout=10000)
            playing = page.eval_on_selector_all(
                "video", "a => a.filter(v => !v.paused).map(v => v.getAttribute('src'))"
            )
            assert playing == ["beta-episode-3.mp4"]
            page.click('#plot circle[data-file="alpha-episode-2.mp4"]')
            page.wait_for_function(PLAYS, arg="alpha-episode-2.mp4", timeout=10000)
            assert page.locator("article.playing").count() == 1

            # Filters: a series, an episode range; the plot follows them.
            page.select_option("#series", "beta")
            shown = page.eval_on_selector_all(
                "#grid article:not([hidden])", "a => a.map(e => e.dataset.file)"
            )
            assert sorted(shown) == ["beta-episode-1.mp4", "beta-episode-3.mp4", unscored]
            assert page.locator("#plot circle").count() == 2
            page.select_option("#series", "")
            page.fill("#ep-min", "2")
            page.fill("#ep-max", "3")
            shown = page.eval_on_selector_all(
                "#grid article:not([hidden])", "a => a.map(e => e.dataset.file)"
            )
            assert sorted(shown) == ["alpha-episode-2.mp4", "beta-episode-3.mp4"]
            page.fill("#ep-min", "")
            page.fill("#ep-max", "")
            page.select_option("#sort", "episode")
            files = page.eval_on_selector_all("#grid article", "a => a.map(e => e.dataset.file)")
            assert files[:2] == [first, "beta-episode-1.mp4"]

            # Another field can be plotted: the seed exists only for one video.
            page.select_option("#field", "seed")
            assert page.eval_on_selector_all("#plot circle", "a => a.map(e => e.dataset.file)") == [
                unscored
            ]
            page.select_option("#field", "return")

            # A video the keep policy deletes leaves the page.
            (tmp_path / first).unlink()
            append_manifest(tmp_path, {"event": "deleted", "file": first})
            page.wait_for_selector(f'article[data-file="{first}"]', state="detached", timeout=5000)
            assert page.locator("#plot circle").count() == len(returns) - 1

            shot = tmp_path / "live.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes().startswith(b"\x89PNG")
            assert problems == []  # no CSP violation, no script error
            assert [u for u in requests if not u.startswith((base, "data:"))] == []
        assert child.wait() == 0  # its stdin closed: it closes its recorders

    # The static page (file://) draws the same plot, without a server.
    build_gallery(tmp_path)
    page = chromium.new_page()
    page.goto((tmp_path / "index.html").as_uri())
    assert page.locator("#plot circle").count() == len(returns) - 1
    assert page.evaluate("window.__pwned") is None
    files = page.eval_on_selector_all("#grid article", "a => a.map(e => e.dataset.file)")
    assert files[0] == "beta-episode-1.mp4"  # by episode when static


def test_a_new_video_plays_in_the_page(chromium: Any, tmp_path: Path) -> None:
    with serving(tmp_path, poll_ms=200) as base:
        page = chromium.new_page()
        page.goto(base)
        assert page.locator("#empty").count() == 1
        name = record(tmp_path, 3, **{"return": 0.5})
        page.wait_for_selector(f'article[data-file="{name}"]', timeout=5000)
        assert page.locator("#empty").count() == 0
        assert page.inner_text("#count") == "1 video"
        page.click(f'#plot circle[data-file="{name}"]')
        page.wait_for_function(PLAYS, arg=name, timeout=10000)
        duration = page.eval_on_selector(f'article[data-file="{name}"] video', "v => v.duration")
        assert duration == pytest.approx(0.6, abs=0.05)
        # A video arriving while one plays does not stop it (newest first: it goes in front).
        other = record(tmp_path, 4, **{"return": 1.5})
        page.wait_for_selector(f'#grid article[data-file="{other}"]', timeout=5000)
        assert page.eval_on_selector_all("#grid article", "a => a.map(e => e.dataset.file)") == [
            other,
            name,
        ]
        assert page.eval_on_selector(f'article[data-file="{name}"] video', "v => v.paused") is False


def test_answers_come_in_bounded_reads_and_a_huge_line_still_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [record(tmp_path, k) for k in range(3)]
    monkeypatch.setattr(live_module, "MAX_READ", 64)  # shorter than any line
    live = LiveFolder(tmp_path)
    seen, offset = [], 0
    for _ in range(10):
        answer = live.updates(offset)
        seen += [e["add"]["file"] for e in answer["events"]]
        offset = answer["offset"]
        if not answer["more"]:
            break
    assert seen == names
    assert offset == (tmp_path / MANIFEST).stat().st_size


def test_a_new_video_comes_with_its_strip_captions_and_health(
    chromium: Any, tmp_path: Path
) -> None:
    with serving(tmp_path, poll_ms=200) as base:
        page, problems = open_page(chromium, base)
        page.select_option("#health", "ok")  # hide suspect
        good = publish(tmp_path, "good", 500, 24, episode=0, health=health())
        page.wait_for_selector(f'article[data-file="{good}"] .strip-plot', timeout=5000)
        card = page.query_selector(f'article[data-file="{good}"]')
        assert page.inner_text("#count") == "1 video"
        assert card.evaluate(LOAD) >= 2
        page.mouse.click(*at_frame(page, card, 17, 24))
        painted, playhead, readout = shown(card)
        assert (painted - 500, playhead) == (17, 17)
        assert readout == "frame 17 · reward 2"
        got = card.evaluate(TRACK_LOADS, False)
        assert (got["before"], got["result"], len(got["cues"])) == ("disabled", "load", 24)
        assert got["src"] == base + "good-episode-0.vtt"

        bad = publish(tmp_path, "bad", 600, 6, episode=1, health=health(BLANK))
        page.wait_for_selector(f'article[data-file="{bad}"]', state="attached", timeout=5000)
        assert page.locator(f'article[data-file="{bad}"]').is_hidden()
        assert page.locator("#health option").nth(1).inner_text() == "only suspect (1)"
        page.select_option("#health", "suspect")
        assert page.locator(f'article[data-file="{bad}"] .strip-plot').is_visible()
        assert page.locator(f'article[data-file="{good}"]').is_hidden()
        assert problems == []
