"""The spending page: where the money went this month, what it would have cost elsewhere, budgets."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from generations.billing import budgets
from generations.billing.reports.chart import daily_chart
from generations.billing.reports.csv import csv_lines
from generations.billing.reports.elsewhere import elsewhere
from generations.billing.reports.month import month_entries, month_report, parse_month, shift_month, version
from generations.billing.reports.projection import projection
from sora_studio.htmx import partial_wanted, vary_on_htmx

DEFAULT_PROJECTION = (500, 10)  # the seed's example: 500 ten-second videos a month


def _month(request: HttpRequest) -> tuple[int, int, str]:
    try:
        year, month = parse_month(request.GET.get("month"))
        return year, month, ""
    except ValueError as exc:
        year, month = parse_month(None)
        return year, month, str(exc)


def _projection_input(request: HttpRequest) -> tuple[int, int, str]:
    videos, seconds = DEFAULT_PROJECTION
    try:
        videos = int(request.GET.get("videos") or videos)
        seconds = int(request.GET.get("seconds") or seconds)
        if not (1 <= videos <= 1_000_000 and 1 <= seconds <= 60):
            raise ValueError
    except ValueError:
        return *DEFAULT_PROJECTION, "Projection: videos 1–1,000,000 a month, 1–60 seconds each."
    return videos, seconds, ""


@require_GET
def spending_page(request: HttpRequest) -> HttpResponse:
    """The month: totals, daily chart, breakdowns, re-pricing, projection and budgets. Staff see everyone."""
    if request.GET.get("format") == "csv":
        return spending_csv(request)
    year, month, error = _month(request)
    staff = request.user.is_staff
    scope = None if staff else request.user
    current = version(scope, year, month)
    if partial_wanted(request) and request.GET.get("version") == current:
        return vary_on_htmx(HttpResponse(status=204))  # nothing new: htmx keeps what it shows

    report = month_report(scope, year, month, staff_view=staff)
    videos, seconds, projection_error = _projection_input(request)
    actual, repriced = elsewhere(scope, year, month)
    context = {
        "report": report,
        "chart": daily_chart(report, scope),
        "elsewhere": repriced,
        "actual": actual,
        "projection": projection(videos, seconds),
        "projection_videos": videos,
        "projection_seconds": seconds,
        "projection_error": projection_error,
        "budgets": budgets.usage(owner=None if staff else request.user),
        "error": error,
        "previous": "{:04d}-{:02d}".format(*shift_month(year, month, -1)),
        "next": "{:04d}-{:02d}".format(*shift_month(year, month, 1)),
        "everyone": staff,
        "version": current,
        "dimensions": [("model", "Model"), ("series", "Series"), ("character", "Character")]
        + ([("user", "Creator")] if staff else []),
    }
    template = "generations/spending.html#report" if partial_wanted(request) else "generations/spending.html"
    return vary_on_htmx(render(request, template, context))


def spending_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every ledger entry of the month as CSV, streamed."""
    year, month, _ = _month(request)
    entries = month_entries(None if request.user.is_staff else request.user, year, month)

    response = StreamingHttpResponse(csv_lines(entries), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="sora-studio-spending-{year:04d}-{month:02d}.csv"'
    return response
