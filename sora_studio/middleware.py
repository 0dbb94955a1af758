"""Request hygiene shared by every page."""

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat

# The OpenAI-compatible API (generations/gateway): its clients read errors as JSON, in OpenAI's shape.
API_PREFIX = "/v1/"


def refusal(request: HttpRequest, status: int, message: str, code: str) -> HttpResponse:
    """A refusal before any view runs: plain text for pages, OpenAI's error shape under /v1/."""
    if request.path.startswith(API_PREFIX):
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
        response = HttpResponse(json.dumps({"error": error}), status=status, content_type="application/json")
        response["x-should-retry"] = "false"
    else:
        response = HttpResponse(message, status=status, content_type="text/plain")
    # So the client can read the answer while the server still waits for (or drains) the body.
    # ("Connection: close" is hop-by-hop: WSGI leaves it to the server.)
    response["Content-Length"] = str(len(response.content))
    return response


class RejectNulCharactersMiddleware:
    """A NUL character in a query parameter or form field is never meaningful here, and PostgreSQL
    refuses it in text (a DataError, so a 500). Answer 400 with a plain reason before any view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if self._has_nul(request.GET) or (request.method == "POST" and self._has_nul(request.POST)):
            return refusal(request, 400, "Bad request: a field contains a NUL character.", "invalid_value")
        return self.get_response(request)

    @staticmethod
    def _has_nul(params) -> bool:
        return any("\x00" in key or any("\x00" in value for value in values) for key, values in params.lists())


class RequestSizeLimitMiddleware:
    """Refuse a body larger than MAX_REQUEST_BYTES from its Content-Length, before reading any of it.

    Django caps urlencoded and JSON bodies (DATA_UPLOAD_MAX_MEMORY_SIZE) but not multipart files:
    FILE_UPLOAD_MAX_MEMORY_SIZE only decides when an upload spills to disk, so a 10 GB "clip" would be
    read to the end before a form could say it is too big. Under WSGI, Django reads at most
    Content-Length bytes of a body and nothing of a body without one (chunked), so checking the
    header bounds what is read; a chunked body is refused (411) rather than silently seen as empty.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        declared = request.META.get("CONTENT_LENGTH") or ""
        if not declared and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return refusal(
                request, 411, "Length required: send the request with a Content-Length header.", "length_required"
            )
        try:
            length = int(declared or 0)
        except ValueError:
            return refusal(request, 400, "Bad request: Content-Length is not a number.", "invalid_body")
        limit = settings.MAX_REQUEST_BYTES
        if length > limit:
            sizes = f"{filesizeformat(length)} sent, {filesizeformat(limit)} at most"
            return refusal(request, 413, f"Request too large: {sizes}.", "request_too_large")
        return self.get_response(request)
