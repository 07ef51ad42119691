"""HTTP byte ranges (RFC 9110, section 14) for bodies made in memory, such as audio clips.

Browsers ask an <audio> element's source for `Range: bytes=0-` to learn its length and for
later ranges to seek; without answers they show 0:00 and cannot seek before the whole clip has
loaded. Datasette's Response has no range support and the clips are cut per request (not files
Starlette's FileResponse could serve), so the few lines are here.
"""
from __future__ import annotations

import re
from typing import Mapping, Optional

from datasette.utils.asgi import Response

SINGLE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def byte_range(header: Optional[str], length: int) -> Optional[tuple[int, int]] | str:
    """The [first, last] bytes a Range header asks of a body of `length` bytes: None to send
    the whole body (no header, or one this server ignores, e.g. several ranges, as RFC 9110
    allows), or "unsatisfiable"."""
    if not header:
        return None
    match = SINGLE_RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # bytes=-N: the last N bytes
        suffix = int(last)
        if suffix == 0 or length == 0:
            return "unsatisfiable"
        return max(0, length - suffix), length - 1
    start = int(first)
    end = min(int(last), length - 1) if last != "" else length - 1
    if start >= length or (last != "" and int(last) < start):
        return "unsatisfiable"
    return start, end


def ranged_response(request, body: bytes, content_type: str, headers: Mapping[str, str]) -> Response:
    """200 with Content-Length, 206 with Content-Range for a satisfiable Range, 416 otherwise;
    Accept-Ranges always."""
    length = len(body)
    common = {**headers, "accept-ranges": "bytes"}
    wanted = byte_range(request.headers.get("range"), length)
    if wanted == "unsatisfiable":
        return Response(b"", status=416, content_type=content_type,
                        headers={**common, "content-range": f"bytes */{length}", "content-length": "0"})
    if wanted is None:
        return Response(body, status=200, content_type=content_type,
                        headers={**common, "content-length": str(length)})
    start, end = wanted
    return Response(body[start:end + 1], status=206, content_type=content_type,
                    headers={**common, "content-range": f"bytes {start}-{end}/{length}",
                             "content-length": str(end - start + 1)})
