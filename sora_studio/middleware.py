"""Request hygiene shared by every page."""

from django.http import HttpRequest, HttpResponseBadRequest


class RejectNulCharactersMiddleware:
    """A NUL character in a query parameter or form field is never meaningful here, and PostgreSQL
    refuses it in text (a DataError, so a 500). Answer 400 with a plain reason before any view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if self._has_nul(request.GET) or (request.method == "POST" and self._has_nul(request.POST)):
            return HttpResponseBadRequest("Bad request: a field contains a NUL character.", content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _has_nul(params) -> bool:
        return any("\x00" in key or any("\x00" in value for value in values) for key, values in params.lists())
