"""Telling staff, on the pages that list backends, about one that is misconfigured."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest

from generations.providers.models import Backend
from sora_studio.htmx import partial_wanted


def note_malformed_offers(request: HttpRequest, backends: list[Backend]) -> None:
    """Tell staff why a backend is missing from the choices (creators see "offers nothing" in the estimate)."""
    if not request.user.is_staff or partial_wanted(request):
        return
    for backend in backends:
        if problem := backend.offer_problem:
            messages.warning(
                request,
                f"{backend.name} offers nothing: its offers are malformed. {problem} Fix them in the admin (Backends).",
            )
