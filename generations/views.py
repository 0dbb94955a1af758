"""The studio's pages: gallery, a generation and its files and actions, the new-generation form."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseClientRefresh, trigger_client_event

from characters import mentions
from characters.forms import ExtractCharacterForm
from characters.models import Character
from generations import cards
from generations.forms import CreatorSettingsForm, GalleryFilterForm, GenerationForm, RemixForm
from generations.jobs import images, lifecycle, router
from generations.jobs.forms import image_from_choice
from generations.jobs.models import CreatorSettings, Generation, ImageRole, Policy
from generations.providers.models import Backend, Refusal
from generations.providers.notices import note_malformed_offers
from generations.states import ACTIVE, Status
from sora_studio import files
from sora_studio.htmx import partial_wanted, redirect_to, vary_on_htmx

PAGE_SIZE = 24
PREFILL_FIELDS = ("prompt", "backend", "policy", "model", "seconds", "size")
RETRYABLE = (Status.FAILED, Status.TIMED_OUT, Status.CANCELLED, Status.UNKNOWN)
MENTION_SUGGESTIONS = 8
NOTHING_YET = "none"  # the arrivals cursor of a gallery page that showed no video


# --- Helpers -----------------------------------------------------------------------------------


def _get_generation_for_user(request: HttpRequest, pk: int) -> Generation:
    return get_object_or_404(Generation.objects.for_user(request.user).with_card_data(), pk=pk)


# --- Gallery ------------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cursor(generation: Generation) -> str:
    """Where the next page starts: (created_at in microseconds, pk) of the last card shown."""
    return _cursor_at(generation.created_at, generation.pk)


def _cursor_at(created_at: datetime, pk: int) -> str:
    delta = created_at - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}_{pk}"


def _after_cursor(generations: QuerySet, cursor: str) -> QuerySet:
    """Keyset pagination: what comes after the cursor in (-created_at, -pk) order. No OFFSET, so
    page 100 costs what page 1 costs. A cursor that does not parse starts from the top."""
    try:
        micros, pk = (int(part) for part in cursor.split("_"))
        created_at = EPOCH + timedelta(microseconds=micros)
    except (ValueError, OverflowError):
        return generations
    # The plain range first: an OR alone keeps the database from using the (owner, -created_at) index,
    # and "Load older" would slow down with depth.
    return generations.filter(created_at__lte=created_at).filter(
        Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk)
    )


def _before_cursor(generations: QuerySet, cursor: str) -> QuerySet:
    """What came after the cursor in time: newer than the card it names. A cursor that does not parse: nothing."""
    try:
        micros, pk = (int(part) for part in cursor.split("_"))
        created_at = EPOCH + timedelta(microseconds=micros)
    except (ValueError, OverflowError):
        return generations.none()
    return generations.filter(created_at__gte=created_at).filter(
        Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk)
    )


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _filtered(generations: QuerySet, filters: dict) -> QuerySet:
    """Apply the gallery's filters; the date range compares created_at directly, so it uses the index."""
    if status := filters.get("status"):
        generations = generations.filter(status__in=ACTIVE) if status == "active" else generations.filter(status=status)
    if series := filters.get("series"):
        generations = generations.filter(scene__series=series)
    if character := filters.get("character"):
        generations = generations.filter(characters=character)
    if backend := filters.get("backend"):
        generations = generations.filter(backend=backend)
    if start := filters.get("date_from"):
        generations = generations.filter(created_at__gte=_day_start(start))
    if end := filters.get("date_to"):
        generations = generations.filter(created_at__lt=_day_start(end + timedelta(days=1)))
    if q := filters.get("q"):
        generations = generations.filter(prompt__icontains=q)
    return generations


def _query(params, **changes) -> str:
    """The query string without empty values, with `changes` applied (None removes a key)."""
    pairs = {key: value for key, value in params.items() if value and key not in changes}
    pairs.update({key: value for key, value in changes.items() if value is not None})
    return urlencode(pairs)


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    """The creator's generations, newest first, filtered, one keyset page at a time.

    A whole page whose cards are all finished is kept rendered, keyed by everything it shows (generations.cards):
    then it costs the page's rows, the filters' choices and a cache read."""
    filters, active = None, {}
    if GalleryFilterForm.sets_a_filter(request.GET):
        filters = GalleryFilterForm(request.GET, user=request.user)
        filters.is_valid()  # a filter that does not validate is shown with its error and ignored
        active = filters.active
    generations = _filtered(Generation.objects.for_user(request.user), active)
    if "since" in request.GET and request.htmx:
        return vary_on_htmx(_arrivals(request, generations, request.GET["since"]))
    cursor = request.GET.get("after", "")
    if cursor:
        generations = _after_cursor(generations, cursor)
    # The page's rows first, from the index alone; the cards' data is read only for cards not kept (cards.py).
    page = generations.order_by("-created_at", "-pk")
    rows = [cards.Row(*row) for row in page.values_list("pk", "created_at", "updated_at", "status")[: PAGE_SIZE + 1]]
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    context = {
        "cards": cards.page(request.user, rows, lambda: generations.with_card_data()),
        "filtering": bool(active),
        "first_page": not cursor,
        "next_query": _query(request.GET, after=_cursor_at(rows[-1].created_at, rows[-1].pk)) if has_more else "",
        "first_query": _query(request.GET, after=None),
        "arrivals_query": _query(
            request.GET, after=None, since=_cursor_at(rows[0].created_at, rows[0].pk) if rows else NOTHING_YET
        ),
    }
    if partial_wanted(request):
        # "Load more" appends the next cards in place of itself; the filters replace the whole list.
        template = "generations/gallery.html#more" if cursor else "generations/gallery.html#gallery"
    else:
        template = "generations/gallery.html"
        choices = cards.filter_choices(request.user)
        kept = cards.whole_page_key(request, rows, choices)
        if kept and (html := cache.get(kept)) is not None:
            return vary_on_htmx(HttpResponse(html))
        if filters is None:  # nothing set: the form is built only to be rendered
            filters = GalleryFilterForm(request.GET, user=request.user)
            filters.is_valid()
        context["filters"] = cards.filters(request, filters, choices, more=len(active.keys() - {"q"}))
        if request.user.is_staff:
            context["unhealthy_backends"] = list(Backend.objects.unhealthy())
        response = render(request, template, context)
        if kept:
            cache.set(kept, response.content.decode(), cards.KEEP_SECONDS)
        return vary_on_htmx(response)
    return vary_on_htmx(render(request, template, context))


def _arrivals(request: HttpRequest, generations: QuerySet, since: str) -> HttpResponse:
    """Videos made since the first page was shown (elsewhere: another tab, a script through the API), for the
    page's arrivals poll: their cards go on top of the list, and the poll moves on to the newest. Nothing new:
    204, and htmx leaves the page alone. A page that showed no video at all reloads (it has no list to add to)."""
    newer = _before_cursor(generations, since) if since != NOTHING_YET else generations
    arrived = list(newer.with_card_data().order_by("-created_at", "-pk")[:PAGE_SIZE])
    if not arrived:
        return HttpResponse(status=204)
    if since == NOTHING_YET:
        return HttpResponseClientRefresh()
    context = {"cards": arrived, "arrivals_query": _query(request.GET, after=None, since=_cursor(arrived[0]))}
    return render(request, "generations/gallery.html#arrivals", context)


def _finished_event(generation: Generation) -> dict:
    """What the toast says when a job the page was watching ends."""
    url = reverse("generation_detail", args=[generation.pk])
    if generation.status == Status.COMPLETED:
        message = f"Video #{generation.pk} is ready."
    elif generation.status == Status.CANCELLED:
        message = f"Video #{generation.pk} was cancelled."
    else:
        reason = f": {generation.error_message}" if generation.error_message else "."
        message = f"Video #{generation.pk} {generation.get_status_display().lower()}{reason}"
    return {"id": generation.pk, "status": generation.status, "message": message[:300], "url": url}


def _stop_polling(response: HttpResponse, generation: Generation) -> HttpResponse:
    """The answer to the poll that sees the end: stop polling (286) and tell the page (a toast)."""
    response.status_code = HTMX_STOP_POLLING
    return trigger_client_event(response, "jobFinished", _finished_event(generation))


@require_GET
def card(request: HttpRequest, pk: int) -> HttpResponse:
    """One gallery card; a running card polls this until it answers 286 (stop polling)."""
    generation = _get_generation_for_user(request, pk)
    if not request.htmx:
        return vary_on_htmx(redirect("generation_detail", pk=pk))
    response = render(request, "generations/gallery.html#card", {"generation": generation})
    if generation.is_terminal:
        _stop_polling(response, generation)
    return vary_on_htmx(response)


# --- A generation -------------------------------------------------------------------------------


def _timeline(generation: Generation) -> list:
    """The states the job went through, each with the time since it was created."""
    events = list(generation.events.all())
    for event in events:
        event.elapsed = max(event.at - generation.created_at, timedelta(0))
    return events


def _render_detail(
    request: HttpRequest,
    generation: Generation,
    *,
    notice: str = "",
    partial: bool = False,
    remix_form: RemixForm | None = None,
) -> HttpResponse:
    native = generation.remixes_natively
    context = {
        "generation": generation,
        "cost_entries": generation.cost_entries.select_related("price").order_by("created_at", "pk"),
        "events": _timeline(generation),
        "attempts": generation.earlier_attempts.select_related("backend"),
        "extract_form": ExtractCharacterForm(owner=request.user),
        "remix_form": remix_form or RemixForm(generation=generation, native=native),
        "remix_native": native,
        "retryable": generation.status in RETRYABLE,
        "checkable": generation.can_check_again,
        "deletable": generation.is_terminal or generation.status == Status.QUEUED,
        "notice": notice,
        "new_from_this": _prefill_query(generation),
    }
    if partial:
        status = HTMX_STOP_POLLING if generation.is_terminal else 200
        return render(request, "generations/detail.html#live", context, status=status)
    return render(request, "generations/detail.html", context)


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Player, prompt as written and as sent, routing, costs, timeline. Its live panel polls this URL."""
    generation = _get_generation_for_user(request, pk)
    partial = partial_wanted(request)
    response = _render_detail(request, generation, partial=partial)
    if partial and generation.is_terminal:
        _stop_polling(response, generation)
    return vary_on_htmx(response)


@require_GET
def video(request: HttpRequest, pk: int) -> FileResponse:
    """The stored MP4, only to its owner (and staff); ?download=1 saves it."""
    generation = _get_generation_for_user(request, pk)
    return files.serve(
        request,
        generation.video,
        as_attachment=request.GET.get("download") == "1",
        filename=f"sora-studio-{generation.pk}.mp4",
        content_type="video/mp4",
    )


@require_GET
def thumbnail(request: HttpRequest, pk: int) -> FileResponse:
    """The stored thumbnail; ?download=1 saves it."""
    generation = _get_generation_for_user(request, pk)
    name = generation.thumbnail.name or ""
    extension = name[name.rfind(".") :] if "." in name else ".webp"
    return files.serve(
        request,
        generation.thumbnail,
        as_attachment=request.GET.get("download") == "1",
        filename=f"sora-studio-{generation.pk}{extension}",
    )


@require_GET
def image(request: HttpRequest, pk: int, role: str) -> FileResponse:
    """A generation's start or end image, as it was sent (cropped to the video's size)."""
    generation = _get_generation_for_user(request, pk)
    if role not in ImageRole.values:
        raise Http404("No such image.")
    kept = get_object_or_404(generation.images, role=role)
    return files.serve(
        request,
        kept.image,
        as_attachment=request.GET.get("download") == "1",
        filename=f"sora-studio-{generation.pk}-{role}.jpg",
        content_type="image/jpeg",
    )


@require_GET
def image_preview(request: HttpRequest) -> HttpResponse:
    """A still or a video's last frame (?source=still:5 or video:12) cropped to ?size=, as it would be sent:
    the new-video form and the scene editor show it before anything is started."""
    try:
        given = image_from_choice(request.user, request.GET.get("source", ""))
        fitted = images.prepare(given, request.GET.get("size", ""))
    except images.ImageProblem as exc:
        return HttpResponse(str(exc), status=404, content_type="text/plain")
    response = HttpResponse(fitted.content, content_type=fitted.content_type)
    response["Cache-Control"] = "private, max-age=60"
    return response


def _refused(request: HttpRequest, pk: int, notice: str) -> HttpResponse:
    """Say why an action was not taken: in the live panel for htmx, as a message on the page otherwise."""
    if request.htmx:
        return _render_detail(request, _get_generation_for_user(request, pk), notice=notice, partial=True)
    messages.error(request, notice)
    return redirect("generation_detail", pk=pk)


def _started(request: HttpRequest, started: lifecycle.Started, message: str) -> HttpResponse:
    messages.success(request, message)
    for warning in started.warnings:
        messages.warning(request, warning)
    return redirect_to(request, reverse("generation_detail", args=[started.generation.pk]))


@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a job that has not been sent yet."""
    generation = _get_generation_for_user(request, pk)
    if not lifecycle.cancel(generation):
        return _refused(request, pk, "It has already been sent to the backend; it can no longer be cancelled.")
    if request.htmx:
        return _render_detail(request, _get_generation_for_user(request, pk), partial=True)
    return redirect("generation_detail", pk=pk)


@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    """The same request again as a new job; the old one and its costs stay as they were."""
    generation = _get_generation_for_user(request, pk)
    if generation.status not in RETRYABLE:
        return _refused(request, pk, "Only a failed, timed-out or cancelled video can be tried again.")
    try:
        again = lifecycle.retry(generation)
    except lifecycle.GenerationRefused as exc:
        return _refused(request, pk, f"Could not try again: {exc}")
    return _started(request, again, f"Trying again as video #{again.generation.pk}.")


@require_POST
def check_again(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the provider once more about a timed-out job; it completes if the provider has finished it."""
    generation = _get_generation_for_user(request, pk)
    notice = lifecycle.check_again(generation)
    if request.htmx:
        return _render_detail(request, _get_generation_for_user(request, pk), notice=notice, partial=True)
    messages.info(request, notice)
    return redirect("generation_detail", pk=pk)


@require_POST
def remix(request: HttpRequest, pk: int) -> HttpResponse:
    """A variation of a finished video: the provider's remix where the backend has one, else a new job."""
    generation = _get_generation_for_user(request, pk)
    native = generation.remixes_natively
    form = RemixForm(request.POST, generation=generation, native=native)
    if form.is_valid():
        try:
            made = lifecycle.remix(generation, form.cleaned_data["prompt"])
        except lifecycle.GenerationRefused as exc:
            form.add_error("prompt" if exc.field in (None, "prompt") else None, str(exc))
        else:
            how = "Remixing" if native else "Started a new video from"
            return _started(request, made, f"{how} video #{generation.pk} as video #{made.generation.pk}.")
    if request.htmx:
        context = {"generation": generation, "remix_form": form, "remix_native": native}
        return render(request, "generations/detail.html#remix", context)
    return vary_on_htmx(_render_detail(request, generation, remix_form=form))


@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove the video here (and on the provider where the protocol allows); its costs stay in the ledger."""
    generation = _get_generation_for_user(request, pk)
    try:
        note = lifecycle.delete(generation)
    except lifecycle.GenerationRefused as exc:
        return _refused(request, pk, str(exc))
    messages.success(request, " ".join(filter(None, [f"Video #{pk} deleted.", note])))
    return redirect_to(request, reverse("gallery"))


# --- New generation ------------------------------------------------------------------------------


def _prefill_query(generation: Generation) -> str:
    return urlencode(
        {
            "prompt": generation.prompt,
            "backend": generation.backend_id,
            "model": generation.model,
            "seconds": generation.seconds,
            "size": generation.size,
        }
    )


def _prefill(params) -> dict:
    initial = {name: params[name] for name in PREFILL_FIELDS if params.get(name)}
    if not str(initial.get("backend", "")).isdigit():
        initial.pop("backend", None)
    return initial


@dataclass
class EstimateRow:
    backend: Backend
    route: router.Route | None
    reason: str = ""
    automatic: bool = False
    chosen: bool = False


@dataclass
class Estimate:
    rows: list[EstimateRow] = field(default_factory=list)
    mention_error: str = ""
    summary: str = ""


def _estimate(user, data) -> Estimate:
    """Per enabled backend, what this video would cost there, or why it cannot be made there."""
    estimate = Estimate()
    model, seconds, size = data.get("model", ""), str(data.get("seconds", "")), data.get("size", "")
    try:
        characters = mentions.resolve(user, data.get("prompt", "") or "")
    except mentions.MentionError as exc:
        estimate.mention_error, characters = str(exc), []
    chosen_pk = str(data.get("backend") or "")
    policy = data.get("policy")
    if policy not in Policy.values:
        policy = lifecycle.default_policy(user)
    # The images asked for (a choice made, or a file picked): only backends that take them can make the video.
    asked = tuple(role for role in images.ROLES if data.get(f"{role}_image") or data.get(f"{role}_upload"))
    results = router.candidates(characters, model, seconds, size, images=asked)
    for result in results:
        if isinstance(result, Refusal):
            estimate.rows.append(
                EstimateRow(result.backend, None, str(result), chosen=str(result.backend.pk) == chosen_pk)
            )
        else:
            estimate.rows.append(EstimateRow(result.backend, result, chosen=str(result.backend.pk) == chosen_pk))
    if not chosen_pk:
        try:
            best = router.best(results, characters, policy)
        except router.NoBackend:
            estimate.summary = "No enabled backend can make this video as set."
        else:
            for row in estimate.rows:
                row.automatic = row.backend.pk == best.backend.pk
            estimate.summary = (
                f"Automatic routing would use {best.backend.name} ({policy} policy): {best.quote.describe}."
            )
    return estimate


@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    """The form: prompt with @mentions, backend (or automatic), model, length, size, live estimate."""
    backends = list(Backend.objects.enabled())
    note_malformed_offers(request, backends)
    if request.method == "POST":
        form = GenerationForm(request.POST, request.FILES, backends=backends, owner=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                # The form's one-time token makes a double-click (or a re-sent form) find the first
                # job instead of starting a second: lifecycle.start enforces it in the database.
                started = lifecycle.start(
                    lifecycle.GenerationRequest(
                        request.user,
                        prompt=data["prompt"],
                        model=data["model"],
                        seconds=data["seconds"],
                        size=data["size"],
                        backend=data["backend"],
                        policy=data["policy"],
                        client_token=request.POST.get("token", ""),
                        start_image=data["start"],
                        end_image=data["end"],
                    )
                )
            except lifecycle.GenerationRefused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                for warning in started.warnings:
                    messages.warning(request, warning)
                return redirect_to(request, reverse("generation_detail", args=[started.generation.pk]))
        data = request.POST
    else:
        initial = {"policy": lifecycle.default_policy(request.user), **_prefill(request.GET)}
        form = GenerationForm(initial=initial, backends=backends, owner=request.user)
        data = form.initial
    context = {"form": form, "estimate": _estimate(request.user, data), "backends": backends}
    template = "generations/new.html#form" if partial_wanted(request) else "generations/new.html"
    return vary_on_htmx(render(request, template, context))


@require_POST
def estimate(request: HttpRequest) -> HttpResponse:
    """The live estimate panel of the new-generation form."""
    return render(request, "generations/new.html#estimate", {"estimate": _estimate(request.user, request.POST)})


@require_POST
def choices(request: HttpRequest) -> HttpResponse:
    """Model, length and size as the chosen backend offers them (and the estimate to match), when
    the backend or the model changes. A value the new choice lacks falls back to one it has."""
    form = GenerationForm(initial=_prefill(request.POST), backends=list(Backend.objects.enabled()))
    asked = {f"{role}_image": request.POST.get(f"{role}_image", "") for role in images.ROLES}
    context = {"form": form, "estimate": _estimate(request.user, {**form.initial, **asked}), "oob": True}
    return render(request, "generations/new.html#choices", context)


@require_GET
def mention_suggestions(request: HttpRequest) -> HttpResponse:
    """The creator's characters whose handle (or name) starts with ?q=, for the prompt's @ autocomplete."""
    prefix = request.GET.get("q", "").strip().lstrip("@")[:30]
    characters = (
        Character.objects.owned_by(request.user)
        .filter(Q(handle__istartswith=prefix) | Q(name__istartswith=prefix))
        .order_by("handle")[:MENTION_SUGGESTIONS]
    )
    return render(request, "generations/new.html#mentions", {"characters": characters, "prefix": prefix})


# --- The creator's settings ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def creator_settings(request: HttpRequest) -> HttpResponse:
    """The creator's own defaults: the routing policy of videos that name none."""
    mine = CreatorSettings.objects.filter(user=request.user).first() or CreatorSettings(user=request.user)
    form = CreatorSettingsForm(request.POST or None, instance=mine)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("creator_settings")
    return render(request, "generations/settings.html", {"form": form})
