"""Series pages: the storyboard, its scenes and their takes."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Max, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generations import lifecycle
from generations.forms import SceneForm, SeriesForm
from generations.models import ACTIVE, Backend, Generation, Scene, Series, Status
from generations.views import with_card_data


def _get_series_for_user(request: HttpRequest, pk: int) -> Series:
    return get_object_or_404(Series.objects.for_user(request.user).select_related("backend"), pk=pk)


def _get_scene_for_user(request: HttpRequest, pk: int) -> Scene:
    scenes = Scene.objects.select_related("series", "series__backend", "series__owner")
    return get_object_or_404(scenes.filter(series__in=Series.objects.for_user(request.user)), pk=pk)


@require_http_methods(["GET", "POST"])
def series_list(request: HttpRequest) -> HttpResponse:
    """The creator's series, and a form to start one."""
    backends = list(Backend.objects.enabled())
    form = SeriesForm(request.POST or None, instance=Series(owner=request.user), owner=request.user,
                      backends=backends)
    if request.method == "POST" and form.is_valid():
        series = form.save()
        return redirect("series_detail", pk=series.pk)
    all_series = (Series.objects.for_user(request.user).select_related("backend", "owner")
                  .annotate(scene_count=Count("scenes")).prefetch_related("characters"))
    return render(request, "generations/series_list.html", {"form": form, "all_series": all_series})


def _scenes_with_takes(series: Series) -> list[Scene]:
    takes = Prefetch("takes", queryset=with_card_data(Generation.objects.all()), to_attr="take_list")
    scenes = list(series.scenes.prefetch_related(takes))
    for number, scene in enumerate(scenes, start=1):
        scene.number = number
        scene.take = scene.take_list[0] if scene.take_list else None
    return scenes


def _render_series(request: HttpRequest, series: Series, scene_form: SceneForm | None = None,
                   status: int = 200) -> HttpResponse:
    scenes = _scenes_with_takes(series)
    done = sum(1 for s in scenes if s.take and s.take.status == Status.COMPLETED)
    context = {
        "series": series,
        "scenes": scenes,
        "scene_form": scene_form or SceneForm(),
        "done": done,
        "characters": series.characters.all(),
    }
    return render(request, "generations/series_detail.html", context, status=status)


@require_GET
def series_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A series: its defaults, its ordered scenes and the latest take of each."""
    return _render_series(request, _get_series_for_user(request, pk))


@require_POST
def scene_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a scene at the end of the series."""
    series = _get_series_for_user(request, pk)
    form = SceneForm(request.POST, instance=Scene(series=series))
    if not form.is_valid():
        return _render_series(request, series, scene_form=form)
    last = series.scenes.aggregate(last=Max("position"))["last"]
    form.instance.position = 0 if last is None else last + 1
    scene = form.save()
    return redirect(f"{reverse('series_detail', args=[series.pk])}#scene-{scene.pk}")


def _start_scene(scene: Scene) -> Generation:
    """One take of a scene with the series defaults; raises GenerationRefused."""
    series = scene.series
    return lifecycle.start(series.owner, prompt=scene.prompt, model=series.model, seconds=series.seconds,
                           size=series.size, backend=series.backend, scene=scene)


@require_POST
def series_generate_all(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a take of every scene that has none running or done; report each refusal."""
    series = _get_series_for_user(request, pk)
    started, skipped = 0, 0
    for scene in _scenes_with_takes(series):
        if scene.take and scene.take.status in (*ACTIVE, Status.COMPLETED):
            skipped += 1
            continue
        try:
            _start_scene(scene)
        except lifecycle.GenerationRefused as exc:
            messages.error(request, f"Scene {scene.number}: {exc}")
        else:
            started += 1
    if started:
        messages.success(request, f"Started {started} scene{'s' if started != 1 else ''}.")
    if skipped:
        messages.info(request, f"Skipped {skipped} scene{'s' if skipped != 1 else ''} already running or done "
                               "(use a scene's Regenerate to make another take).")
    return redirect("series_detail", pk=series.pk)


@require_POST
def scene_generate(request: HttpRequest, pk: int) -> HttpResponse:
    """Start one (more) take of a scene."""
    scene = _get_scene_for_user(request, pk)
    error = ""
    try:
        _start_scene(scene)
    except lifecycle.GenerationRefused as exc:
        error = str(exc)
    if request.htmx:
        scenes = {s.pk: s for s in _scenes_with_takes(scene.series)}
        return render(request, "generations/series_detail.html#scene",
                      {"scene": scenes[scene.pk], "series": scene.series, "scene_error": error})
    if error:
        messages.error(request, f"Scene: {error}")
    return redirect(f"{reverse('series_detail', args=[scene.series_id])}#scene-{scene.pk}")
