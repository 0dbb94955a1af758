"""Login throttling on top of django-axes: one limit per account, a higher one per client address.

django-axes counts failed `authenticate()` calls (so /login/ and /admin/login/ alike) in its
AccessAttempt table, one row per username, address and browser. It compares a single number with a
single limit; this handler gives each rule of AXES_LOCKOUT_PARAMETERS its own limit.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


@dataclass
class Rule:
    name: str  # "account" or "address"
    limit: int
    attempts: QuerySet  # failures still inside the cool-off


class LoginThrottle(AxesDatabaseHandler):
    """Locks an account after LOGIN_FAILURE_LIMIT failures and an address after
    LOGIN_ADDRESS_FAILURE_LIMIT, each for the cool-off after its last counted failure."""

    def rules(self, request: HttpRequest, credentials: dict | None = None) -> list[Rule]:
        account, address = self.get_user_attempts(request, credentials)  # AXES_LOCKOUT_PARAMETERS order
        return [
            Rule("account", settings.LOGIN_FAILURE_LIMIT, account),
            Rule("address", settings.LOGIN_ADDRESS_FAILURE_LIMIT, address),
        ]

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # Axes locks when this reaches AXES_FAILURE_LIMIT. Report the rule nearest its own limit, moved
        # onto that scale, so "locked" means "some rule reached its limit".
        headroom = min(rule.limit - failures(rule.attempts) for rule in self.rules(request, credentials))
        return settings.AXES_FAILURE_LIMIT - headroom

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # A successful log-in clears its account's failures, not the address's failures on other accounts:
        # otherwise an attacker with one account could wipe the address count between guesses.
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count


def failures(attempts: QuerySet) -> int:
    return sum(attempts.values_list("failures_since_start", flat=True))


def locked_until(rule: Rule, cool_off: timedelta) -> datetime | None:
    """When the rule lets go: the cool-off after the newest failure without which it would be under its limit."""
    counted = 0
    for attempt_time, count in rule.attempts.order_by("-attempt_time").values_list(
        "attempt_time", "failures_since_start"
    ):
        counted += count
        if counted >= rule.limit:
            return attempt_time + cool_off
    return None


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """429 with the log-in page's look, saying which rule holds and until when; Retry-After in seconds."""
    cool_off = get_cool_off(request)
    now = timezone.now()
    holds = [
        (until, rule.name)
        for rule in LoginThrottle().rules(request, credentials)
        if (until := locked_until(rule, cool_off)) and until > now
    ]
    until, held = max(holds) if holds else (now + cool_off, "account")
    seconds = max(1, math.ceil((until - now).total_seconds()))
    context = {"until": until, "minutes": math.ceil(seconds / 60), "held": held}
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response


def client_address(request: HttpRequest) -> str | None:
    """The address failures are counted against.

    Behind TRUSTED_PROXY_COUNT reverse proxies that each append the address they saw to
    X-Forwarded-For, it is the one the outermost of them saw: that many entries from the right.
    Entries further left were written by the client and prove nothing. With no trusted proxy (the
    default) X-Forwarded-For is ignored and the connecting address is used.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
