"""Series pages: the storyboard, its scenes and their takes, watching it, and exports."""

from __future__ import annotations

from dataclasses import replace

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING, trigger_client_event

from generations.jobs import lifecycle
from generations.jobs.models import Generation
from generations.providers.models import Backend
from generations.providers.notices import note_malformed_offers
from generations.states import Status
from generations.storyboards import board, chain, export
from generations.storyboards.forms import SceneForm, SeriesForm
from generations.storyboards.models import Export, ExportStatus, Scene, Series
from sora_studio import files
from sora_studio.htmx import partial_wanted, redirect_to, vary_on_htmx

# Sent after anything that adds, removes or starts scenes: the progress bar refreshes (and
# starts polling again if something now runs).
SCENES_CHANGED = "scenesChanged"
# Sent by the progress bar when a take was added or ended: each scene refreshes its take marker.
TAKES_CHANGED = "takesChanged"


def _get_series_for_user(request: HttpRequest, pk: int) -> Series:
    return get_object_or_404(Series.objects.for_user(request.user).select_related("backend"), pk=pk)


def _get_scene_for_user(request: HttpRequest, pk: int) -> Scene:
    scenes = Scene.objects.select_related("series", "series__backend", "series__owner")
    return get_object_or_404(scenes.filter(series__in=Series.objects.for_user(request.user)), pk=pk)


def _scene_url(scene: Scene) -> str:
    return f"{reverse('series_detail', args=[scene.series_id])}#scene-{scene.pk}"


def _cards(series: Series) -> list[board.SceneCard]:
    cards = board.scenes_with_takes(series, Generation.objects.with_card_data())
    if not series.continuous:
        return cards
    behind = chain.out_of_step(cards)
    return [replace(card, out_of_step=card.scene.pk in behind) for card in cards]


def _card(scene: Scene) -> board.SceneCard:
    """One scene ready for its partial: its takes as gallery cards, its take, its number in the series."""
    return board.card_for(scene, Generation.objects.with_card_data())


def _backends() -> list[Backend]:
    return list(Backend.objects.enabled())


# --- Series --------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def series_list(request: HttpRequest) -> HttpResponse:
    """The creator's series, and a form to start one."""
    backends = _backends()
    note_malformed_offers(request, backends)
    form = SeriesForm(request.POST or None, instance=Series(owner=request.user), owner=request.user, backends=backends)
    if request.method == "POST" and form.is_valid():
        series = form.save()
        return redirect("series_detail", pk=series.pk)
    all_series = (
        Series.objects.for_user(request.user)
        .select_related("backend", "owner")
        .annotate(scene_count=Count("scenes"))
        .prefetch_related("characters")
    )
    return render(request, "generations/series_list.html", {"form": form, "all_series": all_series})


@require_http_methods(["GET", "POST"])
def series_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a series' title, description, characters and defaults (takes already made keep theirs)."""
    series = _get_series_for_user(request, pk)
    backends = _backends()
    note_malformed_offers(request, backends)
    form = SeriesForm(request.POST or None, instance=series, owner=series.owner, backends=backends)
    if request.method == "POST" and form.is_valid():
        chain.settle(form.save())
        messages.success(request, "Series saved. New takes use these defaults.")
        return redirect("series_detail", pk=series.pk)
    return render(request, "generations/series_edit.html", {"series": series, "form": form})


@require_http_methods(["GET", "POST"])
def series_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask, then delete a series and its scenes. The videos stay in the gallery."""
    series = _get_series_for_user(request, pk)
    takes = Generation.objects.filter(scene__series=series, deleted_at__isnull=True).count()
    if request.method == "POST":
        title = series.title
        with transaction.atomic():
            board.delete_scenes(series.scenes.all())
            series.delete()
        messages.success(
            request,
            f"Deleted “{title}”."
            + (f" Its {takes} take{'s' if takes != 1 else ''} stay in your gallery." if takes else ""),
        )
        return redirect("series_list")
    return render(
        request,
        "generations/series_delete.html",
        {"series": series, "takes": takes, "scene_count": series.scenes.count()},
    )


def _render_series(request: HttpRequest, series: Series, scene_form: SceneForm | None = None) -> HttpResponse:
    context = {
        "series": series,
        "cards": _cards(series),
        "scene_form": scene_form or SceneForm(),
        "progress": board.progress(series),
        "characters": series.characters.all(),
    }
    return render(request, "generations/series_detail.html", context)


@require_GET
def series_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A series: its defaults, progress, its ordered scenes and every take of each."""
    return _render_series(request, _get_series_for_user(request, pk))


@require_GET
def series_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar: polled every 2 s while a take runs, answered with 286 once none does."""
    series = _get_series_for_user(request, pk)
    if not partial_wanted(request):
        return vary_on_htmx(redirect("series_detail", pk=series.pk))
    progress = board.progress(series)
    status = 200 if progress["running"] or progress["waiting"] else HTMX_STOP_POLLING
    response = render(
        request, "generations/series_detail.html#progress", {"series": series, "progress": progress}, status=status
    )
    seen = request.GET.get("seen")
    if seen and seen != progress["state"]:
        trigger_client_event(response, TAKES_CHANGED)
    return vary_on_htmx(response)


def _render_board(
    request: HttpRequest,
    series: Series,
    *,
    scene_form: SceneForm | None = None,
    notes: list[str] | None = None,
    errors: dict[int, str] | None = None,
    changed: bool = True,
) -> HttpResponse:
    cards = [replace(card, error=(errors or {}).get(card.scene.pk, "")) for card in _cards(series)]
    context = {"series": series, "cards": cards, "scene_form": scene_form or SceneForm(), "notes": notes or []}
    response = render(request, "generations/series_detail.html#board", context)
    if changed:
        trigger_client_event(response, SCENES_CHANGED)
    return response


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@require_POST
def series_generate_all(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a take of every scene that has none running or done; report each refusal by its scene."""
    series = _get_series_for_user(request, pk)
    if series.continuous:
        return _generate_chain(request, series)
    started, refused, skipped = board.generate_all(series)
    started_note = f"Started {_plural(len(started), 'scene')}." if started else ""
    skipped_note = (
        (
            f"Skipped {_plural(len(skipped), 'scene')} already running or done "
            "(use a scene's Regenerate to make another take)."
        )
        if skipped
        else ""
    )
    warnings = list(dict.fromkeys(w for one in started for w in one.warnings))
    if request.htmx:
        refused_note = f"{_plural(len(refused), 'scene')} could not start: see below." if refused else ""
        notes = [n for n in (started_note, skipped_note, refused_note) if n] + warnings
        return _render_board(request, series, notes=notes, errors=refused)
    numbers = {scene.pk: number for number, scene in enumerate(series.scenes.all(), start=1)}
    for scene_pk, error in refused.items():
        messages.error(request, f"Scene {numbers.get(scene_pk, '?')}: {error}")
    if started_note:
        messages.success(request, started_note)
    if skipped_note:
        messages.info(request, skipped_note)
    for warning in warnings:
        messages.warning(request, warning)
    return redirect("series_detail", pk=series.pk)


def _generate_chain(request: HttpRequest, series: Series) -> HttpResponse:
    """Generate all on a continuous series: the scenes that need a take wait in a chain, each for the one before."""
    queued = chain.generate_all(series)
    notes = []
    if queued.queued:
        notes.append(
            f"Queued {_plural(len(queued.queued), 'scene')} as a chain: each starts from the last frame "
            "of the scene before it, once that one is done."
        )
    if queued.skipped:
        notes.append(
            f"Skipped {_plural(len(queued.skipped), 'scene')} already running or done "
            "(use a scene's Regenerate to make another take)."
        )
    if request.htmx:
        return _render_board(request, series, notes=notes)
    for note in notes:
        messages.info(request, note)
    return redirect("series_detail", pk=series.pk)


# --- Scenes ----------------------------------------------------------------------------------------


@require_POST
def scene_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a scene at the end of the series."""
    series = _get_series_for_user(request, pk)
    form = SceneForm(request.POST, instance=Scene(series=series))
    if not form.is_valid():
        if request.htmx:
            return _render_board(request, series, scene_form=form, changed=False)
        return _render_series(request, series, scene_form=form)
    scene = board.add_scene(series, form.cleaned_data["prompt"])
    if request.htmx:
        return _render_board(request, series, notes=[f"Added scene {series.scenes.count()}."])
    return redirect(_scene_url(scene))


def _render_scene(
    request: HttpRequest, scene: Scene, *, error: str = "", notice: str = "", offer: int = 0
) -> HttpResponse:
    card = replace(_card(scene), error=error, notice=notice, offer=offer)
    return render(request, "generations/series_detail.html#scene", {"card": card, "series": scene.series})


@require_GET
def scene_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One scene (the page refreshes it when one of its takes ends)."""
    scene = _get_scene_for_user(request, pk)
    if not partial_wanted(request):
        return vary_on_htmx(redirect(_scene_url(scene)))
    return vary_on_htmx(_render_scene(request, scene))


def _scene_form(scene: Scene, data=None, files=None) -> SceneForm:
    form = SceneForm(data, files, instance=scene, owner=scene.series.owner, auto_id=f"scene-{scene.pk}-%s")
    form.fields["prompt"].label = "Prompt"
    form.fields["prompt"].widget.attrs["autofocus"] = True
    return form


@require_http_methods(["GET", "POST"])
def scene_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a scene's prompt and its start and end images in place. Its takes keep what they were made with."""
    scene = _get_scene_for_user(request, pk)
    posted = request.method == "POST"
    form = _scene_form(scene, request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        form.save()
        board.set_scene_images(scene, form.cleaned_data)
        if request.htmx:
            return _render_scene(
                request,
                scene,
                notice="Saved. Regenerate to make a take of the new prompt." if scene.takes.exists() else "",
            )
        return redirect(_scene_url(scene))
    context = {"card": _card(scene), "series": scene.series, "form": form}
    template = (
        "generations/series_detail.html#scene_form" if partial_wanted(request) else "generations/series_scene_edit.html"
    )
    return vary_on_htmx(render(request, template, context))


@require_GET
def scene_image(request: HttpRequest, pk: int, role: str) -> HttpResponse:
    """A scene's start or end image as the creator chose it (its takes crop it to the series' size)."""
    scene = _get_scene_for_user(request, pk)
    kept = get_object_or_404(scene.images, role=role)
    return files.serve(request, kept.image)


@require_POST
def scene_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a scene. Its takes stay in the gallery."""
    scene = _get_scene_for_user(request, pk)
    series = scene.series
    number = _card(scene).number
    board.delete_scenes(Scene.objects.filter(pk=scene.pk))
    if request.htmx:
        return _render_board(request, series, notes=[f"Deleted scene {number}."])
    messages.success(request, f"Deleted scene {number}. Its takes stay in your gallery.")
    return redirect("series_detail", pk=series.pk)


@require_POST
def scene_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a scene one place up or down."""
    scene = _get_scene_for_user(request, pk)
    offset = {"up": -1, "down": 1}.get(request.POST.get("direction", ""))
    if offset is None:
        return HttpResponseBadRequest("Move a scene up or down.")
    board.move(scene, offset)
    if request.htmx:
        number = _card(Scene.objects.select_related("series").get(pk=scene.pk)).number
        return _render_board(request, scene.series, notes=[f"Scene moved to position {number}."], changed=False)
    return redirect(_scene_url(scene))


@require_POST
def scene_generate(request: HttpRequest, pk: int) -> HttpResponse:
    """Start one (more) take of a scene; earlier takes stay, to choose from."""
    scene = _get_scene_for_user(request, pk)
    error, notice = "", ""
    if scene.series.continuous:
        # In a chain: from the previous scene's last frame (once it is done), and the chain goes on after it.
        chain.resume_from(scene)
        scene.refresh_from_db()
        if request.htmx:
            response = _render_scene(request, scene)
            trigger_client_event(response, SCENES_CHANGED)
            return response
        if scene.chain_note:
            messages.error(request, f"Scene: {scene.chain_note}")
        return redirect(_scene_url(scene))
    try:
        started = board.generate_scene(scene)
    except lifecycle.GenerationRefused as exc:
        error = str(exc)
    else:
        notice = " ".join(started.warnings)
    if request.htmx:
        response = _render_scene(request, scene, error=error, notice=notice)
        if not error:
            trigger_client_event(response, SCENES_CHANGED)
        return response
    if error:
        messages.error(request, f"Scene: {error}")
    elif notice:
        messages.warning(request, notice)
    return redirect(_scene_url(scene))


@require_POST
def scene_choose_take(request: HttpRequest, pk: int, take_pk: int) -> HttpResponse:
    """Make one of the scene's completed takes the one that plays in the series."""
    scene = _get_scene_for_user(request, pk)
    take = get_object_or_404(scene.takes.filter(deleted_at__isnull=True), pk=take_pk)
    error = ""
    if take.status != Status.COMPLETED:
        error = "Only a completed take can be the scene's take."
    else:
        board.choose_take(scene, take)
    offer = 0 if error else chain.offer_after(scene)
    if request.htmx:
        return _render_scene(request, scene, error=error, offer=offer)
    if error:
        messages.error(request, error)
    elif offer:
        messages.info(
            request,
            f"The {_plural(offer, 'scene')} after it started from another take: "
            "use “Regenerate the scenes after it” on the board to continue from this one.",
        )
    return redirect(_scene_url(scene))


@require_POST
def scene_regenerate_after(request: HttpRequest, pk: int) -> HttpResponse:
    """New takes of the scenes after this one, each from the last frame of the one before (asked, never silent)."""
    scene = _get_scene_for_user(request, pk)
    if not scene.series.continuous:
        return HttpResponseBadRequest("Only a continuous series regenerates the scenes after one.")
    count = chain.regenerate_after(scene)
    note = f"Queued {_plural(count, 'scene')} after scene {_card(scene).number} as a chain."
    if request.htmx:
        return _render_board(request, scene.series, notes=[note])
    messages.info(request, note)
    return redirect(_scene_url(scene))


# --- Watching and exporting -------------------------------------------------------------------------


@require_GET
def series_watch(request: HttpRequest, pk: int) -> HttpResponse:
    """The scenes' takes in order, as one playlist."""
    series = _get_series_for_user(request, pk)
    items = board.playlist(series)
    playable = [(card, take) for card, take in items if take]
    return render(
        request,
        "generations/series_watch.html",
        {"series": series, "items": items, "playable": playable, "first": playable[0] if playable else None},
    )


@require_POST
def series_export(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue the series' zip (every take's video and thumbnail, the characters' clips, manifest.json)."""
    series = _get_series_for_user(request, pk)
    return redirect_to(request, reverse("export_detail", args=[export.start(request.user, series).pk]))


@require_POST
def export_all(request: HttpRequest) -> HttpResponse:
    """Queue a zip of everything the creator made."""
    return redirect_to(request, reverse("export_detail", args=[export.start(request.user).pk]))


def _get_export_for_user(request: HttpRequest, pk: int) -> Export:
    return get_object_or_404(Export.objects.for_user(request.user).select_related("series"), pk=pk)


@require_GET
def export_list(request: HttpRequest) -> HttpResponse:
    """The creator's exports, newest first, with a download link for each one that is ready."""
    exports = list(Export.objects.for_user(request.user).select_related("series"))
    for one in exports:
        export.resume_if_stalled(one)
    return render(request, "generations/exports.html", {"exports": exports})


@require_GET
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One export: its progress while a worker builds it (the status panel polls this URL until it
    answers 286), then its download link."""
    one = _get_export_for_user(request, pk)
    if export.resume_if_stalled(one):
        one.refresh_from_db()
    if partial_wanted(request):
        response = render(request, "generations/export.html#status", {"export": one})
        if one.is_finished:
            response.status_code = HTMX_STOP_POLLING
        return vary_on_htmx(response)
    return vary_on_htmx(render(request, "generations/export.html", {"export": one}))


@require_GET
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The finished zip: from disk, or by a short-lived signed link to the bucket."""
    one = _get_export_for_user(request, pk)
    if one.status != ExportStatus.READY:
        raise Http404("This export is not ready.")
    return files.serve(request, one.file, as_attachment=True, filename=one.filename, content_type="application/zip")
