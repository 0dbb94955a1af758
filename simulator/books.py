"""The simulated provider's own books: what it created, for which idempotency key and prompt, what it
billed, and which faults it injected.

A client's ledger can then be checked against the provider's word, as an accountant checks a bank statement:
`read()` for code in the same process (tests), `GET /simulator/books` for anyone holding a simulator key
(it sees that key's jobs and faults only).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from .auth import endpoint
from .models import Fault, Job


def read(owner: str | None = None) -> dict[str, Any]:
    """The books, for one key's owner or for everyone: plain JSON types, amounts as decimal strings.

    - `jobs`: every job, with the key it was created with, its status and what it is billed now;
    - `creates` / `repeated_creates` per protocol: new jobs, and creates answered with an existing job
      because their idempotency key had made it (those are not new creates);
    - `duplicates`: idempotency keys and prompts that made more than one job, per protocol (the same
      video started twice);
    - `billed` per protocol and in total;
    - `faults`: how many were injected, by kind, and on creates by kind and moment (before or after the
      create was served).
    """
    now = timezone.now()
    jobs = Job.objects.all() if owner is None else Job.objects.filter(owner=owner)
    faults = Fault.objects.all() if owner is None else Fault.objects.filter(owner=owner)
    rows, creates, repeated, billed = [], Counter(), Counter(), {}
    for job in jobs.order_by("created_at", "id"):
        amount = job.billed(now)
        billed[job.protocol] = billed.get(job.protocol, Decimal(0)) + amount
        creates[job.protocol] += 1
        repeated[job.protocol] += job.repeated_creates
        rows.append(
            {
                "id": job.id,
                "protocol": job.protocol,
                "prompt": job.prompt,
                "idempotency_key": job.sent_idempotency_key,
                "status": job.phase(now).status,
                "seconds": job.seconds,
                "repeated_creates": job.repeated_creates,
                "billed": _usd(amount),
            }
        )
    return {
        "jobs": rows,
        "creates": dict(creates),
        "repeated_creates": dict(repeated),
        "duplicates": {
            "idempotency_key": _twice(jobs.exclude(sent_idempotency_key=""), "sent_idempotency_key"),
            "prompt": _twice(jobs, "prompt"),
        },
        "billed": {
            **{protocol: _usd(amount) for protocol, amount in billed.items()},
            "total": _usd(sum(billed.values(), Decimal(0))),
        },
        "faults": {
            "total": faults.count(),
            "by_kind": dict(Counter(faults.values_list("kind", flat=True))),
            "on_creates": {
                f"{kind} {moment}": n
                for kind, moment, n in faults.filter(is_create=True)
                .values_list("kind", "moment")
                .annotate(n=Count("pk"))
                .order_by("kind", "moment")
            },
        },
    }


def _usd(amount: Decimal) -> str:
    """Dollars as a decimal string: to the cent ("0.40"), or exactly where a price has finer fractions."""
    cents = amount.quantize(Decimal("0.01"))
    return str(cents if cents == amount else amount.normalize())


def _twice(jobs, field: str) -> list[dict[str, Any]]:
    """Values of `field` that more than one job of a protocol shares."""
    shared = jobs.values("protocol", field).annotate(n=Count("pk")).filter(n__gt=1).order_by("protocol", field)
    return [{"protocol": row["protocol"], field.removeprefix("sent_"): row[field], "jobs": row["n"]} for row in shared]


def _unauthorized() -> JsonResponse:
    return JsonResponse({"error": {"message": "A simulator key is needed to read its books."}}, status=401)


@endpoint(["GET"], _unauthorized)
def books(request: HttpRequest, owner: str) -> HttpResponse:
    """This key's books (`Authorization: Bearer <simulator key>`)."""
    return JsonResponse(read(owner))
