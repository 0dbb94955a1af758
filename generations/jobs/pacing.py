"""How often a running job is polled."""

from django.conf import settings


def with_webhook(seconds: float, webhook: bool) -> float:
    """The delay before the next poll of a job, slower where the provider will call back when it ends:
    the callback makes the studio poll at once, so these polls are only the safety net for a callback
    that never comes."""
    return seconds * settings.WEBHOOK_POLL_FACTOR if webhook else seconds
