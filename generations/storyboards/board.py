"""Series as storyboards: generate all scenes or one, keep every take, choose the scene's take."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet

from generations.jobs import images, lifecycle
from generations.jobs.forms import KEPT
from generations.jobs.models import Generation
from generations.states import ACTIVE, Status
from generations.storyboards.models import ChainState, Scene, SceneImage, Series


@dataclass(frozen=True)
class SceneCard:
    """A scene as the board shows it: its place in the series, its takes and the take that plays.

    `error` and `notice` are what the last action on the scene has to say next to it.
    """

    scene: Scene
    number: int  # 1, 2, … in the series' order
    takes: list[Generation]  # newest first, deleted ones left out
    take: Generation | None  # the scene's take: see take_for
    is_last: bool
    error: str = ""
    notice: str = ""
    # A continuous series: the take did not start from the previous scene's take; and, on a scene whose
    # take was re-chosen, how many scenes after it the board offers to regenerate.
    out_of_step: bool = False
    offer: int = 0

    @property
    def failed(self) -> bool:
        """The scene's newest take ended without a video (its button says "Try again")."""
        newest = self.takes[0] if self.takes else None
        return newest is not None and newest.is_terminal and newest.status != Status.COMPLETED

    @property
    def playable_take(self) -> Generation | None:
        """The scene's take when it is completed and stored: what "watch" plays."""
        take = self.take
        return take if take is not None and take.status == Status.COMPLETED and take.video else None


def generate_scene(
    scene: Scene, *, start_image: images.ImageInput | None = None, client_token: str = ""
) -> lifecycle.Started:
    """One (more) take of a scene with the series defaults; raises GenerationRefused. Earlier takes stay.

    The take starts from the scene's own start and end images (the scene editor's); `start_image`, when
    given, takes the place of the start image (a frame handed on from another take); a `client_token` makes a
    second start of the same take find the first."""
    series = scene.series
    chosen = scene_images(scene)
    return lifecycle.start(
        lifecycle.GenerationRequest(
            series.owner,
            prompt=scene.prompt,
            model=series.model,
            seconds=series.seconds,
            size=series.size,
            backend=series.backend,
            scene=scene,
            start_image=start_image or chosen.get(images.START),
            end_image=chosen.get(images.END),
            client_token=client_token,
        )
    )


def scene_images(scene: Scene) -> dict[str, images.ImageInput]:
    """The scene's start and end images, by role, as a take is started from them."""
    chosen = {}
    for kept in scene.images.all():
        with kept.image.open("rb") as handle:
            chosen[kept.role] = images.ImageInput(handle.read(images.MAX_BYTES + 1), kept.source, kept.note)
    return chosen


def delete_scenes(scenes) -> None:
    """Delete scenes (a queryset), and their start and end images' files once the rows are gone. Their takes stay,
    with the images each was started from (those are the takes' own)."""
    storage = SceneImage._meta.get_field("image").storage
    names = list(SceneImage.objects.filter(scene__in=scenes).values_list("image", flat=True))
    with transaction.atomic():
        scenes.delete()
        transaction.on_commit(lambda: [storage.delete(name) for name in names if name])


def set_scene_images(scene: Scene, chosen: dict) -> None:
    """Keep the images the scene editor chose (role -> ImageInput, KEPT to leave one as it is, None to drop it)."""
    for role in images.ROLES:
        given = chosen.get(role)
        if given is KEPT:
            continue
        for old in SceneImage.objects.filter(scene=scene, role=role):
            old.image.delete(save=False)
            old.delete()
        if given is None:
            continue
        kept = SceneImage(scene=scene, role=role, source=given.source, note=given.note[:200])
        extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[images.sniff(given.content)]
        kept.image.save(f"{role}.{extension}", ContentFile(given.content), save=False)
        kept.save()


def needs_take(scene: Scene, takes: Iterable[Generation] | None = None) -> bool:
    """True unless the scene's newest take is running or done (then "generate all" leaves it alone)."""
    takes = sorted(_takes(scene, takes), key=lambda g: g.created_at, reverse=True)
    return not takes or takes[0].status not in (*ACTIVE, Status.COMPLETED)


def generate_all(series: Series) -> tuple[list[lifecycle.Started], dict[int, str], list[Scene]]:
    """Start a take of every scene that needs one.

    Returns the jobs started, per scene id why one was refused, and the scenes skipped because
    their newest take is running or done (regenerate those one at a time).
    """
    started, refused, skipped = [], {}, []
    for card in scenes_with_takes(series):
        if not needs_take(card.scene, card.takes):
            skipped.append(card.scene)
            continue
        try:
            started.append(generate_scene(card.scene))
        except lifecycle.GenerationRefused as exc:
            refused[card.scene.pk] = str(exc)
    return started, refused, skipped


def choose_take(scene: Scene, generation: Generation) -> None:
    if generation.scene_id != scene.pk:
        raise ValueError("That take belongs to another scene.")
    Scene.objects.filter(pk=scene.pk).update(chosen_take=generation)
    scene.chosen_take = generation


def _takes(scene: Scene, takes: Iterable[Generation] | None) -> list[Generation]:
    if takes is None:
        takes = scene.takes.filter(deleted_at__isnull=True)
    return [t for t in takes if t.deleted_at is None]


def take_for(scene: Scene, takes: Iterable[Generation] | None = None) -> Generation | None:
    """The scene's take: the one chosen, else the newest completed, else the newest.

    A deleted take never counts (its video is gone). Pass `takes` when they are prefetched.
    """
    takes = sorted(_takes(scene, takes), key=lambda g: g.created_at, reverse=True)
    if scene.chosen_take_id:
        chosen = next((t for t in takes if t.pk == scene.chosen_take_id), None)
        if chosen is not None:
            return chosen
    return next((t for t in takes if t.status == Status.COMPLETED), takes[0] if takes else None)


def _newest_first(takes_queryset: QuerySet | None) -> QuerySet:
    takes_queryset = takes_queryset if takes_queryset is not None else Generation.objects.all()
    return takes_queryset.filter(deleted_at__isnull=True).order_by("-created_at", "-pk")


def scenes_with_takes(series: Series, takes_queryset: QuerySet | None = None) -> list[SceneCard]:
    """The series' scenes in order, as cards; `takes_queryset` says what to load with each take."""
    prefetch = Prefetch("takes", queryset=_newest_first(takes_queryset), to_attr="take_list")
    scenes = list(series.scenes.prefetch_related(prefetch, "images"))
    return [
        SceneCard(scene, number, scene.take_list, take_for(scene, scene.take_list), number == len(scenes))
        for number, scene in enumerate(scenes, start=1)
    ]


def card_for(scene: Scene, takes_queryset: QuerySet | None = None) -> SceneCard:
    """One scene's card without loading its series' other scenes (for the scene's own partial)."""
    takes = list(_newest_first(takes_queryset).filter(scene=scene))
    before = Q(position__lt=scene.position) | Q(position=scene.position, pk__lt=scene.pk)
    number = scene.series.scenes.filter(before).count() + 1
    is_last = not scene.series.scenes.exclude(pk=scene.pk).exclude(before).exists()
    return SceneCard(scene, number, takes, take_for(scene, takes), is_last)


def playlist(series: Series) -> list[tuple[SceneCard, Generation | None]]:
    """Each scene's card with its playable take (what "watch" plays), else None."""
    cards = scenes_with_takes(series, Generation.objects.select_related("backend"))
    return [(card, card.playable_take) for card in cards]


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
    """Per-series counts for the progress bar: scenes with a completed take out of all scenes.

    `percent` also counts running takes by their own progress, so the bar moves while they run;
    `state` changes whenever a take is added or ends (the page refreshes its scenes then).
    """
    takes = Prefetch(
        "takes",
        queryset=Generation.objects.filter(deleted_at__isnull=True).only(
            "pk", "scene_id", "status", "progress", "created_at", "deleted_at"
        ),
        to_attr="take_list",
    )
    scenes = list(series.scenes.prefetch_related(takes))
    done = running = failed = 0
    partial = 0.0
    # A scene waiting in a continuous series' chain counts as running: the bar keeps polling until it starts.
    waiting = sum(scene.chain_state == ChainState.WAITING for scene in scenes)
    for scene in scenes:
        statuses = [t.status for t in scene.take_list]
        active = [t for t in scene.take_list if t.is_active]
        running += bool(active)  # a regenerate runs in a scene that is already done
        if Status.COMPLETED in statuses:
            done += 1
        elif active:
            partial += max(t.progress for t in active) / 100
        elif statuses:
            failed += 1
    seen = sorted((t.pk, t.is_terminal) for s in scenes for t in s.take_list)
    seen += [(s.pk, s.chain_state) for s in scenes if s.chain_state]
    total = len(scenes)
    return {
        "total": total,
        "done": done,
        "running": running,
        "waiting": waiting,
        "failed": failed,
        "percent": round(100 * (done + partial) / total) if total else 0,
        "state": hashlib.sha1(repr(seen).encode()).hexdigest()[:12],
    }
