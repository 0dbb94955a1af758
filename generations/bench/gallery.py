"""The gallery benchmark: the real page through the whole middleware stack (Django's test client, logged
in) against a bare view sending the same bytes through the same stack (the floor), and "Load older" at the
first and the last page of a long history.

Used as ROOT_URLCONF while it runs: the studio's URLs plus the floor's.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import path, reverse

from generations.bench.table import Row
from generations.jobs.models import Generation
from generations.views import PAGE_SIZE, _cursor
from sora_studio import urls as studio_urls

FLOOR_PAGE = {"body": b""}


def floor(request: HttpRequest) -> HttpResponse:
    """The least a page can cost: the gallery's own bytes, ready made."""
    return HttpResponse(FLOOR_PAGE["body"])


urlpatterns = [path("bench/floor/", floor, name="bench_floor"), *studio_urls.urlpatterns]

LOAD_OLDER = re.compile(r'hx-get="\?(after=[^"&]+)"')
HTMX = {"HX-Request": "true"}


@dataclass(frozen=True)
class Page:
    ms: float
    queries: int
    cards: int


class GalleryBench:
    def __init__(self, user, *, requests: int, repeat: int):
        self.client = Client()
        self.client.force_login(user)
        self.user = user
        self.requests = requests
        self.repeat = repeat

    def run(self) -> list[Row]:
        with override_settings(ROOT_URLCONF=__name__):
            gallery = reverse("gallery")
            first = self.page(gallery)
            html = self.get(gallery).content
            FLOOR_PAGE["body"] = html
            bare = self.page(reverse("bench_floor"))
            studio_rate = self.rate(gallery)
            floor_rate = self.rate(reverse("bench_floor"))
            page_two = self.page(f"{gallery}?{LOAD_OLDER.search(html.decode())[1]}", HTMX)
            last = self.page(f"{gallery}?after={self.last_cursor()}", HTMX)
        total = Generation.objects.for_user(self.user).count()
        return [
            Row(f"gallery, {first.cards} cards, req/s (floor: a bare view, same {len(html):,} bytes)", studio_rate,
                floor_rate),
            Row("first page (ms)", first.ms, bare.ms, 2),
            Row("queries per page, first page", first.queries, bare.queries, 0),
            Row("'Load older', page 2 (ms)", page_two.ms, digits=2),
            Row(f"'Load older', last page of {total:,} (ms; floor: page 2)", last.ms, page_two.ms, 2),
            Row("queries, last page (floor: page 2)", last.queries, page_two.queries, 0),
        ]  # fmt: skip

    def get(self, url: str, headers: dict | None = None):
        response = self.client.get(url, headers=headers or {})
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        return response

    def page(self, url: str, headers: dict | None = None) -> Page:
        """Median time of `repeat` requests after one to warm up, and the queries one request makes."""
        with CaptureQueriesContext(connection) as captured:
            response = self.get(url, headers)
        queries = len(captured)  # now: the next request empties the log this reads
        times = []
        for _ in range(self.repeat):
            started = time.perf_counter()
            self.get(url, headers)
            times.append(time.perf_counter() - started)
        cards = response.content.decode().count('<article id="gen-')
        return Page(statistics.median(times) * 1000, queries, cards)

    def rate(self, url: str) -> float:
        return self.requests / timed(lambda: [self.get(url) for _ in range(self.requests)])

    def last_cursor(self) -> str:
        """Where "Load older" stands when only the oldest page is left."""
        oldest = Generation.objects.for_user(self.user).order_by("created_at", "pk")
        return _cursor(oldest[PAGE_SIZE])


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
