"""Serving a folder over HTTP with the byte ranges that browsers need to seek in videos."""

from __future__ import annotations

import functools
import http.server
import os
import re
from typing import Any

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


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
