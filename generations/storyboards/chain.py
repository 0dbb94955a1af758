"""A continuous series: each scene's take starts from the last frame of the previous scene's take.

The chain lives in the scenes' rows (`chain_state`, `chain_link`, `chained_from`), never in a task queue:
whoever calls `advance` (the task a finished take enqueues, the one-minute "advance-chains" schedule, a
creator's click) reads the rows and starts what is due, so a worker killed anywhere leaves nothing that the
next call cannot pick up. A link is started by a compare-and-set on (scene, waiting, link) in the same
transaction as its take, and the take's client token is made of the link (unique per creator): one take per
link, however often and however concurrently the chain is advanced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q

from generations.jobs import images, lifecycle
from generations.jobs.models import Generation
from generations.states import Status
from generations.storyboards import board
from generations.storyboards.models import ChainState, Scene, Series

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Queued:
    """What "generate all" did to a continuous series: scenes put in the chain, scenes left as they were."""

    queued: list[Scene]
    skipped: list[Scene]


def generate_all(series: Series) -> Queued:
    """Put every scene that needs a take in the chain (in order), and start the chain where it can start.

    A scene already waiting stays as it is (a double click queues nothing twice); a scene whose take is
    running or done is left alone, like "generate all" on any series."""
    queued, skipped = [], []
    for card in board.scenes_with_takes(series):
        if card.scene.chain_state == ChainState.WAITING:
            queued.append(card.scene)
        elif board.needs_take(card.scene, card.takes):
            _wait(card.scene)
            queued.append(card.scene)
        else:
            skipped.append(card.scene)
    advance(series.pk)
    return Queued(queued, skipped)


def resume_from(scene: Scene) -> None:
    """A new take of `scene` (its "try again" or "regenerate"), from the previous scene's last frame, and the
    scenes the chain stopped at after it go on once it is done."""
    _wait(scene)
    later = _later(scene).filter(chain_state=ChainState.STOPPED)
    for stopped in later:
        _wait(stopped)
    advance(scene.series_id)


def regenerate_after(scene: Scene) -> int:
    """New takes of every scene after `scene`, each from the one before (the creator asked: a re-chosen take).
    Returns how many scenes were put in the chain."""
    later = list(_later(scene))
    for one in later:
        _wait(one)
    advance(scene.series_id)
    return len(later)


def settle(series: Series) -> None:
    """A series made not continuous: its scenes leave the chain (nothing more starts by itself)."""
    if not series.continuous:
        Scene.objects.filter(series=series).exclude(chain_state=ChainState.IDLE).update(
            chain_state=ChainState.IDLE, chain_note=""
        )


def out_of_step(cards: list[board.SceneCard]) -> set[int]:
    """Scenes (by id) of a continuous series whose take did not start from the previous scene's take: the board
    offers to regenerate them. A scene whose chained take is still to come (waiting) is not out of step."""
    found = set()
    for previous, card in zip(cards, cards[1:], strict=False):
        if card.take is None or card.scene.chain_state == ChainState.WAITING:
            continue
        if previous.take is not None and card.scene.chained_from_id != previous.take.pk:
            found.add(card.scene.pk)
    return found


def take_ended(generation_id: int) -> None:
    """The hook: a scene's take ended; its series moves on if it is continuous.

    A take that completes as its scene's newest where the chain had stopped right after that scene (the scene
    was tried again from its card, or through the API, rather than from the board) puts the stopped scenes
    after it back in line: "try again" resumes the chain wherever it is pressed."""
    take = (
        Generation.objects.filter(pk=generation_id, scene__series__continuous=True)
        .select_related("scene__series")
        .first()
    )
    if take is None:
        return
    if take.status == Status.COMPLETED and take.scene.chain_state != ChainState.WAITING:
        newest = take.scene.takes.filter(deleted_at__isnull=True).order_by("-created_at", "-pk").first()
        if newest is not None and newest.pk == take.pk:
            for stopped in _stopped_after(take.scene):
                _wait(stopped)
    advance(take.scene.series_id)


def _stopped_after(scene: Scene) -> list[Scene]:
    """The stopped scenes that directly follow `scene`, in order (up to the first one that is not stopped)."""
    stopped = []
    for later in _later(scene):
        if later.chain_state != ChainState.STOPPED:
            break
        stopped.append(later)
    return stopped


def advance_all() -> None:
    """Every series with a scene waiting in its chain moves on where it can (the safety net)."""
    waiting = Scene.objects.filter(chain_state=ChainState.WAITING).values_list("series_id", flat=True).distinct()
    for series_id in list(waiting):
        try:
            advance(series_id)
        except Exception:
            log.exception("series %s: the chain could not advance", series_id)


def advance(series_id: int) -> None:
    """Start every waiting scene whose previous scene's take is complete; stop the chain after a failed one.

    Safe to call any number of times, from anywhere, at once."""
    previous: Scene | None = None
    for number, scene in enumerate(Scene.objects.filter(series_id=series_id).select_related("series"), start=1):
        if scene.chain_state == ChainState.WAITING:
            _advance_link(scene, previous, number)
            scene.refresh_from_db(fields=["chain_state", "chain_note"])
        previous = scene


def _advance_link(scene: Scene, previous: Scene | None, number: int) -> None:
    if previous is None:
        _start_link(scene, None)
        return
    before = number - 1
    if previous.chain_state == ChainState.STOPPED:
        _stop(scene, f"The chain stopped at scene {before}.")
        return
    if previous.chain_state == ChainState.WAITING:
        return  # its turn comes after the previous scene's
    newest = previous.takes.filter(deleted_at__isnull=True).order_by("-created_at", "-pk").first()
    if newest is None:
        _stop(scene, f"Scene {before} has no take to continue from: generate it first.")
    elif newest.is_active:
        return  # waits for it
    elif newest.status != Status.COMPLETED:
        reason = newest.error_message or newest.get_status_display()
        _stop(scene, f"Scene {before} did not finish ({reason}). Try scene {before} again to go on.")
    else:
        _start_link(scene, board.take_for(previous))


def _start_link(scene: Scene, from_take: Generation | None) -> None:
    """Start the scene's chained take from `from_take`'s last frame (None: the first scene, from its own images)."""
    link = scene.chain_link
    frame = None
    if from_take is not None:
        try:
            frame = images.last_frame_of(from_take)  # ffmpeg, outside the transaction: it takes a moment
        except images.ImageProblem as exc:
            _stop(scene, str(exc))
            return
    with transaction.atomic():
        claimed = Scene.objects.filter(pk=scene.pk, chain_state=ChainState.WAITING, chain_link=link).update(
            chain_state=ChainState.IDLE, chain_note="", chained_from=from_take, chosen_take=None
        )
        if not claimed:
            return  # someone else started (or stopped) this link
        try:
            board.generate_scene(scene, start_image=frame, client_token=f"chain-{scene.pk}-{link}")
        except lifecycle.GenerationRefused as exc:
            Scene.objects.filter(pk=scene.pk).update(
                chain_state=ChainState.STOPPED, chain_note=f"It could not start: {exc}"[:400]
            )


def _stop(scene: Scene, note: str) -> None:
    Scene.objects.filter(pk=scene.pk, chain_state=ChainState.WAITING, chain_link=scene.chain_link).update(
        chain_state=ChainState.STOPPED, chain_note=note[:400]
    )


def _wait(scene: Scene) -> None:
    """Put the scene (back) in the chain, as a new link."""
    Scene.objects.filter(pk=scene.pk).update(
        chain_state=ChainState.WAITING, chain_note="", chain_link=F("chain_link") + 1
    )
    scene.refresh_from_db(fields=["chain_state", "chain_note", "chain_link"])


def _later(scene: Scene):
    """The scenes after `scene` in its series' order."""
    return scene.series.scenes.filter(Q(position__gt=scene.position) | Q(position=scene.position, pk__gt=scene.pk))


def offer_after(scene: Scene) -> int:
    """How many scenes follow `scene` when the next one did not start from `scene`'s take (a re-chosen take):
    the board offers to regenerate them. 0 when there is nothing to offer."""
    if not scene.series.continuous:
        return 0
    later = list(_later(scene))
    if not later or later[0].chain_state == ChainState.WAITING:
        return 0
    take, next_take = board.take_for(scene), board.take_for(later[0])
    if take is None or next_take is None or later[0].chained_from_id == take.pk:
        return 0
    return len(later)
