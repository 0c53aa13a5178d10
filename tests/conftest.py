"""Shared fixtures: every test leaves no recorder thread behind."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from gallery_check import ARGS as CHROMIUM_ARGS

CHROMIUM = os.environ.get("RECORDER_CHROMIUM", "/usr/bin/chromium")

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def _recorder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("recorder-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fail a test that leaves a recorder worker thread running (a Recorder not closed)."""
    before = set(_recorder_threads())
    yield
    left = [t for t in _recorder_threads() if t not in before]
    assert not left, f"threads left running: {[t.name for t in left]}"


@pytest.fixture
def no_worker_left() -> Iterator[None]:
    """Fail a test after which any recorder worker thread runs (the wrappers' own ones too)."""
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("recorder-worker")]
    assert not left, f"recorder threads left running: {left}"


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium through playwright; skipped (reason printed) when unavailable.

    Set RECORDER_REQUIRE_BROWSER=1 (CI) to fail instead of skipping.
    """

    def unavailable(reason: str) -> None:
        if os.environ.get("RECORDER_REQUIRE_BROWSER"):
            pytest.fail(f"RECORDER_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)

    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as e:
            unavailable(f"Chromium at {CHROMIUM} did not start: {str(e).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()
