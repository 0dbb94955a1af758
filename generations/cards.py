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

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.messages import get_messages
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.template.loader import get_template, render_to_string
from django.utils.safestring import SafeString, mark_safe

from generations.states import TERMINAL

CARD_TEMPLATE = "generations/gallery.html#card"
FILTERS_TEMPLATE = "generations/gallery.html#filters"
KEEP_SECONDS = 24 * 60 * 60
STATIC_VERSION_OF = ("generations/studio.css", "generations/studio.js")  # hashed names: they change with a deploy


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


def filter_choices(user) -> dict[str, list[tuple[str, str]]]:
    """The filters' choices (the creator's series and characters, the backends) as plain values, by field: the same
    lists key the kept form and page, and are rendered (see `use_choices`). Read on every gallery page, so in one
    statement written once (per kind of viewer) rather than three queries built each time; the same rows as the
    form's own querysets (GalleryFilterForm.choice_sources), in the same order (series newest first, the others by
    name)."""
    from generations.forms import GalleryFilterForm

    with connection.cursor() as cursor:
        cursor.execute(_choices_sql(connection.vendor, user.is_staff), [] if user.is_staff else [user.pk, user.pk])
        rows = cursor.fetchall()
    choices = {}
    for name, (_, written) in GalleryFilterForm.CHOICES.items():
        found = sorted((row for row in rows if row[0] == name), key=lambda row: row[3], reverse=name == "series")
        empty = GalleryFilterForm.base_fields[name].empty_label
        choices[name] = [("", empty)] + [(str(pk), written.format(text)) for _, pk, text, _ in found]
    return choices


@functools.cache
def _choices_sql(vendor: str, staff: bool) -> str:
    from characters.models import Character
    from generations.forms import GalleryFilterForm
    from generations.providers.models import Backend
    from generations.storyboards.models import Series

    quote = connection.ops.quote_name
    # field -> (model, its order: series newest first, the others by their label, sorted in filter_choices)
    sources = {"series": (Series, "created_at"), "character": (Character, None), "backend": (Backend, None)}

    def branch(name):
        model, order = sources[name]
        label, _ = GalleryFilterForm.CHOICES[name]
        owned = any(field.name == "owner" for field in model._meta.get_fields())
        where = f" WHERE {quote('owner_id')} = %s" if owned and not staff else ""
        return (
            f"SELECT '{name}', {quote('id')}, {quote(label)}, CAST({quote(order or label)} AS TEXT) "
            f"FROM {quote(model._meta.db_table)}{where}"
        )

    return " UNION ALL ".join(branch(name) for name in GalleryFilterForm.CHOICES)


def use_choices(form, choices: dict) -> None:
    """Render `form` with choices already read (filter_choices) instead of querying them again."""
    for name, listed in choices.items():
        form.fields[name].choices = listed


def filters(request, form, choices, *, more: int) -> SafeString:
    """The gallery's filters form, with its values and errors; `more`: how many of the folded filters are on."""
    values = [(name, request.GET.getlist(name)) for name in form.fields]
    key = _key("filters", choices, values, form.errors.get_json_data(), more)
    html = cache.get(key)
    if html is None:
        use_choices(form, choices)
        html = render_to_string(FILTERS_TEMPLATE, {"filters": form, "more_filters": more}, request=request)
        cache.set(key, html, KEEP_SECONDS)
    return mark_safe(html)


def whole_page_key(request, rows: list[Row], choices) -> str | None:
    """The key a whole gallery page is kept under, or None when it is not kept: a running card on it (its progress
    moves without its row's updated_at), a message to show once, staff (the backends' health banner), or no CSRF
    cookie yet. The key holds everything the page shows: the viewer, the query string, the cards' (id,
    updated_at), the filters' choices, the CSRF secret its forms carry (a new login rotates it), and the static
    files' version (a deploy renames them)."""
    user = request.user
    secret = request.META.get("CSRF_COOKIE")
    if not secret or user.is_staff or not all(row.finished for row in rows) or len(get_messages(request)):
        return None
    return _key(
        "gallery",
        user.pk,
        user.get_username(),
        secret,
        sorted(request.GET.lists()),
        [(row.pk, row.updated_at.timestamp()) for row in rows],
        choices,
        [staticfiles_storage.url(name) for name in STATIC_VERSION_OF],
    )
