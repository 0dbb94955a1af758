"""The spending page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from generations import spending


def _shift(year: int, month: int, by: int) -> str:
    index = year * 12 + (month - 1) + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@require_GET
def spending_page(request: HttpRequest) -> HttpResponse:
    """A month per backend: charged, refunded, net, videos. Staff see everyone's."""
    error = ""
    try:
        year, month = spending.parse_month(request.GET.get("month"))
    except ValueError as exc:
        error = str(exc)
        year, month = spending.parse_month(None)
    staff = request.user.is_staff
    report = spending.month_report(None if staff else request.user, year, month, staff_view=staff)
    context = {
        "report": report,
        "error": error,
        "previous": _shift(year, month, -1),
        "next": _shift(year, month, 1),
        "everyone": staff,
    }
    return render(request, "generations/spending.html", context)
