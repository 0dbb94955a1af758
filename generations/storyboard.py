"""Series as storyboards: generate all scenes or one, keep every take, choose the scene's take."""

from __future__ import annotations

from django.db import transaction

from generations import lifecycle
from generations.models import Generation, Scene, Series, Status


def generate_scene(scene: Scene) -> Generation:
    series = scene.series
    return lifecycle.start(series.owner, prompt=scene.prompt, model=series.model, seconds=series.seconds,
                           size=series.size, backend=series.backend, scene=scene)


def generate_all(series: Series, only_missing: bool = False) -> tuple[list[Generation], dict[int, str]]:
    """Start a take for every scene; returns the jobs started and, per scene id, why one was refused."""
    started, refused = [], {}
    for scene in series.scenes.all():
        if only_missing and scene.takes.exclude(status__in=[Status.FAILED, Status.TIMED_OUT, Status.CANCELLED]).exists():
            continue
        try:
            started.append(generate_scene(scene))
        except lifecycle.GenerationRefused as exc:
            refused[scene.pk] = str(exc)
    return started, refused


def choose_take(scene: Scene, generation: Generation) -> None:
    if generation.scene_id != scene.pk:
        raise ValueError("That take belongs to another scene.")
    Scene.objects.filter(pk=scene.pk).update(chosen_take=generation)
    scene.chosen_take = generation


def take_for(scene: Scene) -> Generation | None:
    """The scene's take: the one chosen, else the newest completed, else the newest."""
    if scene.chosen_take_id:
        return scene.chosen_take
    takes = sorted(scene.takes.all(), key=lambda g: g.created_at, reverse=True)
    return next((t for t in takes if t.status == Status.COMPLETED), takes[0] if takes else None)


def add_scene(series: Series, prompt: str) -> Scene:
    last = series.scenes.order_by("-position").values_list("position", flat=True).first()
    return Scene.objects.create(series=series, prompt=prompt, position=(last or 0) + 1)


@transaction.atomic
def move(scene: Scene, offset: int) -> None:
    """Move a scene up (-1) or down (+1) by swapping positions with its neighbour."""
    scenes = list(scene.series.scenes.select_for_update().order_by("position", "pk"))
    index = next(i for i, s in enumerate(scenes) if s.pk == scene.pk)
    target = index + offset
    if not 0 <= target < len(scenes):
        return
    scenes[index], scenes[target] = scenes[target], scenes[index]
    for position, item in enumerate(scenes, start=1):
        if item.position != position:
            Scene.objects.filter(pk=item.pk).update(position=position)


def progress(series: Series) -> dict:
    """Per-series counts for the progress bar: scenes with a completed take out of all scenes."""
    scenes = list(series.scenes.prefetch_related("takes"))
    done = sum(1 for s in scenes if any(t.status == Status.COMPLETED for t in s.takes.all()))
    running = sum(1 for s in scenes if any(t.is_active for t in s.takes.all()))
    return {"total": len(scenes), "done": done, "running": running,
            "percent": round(100 * done / len(scenes)) if scenes else 0}


