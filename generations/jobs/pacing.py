"""How often a running job is polled."""

from django.conf import settings


def with_webhook(seconds: float, webhook: bool) -> float:
    """The delay before the next poll of a job, slower where the provider will call back when it ends:
    the callback makes the studio poll at once, so these polls are only the safety net for a callback
    that never comes."""
    return seconds * settings.WEBHOOK_POLL_FACTOR if webhook else seconds


def after_hint(hint: float | None) -> float:
    """The delay before the next poll: the provider's own hint where it gave one (never below
    GENERATION_MIN_POLL_INTERVAL, never above GENERATION_MAX_POLL_INTERVAL), else the studio's interval."""
    if hint is None:
        return settings.GENERATION_POLL_INTERVAL
    return min(max(hint, settings.GENERATION_MIN_POLL_INTERVAL), settings.GENERATION_MAX_POLL_INTERVAL)


def next_poll(hint: float | None, webhook: bool) -> float:
    """Seconds until a running job is polled again: the provider's hint, slowed where it will call back."""
    return with_webhook(after_hint(hint), webhook)
