"""Serving stored files to the people allowed to see them, with HTTP byte ranges.

Django's FileResponse sends whole files only; browsers seek in a video (and Safari plays one at
all) with `Range: bytes=…` requests, so a single range is answered with 206 here.
"""

import re

from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024
# Larger than any file we store. A position with more digits means "past the end"; int() would
# refuse one of more than 4,300 digits with a ValueError (Python's guard against slow conversions).
BEYOND = 10**18


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 19 else BEYOND


def _chunks(handle, start: int, length: int):
    with handle:
        handle.seek(start)
        while length > 0:
            data = handle.read(min(CHUNK, length))
            if not data:
                break
            length -= len(data)
            yield data


def serve(request: HttpRequest, field_file, **kwargs) -> HttpResponse:
    """The stored file (404 if there is none), whole or the one byte range asked for."""
    if not field_file:
        raise Http404("Not stored yet.")
    try:
        handle = field_file.open("rb")
        size = field_file.size
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    response = FileResponse(handle, **kwargs)
    response["Accept-Ranges"] = "bytes"
    match = RANGE.match(request.headers.get("Range", "").strip())
    if not match or not any(match.groups()):
        return response
    first, last = match.groups()
    if first:
        start, end = _position(first), min(_position(last) if last else size - 1, size - 1)
    else:  # "bytes=-500": the last 500 bytes
        start, end = max(size - _position(last), 0), size - 1
    if start >= size or start > end:
        # Close the file, not the response: HttpResponse.close() sends request_finished, which closes
        # the request's database connection under the rest of the request.
        handle.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    partial = StreamingHttpResponse(
        _chunks(handle, start, end - start + 1), status=206, content_type=response["Content-Type"]
    )
    partial["Content-Range"] = f"bytes {start}-{end}/{size}"
    partial["Content-Length"] = str(end - start + 1)
    partial["Accept-Ranges"] = "bytes"
    if response.has_header("Content-Disposition"):
        partial["Content-Disposition"] = response["Content-Disposition"]
    return partial
