"""Serving a folder's live gallery over HTTP, with the byte ranges browsers need to seek."""

from __future__ import annotations

import functools
import http.server
import io
import ipaddress
import json
import os
import re
import socket
import urllib.parse
from typing import Any

from recorder._folder.gallery import INDEX, inside
from recorder._folder.html import ENCODING_ERRORS
from recorder._folder.live import LiveFolder

UPDATES = "_recorder/updates"

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
#: the names that are this machine whatever address is bound (with the port, in Host).
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
#: the addresses that bind every interface.
_ANY = frozenset({"", "0.0.0.0", "::"})
# A Host header: a name or IPv4 address, or an IPv6 one in brackets; then maybe a port.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]/@\s]+)(?::([0-9]{1,5}))?")


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
        if (
            match is None
            or not any(match.groups())
            or _reversed(*match.groups())
            or not os.path.isfile(path)
        ):  # no range, several (RFC 9110 allows 200), an invalid one (ignored: 200)...
            return super().send_head()
        try:
            f = open(path, "rb")  # noqa: SIM115 - returned to the base class, which closes it
        except OSError:
            self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            size = os.fstat(f.fileno()).st_size
            first, last = match.groups()
            if first:
                start, end = _number(first, size), _number(last, size - 1) if last else size - 1
            else:  # "bytes=-N": the last N bytes
                start, end = size - _number(last, size), size - 1
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


class GalleryRequestHandler(RangeRequestHandler):
    """The live gallery at ``/``, its updates, and the folder's files, nothing else.

    Only regular files directly or deeper in the folder are served, after resolving symlinks;
    no path with a component starting with ``.`` (``..``, temporary files), no directory listing.
    Only requests whose ``Host`` names this server are answered (see :func:`serve`).
    """

    live: LiveFolder
    hosts: frozenset[str] = LOOPBACK_NAMES
    any_address = False
    port = 0
    quiet = True

    def send_head(self) -> Any:
        """Route: the page, the updates, or a file of the folder (404 for anything else)."""
        self._left = None
        if not self._host_allowed():
            # A page of another site reaching us by DNS rebinding: its name is not ours.
            self.send_error(http.HTTPStatus.MISDIRECTED_REQUEST, "Host not served here")
            return None
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/", "/" + INDEX):
            return self._page()
        if url.path == "/" + UPDATES:
            offset = urllib.parse.parse_qs(url.query).get("offset", [""])[-1]
            if not offset.isdigit() or not offset.isascii():
                self.send_error(http.HTTPStatus.BAD_REQUEST, "offset: a byte offset (0, 1, ...)")
                return None
            body = json.dumps(self.live.updates(_number(offset, 2**63))).encode()
            return self._answer(body, "application/json")
        if not self._servable(urllib.parse.unquote(url.path)):
            self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def _page(self) -> io.BytesIO | None:
        try:
            page = self.live.page()
        except (FileNotFoundError, NotADirectoryError):  # the folder went away
            self.send_error(http.HTTPStatus.NOT_FOUND, "The folder is gone")
            return None
        return self._answer(page.encode("utf-8", ENCODING_ERRORS), "text/html; charset=utf-8")

    def _host_allowed(self) -> bool:
        """Whether ``Host`` names this server: one of :attr:`hosts` (or any IP address when
        :attr:`any_address`), with :attr:`port` (without one: port 80)."""
        match = _HOST.fullmatch((self.headers.get("Host") or "").strip().lower())
        if match is None:
            return False
        name, port = match.groups()
        if (int(port) if port else 80) != self.port:
            return False
        return name in self.hosts or (self.any_address and _is_address(name))

    def translate_path(self, path: str) -> str:
        """The local file of *path*, whose escapes are bytes of a file name as the gallery's
        links quote them (``os.fsencode``): a name that is not UTF-8 maps back to itself."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        name = os.fsdecode(urllib.parse.unquote_to_bytes(path))
        # Quoted again so that the stdlib's unquote (UTF-8, surrogatepass) gives *name* back.
        return str(super().translate_path(urllib.parse.quote(name, errors="surrogatepass")))

    def _servable(self, path: str) -> bool:
        parts = [p for p in path.split("/") if p]
        if not parts or any(p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return False
        local = self.translate_path(self.path)  # unquotes and drops ?query itself
        return os.path.isfile(local) and inside(local, self.directory)

    def _answer(self, body: bytes, content_type: str) -> io.BytesIO:
        self.send_response(http.HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet unless asked (the CLI logs requests)."""
        if not self.quiet:
            super().log_message(format, *args)


def serve(
    folder: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    quiet: bool = True,
    title: str | None = None,
    poll_ms: int = 1000,
) -> http.server.ThreadingHTTPServer:
    """An HTTP server of *folder*'s live gallery; call ``serve_forever()`` on it.

    ``/`` is the gallery, rendered at each load, whose page then asks for the videos saved
    since (``manifest.jsonl`` followed); the videos are served with byte ranges.

    A request is answered only if its ``Host`` header names this server (any other gets 421,
    so a web page cannot read the folder by DNS rebinding): ``localhost``, ``127.0.0.1``,
    ``[::1]``, *host* and the address it bound, with the port; when *host* binds every
    interface (``0.0.0.0``), also this machine's name and any IP address.

    Args:
        folder: the folder of videos.
        host: the address (or name) to bind; the default is this machine only.
        port: the port; 0 picks a free one (``server.server_port``).
        quiet: do not log requests to stderr.
        title: the page's title; the folder's name by default.
        poll_ms: how often the page asks for new videos.

    Raises:
        OSError: the address cannot be bound (in use...).
    """

    class Handler(GalleryRequestHandler):
        pass

    Handler.live = LiveFolder(folder, title, poll_ms)
    Handler.quiet = quiet
    handler = functools.partial(Handler, directory=os.fspath(folder))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    Handler.port = server.server_port
    Handler.any_address = host.strip() in _ANY
    names = {_host_name(host), _host_name(str(server.server_address[0]))}
    if Handler.any_address:
        names.add(socket.gethostname())
    Handler.hosts = LOOPBACK_NAMES | {n.lower() for n in names if n}
    return server


def _host_name(host: str) -> str:
    """*host* as a ``Host`` header names it: an IPv6 address in brackets."""
    host = host.strip()
    return f"[{host}]" if ":" in host else host


def _is_address(name: str) -> bool:
    """Whether the Host name *name* is an IP address (a rebinding attack needs a DNS name)."""
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") else name)
    except ValueError:
        return False
    return True


def _number(digits: str, cap: int) -> int:
    """``min(int(digits), cap)``, without parsing thousands of digits (int() refuses them)."""
    digits = digits.lstrip("0") or "0"
    return cap if len(digits) > len(str(cap)) else min(int(digits), cap)


def _reversed(first: str, last: str) -> bool:
    """Whether the range ``first-last`` ends before it starts: invalid (RFC 9110 §14.1.1)."""
    if not (first and last):
        return False
    first, last = first.lstrip("0") or "0", last.lstrip("0") or "0"
    return (len(last), last) < (len(first), first)
