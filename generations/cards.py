"""The gallery's cards and filters, kept rendered.

A finished video's card shows the same thing until its row changes: every change to what it shows moves the
row's `updated_at` (a state change does; so does an admin settling a possibly billed job, the one ledger
write to a finished job that comes without one). So a card is rendered once per `(id, updated_at)` and
viewer, and a page whose cards are all finished is kept whole under the list of its cards' keys: the gallery
reads the page's rows from the index, and the cards' data (backend, characters, ledger) only for a page it
has not seen. A running card (progress, status) is rendered every time.

The filters form is kept per set of choices (the creator's series and characters, the backends) and values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models import QuerySet
from django.template.loader import get_template, render_to_string
from django.utils.safestring import SafeString, mark_safe

from generations.states import TERMINAL

CARD_TEMPLATE = "generations/gallery.html#card"
FILTERS_TEMPLATE = "generations/gallery.html#filters"
KEEP_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class Row:
    """A card's place and version: what the gallery reads before deciding what to render."""

    pk: int
    created_at: datetime
    updated_at: datetime
    status: str

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def _viewer(user) -> str:
    # Staff see whose video a card is when it is not theirs: their cards differ from the owner's.
    return f"staff{user.pk}" if user is not None and user.is_staff else "owner"


def _key(kind: str, *parts) -> str:
    return f"{kind}:" + hashlib.sha256(repr(parts).encode()).hexdigest()


def card(user, generation) -> SafeString:
    """One card; kept when the video is finished."""
    data = {"generation": generation, "user": user}
    if not generation.is_terminal:
        return mark_safe(get_template(CARD_TEMPLATE).render(data))  # the template engine escaped it
    key = _key("card", generation.pk, generation.updated_at.timestamp(), _viewer(user))
    html = cache.get(key)
    if html is None:
        html = get_template(CARD_TEMPLATE).render(data)
        cache.set(key, html, KEEP_SECONDS)
    return mark_safe(html)


def page(user, rows: list[Row], with_card_data: Callable[[], QuerySet]) -> SafeString:
    """The cards of `rows`, in order. `with_card_data()`: the viewer's generations with what a card shows, built
    and read only when the page is not kept (one query, whatever the number of cards)."""
    if not rows:
        return mark_safe("")
    finished = all(row.finished for row in rows)
    key = _key("cards", _viewer(user), [(row.pk, row.updated_at.timestamp()) for row in rows])
    if finished and (html := cache.get(key)) is not None:
        return mark_safe(html)
    loaded = {generation.pk: generation for generation in with_card_data().filter(pk__in=[row.pk for row in rows])}
    html = "".join(card(user, loaded[row.pk]) for row in rows if row.pk in loaded)
    if finished:
        cache.set(key, html, KEEP_SECONDS)
    return mark_safe(html)


def filters(request, form, *, more: int) -> SafeString:
    """The gallery's filters form, with its values and errors; `more`: how many of the folded filters are on."""
    choices = []
    for name, label, prefix in (("series", "title", ""), ("character", "handle", "@"), ("backend", "name", "")):
        field = form.fields[name]
        # Read once, as plain values (the form has been validated): the same list keys the cache and, if need be,
        # is rendered.
        field.choices = [("", field.empty_label)] + [
            (str(pk), f"{prefix}{text}") for pk, text in field.queryset.values_list("pk", label)
        ]
        choices.append(field.choices)
    values = [(name, request.GET.getlist(name)) for name in form.fields]
    key = _key("filters", choices, values, form.errors.get_json_data(), more)
    html = cache.get(key)
    if html is None:
        html = render_to_string(FILTERS_TEMPLATE, {"filters": form, "more_filters": more}, request=request)
        cache.set(key, html, KEEP_SECONDS)
    return mark_safe(html)
