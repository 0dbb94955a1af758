from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from generations.webhooks import receive as callbacks


@csrf_exempt  # a provider has no session: the signature is what is checked
@login_not_required
@require_POST
def receive(request: HttpRequest, backend_id: int) -> HttpResponse:
    """A provider's completion callback for one of `backend_id`'s jobs."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0  # the size middleware has answered 400 already
    if declared > settings.WEBHOOK_MAX_BYTES:
        return _plain(413, f"A callback is at most {settings.WEBHOOK_MAX_BYTES} bytes.")
    try:
        body = request.body
    except RawPostDataException:  # sent as a form, which no provider does: its body was parsed away
        return _plain(400, "A callback's body is JSON.")
    outcome = callbacks.receive(backend_id, request.headers, body)
    return _plain(outcome.status, outcome.reason)


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
