"""Serving stored files to the people allowed to see them, from disk or from a bucket.

On disk storage the file is streamed, with HTTP byte ranges: Django's FileResponse sends whole files
only, and browsers seek in a video (and Safari plays one at all) with `Range: bytes=…` requests, so a
single range is answered with 206 here. On a bucket (S3 and the like) the view answers with a redirect
to a short-lived signed link instead: the bucket serves the bytes and the ranges, and no web or worker
process spends its time copying video.
"""

import mimetypes
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.utils.http import content_disposition_header

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


def signs_links(field_file) -> bool:
    """Whether the file's storage hands out signed, expiring links (django-storages' S3 with
    querystring_auth). Disk storage does not: its files are served by our views."""
    return bool(getattr(field_file.storage, "querystring_auth", False))


def signed_url(field_file, *, as_attachment: bool = False, filename: str = "", content_type: str = "") -> str:
    """A link to the stored file that works for MEDIA_URL_SECONDS without a login, answered by the
    bucket with the name and type a download should have."""
    parameters = {}
    if disposition := content_disposition_header(as_attachment, filename or None):
        parameters["ResponseContentDisposition"] = disposition
    content_type = content_type or mimetypes.guess_type(filename or field_file.name)[0] or ""
    if content_type:
        parameters["ResponseContentType"] = content_type
    return field_file.storage.url(field_file.name, parameters=parameters, expire=settings.MEDIA_URL_SECONDS)


def redirect_to_signed_url(field_file, **kwargs) -> HttpResponse:
    response = HttpResponseRedirect(signed_url(field_file, **kwargs))
    # The link is personal and expires: only this browser may keep it, and not for as long as it lives.
    response["Cache-Control"] = f"private, max-age={settings.MEDIA_URL_SECONDS // 2}"
    return response


def serve(request: HttpRequest, field_file, *, stream: bool = False, **kwargs) -> HttpResponse:
    """The stored file (404 if there is none), whole or the one byte range asked for; on a bucket, a
    redirect to a signed link unless `stream` (for a client that must not be redirected).

    `kwargs` are FileResponse's: as_attachment, filename, content_type."""
    if not field_file:
        raise Http404("Not stored yet.")
    if signs_links(field_file) and not stream:
        return redirect_to_signed_url(
            field_file,
            as_attachment=kwargs.get("as_attachment", False),
            filename=kwargs.get("filename", ""),
            content_type=kwargs.get("content_type", ""),
        )
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


@contextmanager
def reading(field_file):
    """The stored file open for reading, and its size. FileNotFoundError if it is not in storage.

    On a bucket this is one GET, streamed: django-storages' own file object asks for the object's head
    twice and downloads all of it before the first read (four times slower per small file, measured)."""
    storage = field_file.storage
    if not signs_links(field_file) or not hasattr(storage, "bucket_name"):
        with field_file.open("rb") as handle:
            yield handle, handle.size
        return
    from botocore.exceptions import ClientError
    from storages.utils import clean_name

    key = storage._normalize_name(clean_name(field_file.name))  # with AWS_LOCATION's prefix, as S3Storage does
    try:
        answer = storage.connection.meta.client.get_object(Bucket=storage.bucket_name, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise FileNotFoundError(field_file.name) from None
        raise
    body = answer["Body"]
    try:
        yield body, answer["ContentLength"]
    finally:
        body.close()


@contextmanager
def local_path(field_file):
    """A path on this machine that ffmpeg (or a person) can read: the file itself on disk storage,
    else a temporary copy, removed when the block ends."""
    try:
        path = field_file.path
    except NotImplementedError:  # a bucket: no local path
        path = None
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="sora-studio-") as workdir:
        target = Path(workdir) / f"file{Path(field_file.name).suffix}"
        with field_file.open("rb") as source, open(target, "wb") as copy:
            shutil.copyfileobj(source, copy, 1024 * 1024)
        yield str(target)


def location(field_file) -> str | None:
    """Where a script finds the stored file: its path on disk storage, else a signed link to it."""
    if not field_file:
        return None
    try:
        return field_file.path
    except NotImplementedError:
        return signed_url(field_file)
