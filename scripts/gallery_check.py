"""Open a folder's gallery in headless Chromium and check that every video plays.

Usage: python scripts/gallery_check.py FOLDER [--screenshot gallery.png] [--chromium PATH]

Builds FOLDER/index.html if missing, serves FOLDER on 127.0.0.1 (with byte ranges), and for
each <video>: no media error, readyState >= 2 (HAVE_CURRENT_DATA), the clock moves when
played, duration = frames / fps within half a frame. Exits 1 if any video fails, 2 if the
browser is unavailable (needs `pip install playwright` and Debian's `chromium`).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from recorder._testing import INDEX, build_gallery, scan, serve

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# The body of an async (video) => {...}: loads the video, plays it until its clock moves and
# pauses; leaves `loaded` and `played` (readyState / time and error code) and `playError`.
# tests/test_gallery.py plays the same way before it seeks and reads pixels.
PLAY = """
  const wait = (names) => new Promise((resolve) => {
    for (const name of names) video.addEventListener(name, resolve, { once: true });
  });
  if (video.readyState < 2 && !video.error) {
    const ready = wait(["loadeddata", "error"]);
    video.load();
    await ready;
  }
  const loaded = { readyState: video.readyState, error: video.error && video.error.code };
  let playError = null;
  const moved = wait(["timeupdate", "ended", "error"]);
  try { await video.play(); } catch (e) { playError = String(e); }
  if (!playError) await moved;
  const played = { time: video.currentTime, error: video.error && video.error.code };
  video.pause();
"""

CHECK = (
    "async (video) => {"
    + PLAY
    + """
  return {
    src: decodeURIComponent(video.getAttribute("src")), readyState: loaded.readyState,
    playError, time: played.time, duration: video.duration,
    error: video.error && (video.error.code + " " + video.error.message),
  };
}
"""
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--screenshot", type=Path, help="save a full-page screenshot here")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("gallery_check: needs playwright: pip install playwright", file=sys.stderr)
        return 2
    if not (args.folder / INDEX).exists():
        build_gallery(args.folder)
    expected = {e.file: e.info for e in scan(args.folder) if e.is_video}
    server = serve(args.folder, port=0)
    thread = threading.Thread(target=server.serve_forever, name="gallery-check-server")
    thread.start()
    failures = 0
    seen: set[str] = set()
    try:
        with sync_playwright() as p:
            try:
                browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
            except Exception as e:
                print(f"gallery_check: Chromium did not start: {e}", file=sys.stderr)
                return 2
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{server.server_port}/{INDEX}")
            for handle in page.query_selector_all("video"):
                got = handle.evaluate(CHECK)
                seen.add(got["src"])
                info = expected.get(got["src"], {})
                frames, fps = info.get("frames"), info.get("fps")
                want = frames / fps if frames and fps else None
                problems = []
                if got["error"] or got["playError"]:
                    problems.append(got["error"] or got["playError"])
                if got["readyState"] < 2:
                    problems.append(f"readyState {got['readyState']}")
                if got["time"] <= 0:
                    problems.append("did not play")
                if want is not None and abs(got["duration"] - want) > 0.5 / fps:
                    problems.append(f"duration {got['duration']:.3f} s, expected {want:.3f} s")
                failures += bool(problems)
                status = "FAIL " + "; ".join(problems) if problems else "ok"
                print(f"{got['src']:<40} {got['duration']:7.2f} s  {status}")
            for src in sorted(expected.keys() - seen):  # else "N of N play" would be a lie
                failures += 1
                print(f"{src:<40} {'':>9}  FAIL not on the page")
            if args.screenshot:
                page.screenshot(path=str(args.screenshot), full_page=True)
                print(f"screenshot: {args.screenshot}")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    print(f"{len(expected) - failures} of {len(expected)} videos play")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
