"""The studio's pages: gallery, a generation and its files, the new-generation form."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import DecimalField, OuterRef, QuerySet, Subquery
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from characters import mentions
from characters.forms import ExtractCharacterForm
from generations import lifecycle, router
from generations.forms import GenerationForm
from generations.models import Backend, CostEntry, CostKind, Generation
from sora_studio.htmx import partial_wanted, redirect_to, vary_on_htmx

PAGE_SIZE = 24
PREFILL_FIELDS = ("prompt", "backend", "model", "seconds", "size")


# --- Helpers -----------------------------------------------------------------------------------

def with_card_data(generations: QuerySet) -> QuerySet:
    """What a card shows, in a constant number of queries: backend, characters, and the ledger.

    The ledger holds at most one entry of each kind per generation (a database constraint), so
    each amount is a one-row subquery rather than a join that would multiply rows.
    """
    def amount(kind: str) -> Subquery:
        entries = CostEntry.objects.filter(generation=OuterRef("pk"), kind=kind).order_by().values("amount")[:1]
        return Subquery(entries, output_field=DecimalField(max_digits=14, decimal_places=6))

    return generations.select_related("backend", "owner").prefetch_related("characters").annotate(
        charge_amount=amount(CostKind.CHARGE),
        refund_amount=amount(CostKind.REFUND),
        estimate_amount=amount(CostKind.ESTIMATE),
    )


def _get_generation_for_user(request: HttpRequest, pk: int) -> Generation:
    return get_object_or_404(with_card_data(Generation.objects.for_user(request.user)), pk=pk)


def _file_response(field_file, **kwargs) -> FileResponse:
    if not field_file:
        raise Http404("Not stored yet.")
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    return FileResponse(handle, **kwargs)


# --- Gallery and a generation ---------------------------------------------------------------

@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    """The creator's generations, newest first."""
    generations = with_card_data(Generation.objects.for_user(request.user))
    page = Paginator(generations, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "generations/gallery.html#gallery" if partial_wanted(request) else "generations/gallery.html"
    return vary_on_htmx(render(request, template, {"page": page}))


@require_GET
def card(request: HttpRequest, pk: int) -> HttpResponse:
    """One gallery card; a running card polls this until it answers 286 (stop polling)."""
    generation = _get_generation_for_user(request, pk)
    if not request.htmx:
        return vary_on_htmx(redirect("generation_detail", pk=pk))
    status = HTMX_STOP_POLLING if generation.is_terminal else 200
    response = render(request, "generations/gallery.html#card", {"generation": generation}, status=status)
    return vary_on_htmx(response)


def _render_detail(request: HttpRequest, generation: Generation, *, notice: str = "",
                   partial: bool = False) -> HttpResponse:
    context = {
        "generation": generation,
        "cost_entries": generation.cost_entries.select_related("price").order_by("created_at", "pk"),
        "extract_form": ExtractCharacterForm(owner=request.user),
        "notice": notice,
        "new_from_this": _prefill_query(generation),
    }
    if partial:
        status = HTMX_STOP_POLLING if generation.is_terminal else 200
        return render(request, "generations/detail.html#live", context, status=status)
    return render(request, "generations/detail.html", context)


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Player, prompt as written and as sent, routing, costs. Its live panel polls this URL."""
    generation = _get_generation_for_user(request, pk)
    return vary_on_htmx(_render_detail(request, generation, partial=partial_wanted(request)))


@require_GET
def video(request: HttpRequest, pk: int) -> FileResponse:
    """The stored MP4, only to its owner (and staff); ?download=1 saves it."""
    generation = _get_generation_for_user(request, pk)
    return _file_response(generation.video, as_attachment=request.GET.get("download") == "1",
                          filename=f"sora-studio-{generation.pk}.mp4", content_type="video/mp4")


@require_GET
def thumbnail(request: HttpRequest, pk: int) -> FileResponse:
    """The stored thumbnail; ?download=1 saves it."""
    generation = _get_generation_for_user(request, pk)
    name = generation.thumbnail.name or ""
    extension = name[name.rfind("."):] if "." in name else ".webp"
    return _file_response(generation.thumbnail, as_attachment=request.GET.get("download") == "1",
                          filename=f"sora-studio-{generation.pk}{extension}")


@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a job that has not been sent yet."""
    generation = _get_generation_for_user(request, pk)
    notice = ""
    if not lifecycle.cancel(generation):
        notice = "It has already been sent to the backend; it can no longer be cancelled."
    generation = _get_generation_for_user(request, pk)
    if request.htmx:
        return _render_detail(request, generation, notice=notice, partial=True)
    if notice:
        messages.warning(request, notice)
    return redirect("generation_detail", pk=pk)


# --- New generation ------------------------------------------------------------------------------

def _prefill_query(generation: Generation) -> str:
    return urlencode({"prompt": generation.prompt, "backend": generation.backend_id, "model": generation.model,
                      "seconds": generation.seconds, "size": generation.size})


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
    for backend in Backend.objects.enabled().prefetch_related("prices"):
        result = router.assess(backend, characters, model, seconds, size)
        if isinstance(result, str):
            estimate.rows.append(EstimateRow(backend, None, result, chosen=str(backend.pk) == chosen_pk))
        else:
            estimate.rows.append(EstimateRow(backend, result, chosen=str(backend.pk) == chosen_pk))
    if not chosen_pk:
        try:
            best = router.choose(characters, model, seconds, size)
        except router.NoBackend:
            estimate.summary = "No enabled backend can make this video as set."
        else:
            for row in estimate.rows:
                row.automatic = row.backend.pk == best.backend.pk
            estimate.summary = f"Automatic routing would use {best.backend.name}: {best.quote.describe}."
    return estimate


@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    """The form: prompt with @mentions, backend (or automatic), model, length, size, live estimate."""
    backends = list(Backend.objects.enabled())
    if request.method == "POST":
        form = GenerationForm(request.POST, backends=backends)
        if form.is_valid():
            data = form.cleaned_data
            try:
                # The form's one-time token makes a double-click (or a re-sent form) find the first
                # job instead of starting a second: lifecycle.start enforces it in the database.
                generation = lifecycle.start(request.user, prompt=data["prompt"], model=data["model"],
                                             seconds=data["seconds"], size=data["size"], backend=data["backend"],
                                             client_token=request.POST.get("token", ""))
            except lifecycle.GenerationRefused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                for warning in generation.budget_warnings:
                    messages.warning(request, warning)
                return redirect_to(request, reverse("generation_detail", args=[generation.pk]))
        data = request.POST
    else:
        form = GenerationForm(initial=_prefill(request.GET), backends=backends)
        data = form.initial
    context = {"form": form, "estimate": _estimate(request.user, data), "backends": backends}
    template = "generations/new.html#form" if partial_wanted(request) else "generations/new.html"
    return vary_on_htmx(render(request, template, context))


@require_POST
def estimate(request: HttpRequest) -> HttpResponse:
    """The live estimate panel of the new-generation form."""
    return render(request, "generations/new.html#estimate", {"estimate": _estimate(request.user, request.POST)})


