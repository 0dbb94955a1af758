"""Videos through the API: the same `lifecycle.start` as the form, plus what an API adds on top.

- `model: "auto"` asks the creator's routing policy to choose the model as well as the backend (among those that
  take the images asked for);
- `input_reference` (and the studio's `end_image`) become the video's start (and end) image: a file or data URL,
  the last frame of one of the creator's videos, or a still of one of their characters;
- an `Idempotency-Key` makes a retried create find its video (another body under the same key is refused);
- a token's monthly cap is checked in the transaction that records the estimate (all rolled back if over).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, QuerySet

from characters import mentions
from characters.models import Character
from generations.billing.models import CostKind
from generations.gateway import caps
from generations.gateway.models import ApiCharacter, ApiToken, ApiVideo
from generations.gateway.params import ImageAsk, VideoAsk
from generations.gateway.wire import VIDEO_PREFIX, ApiError, invalid, not_found, parse_id
from generations.jobs import images, lifecycle, router
from generations.jobs.models import Generation
from generations.providers.models import Backend, Refusal


@dataclass(frozen=True)
class Made:
    generation: Generation
    created: bool = True  # False: an earlier request (the same Idempotency-Key, the same remix) made it


# --- Finding ---------------------------------------------------------------------------------------


def visible_to(user) -> QuerySet:
    """The creator's own videos, not deleted: staff too see only their own through the API."""
    return Generation.objects.filter(owner=user, deleted_at__isnull=True).select_related(
        "backend", "remix_of", "api_link__remixed_from"
    )


def find(user, given: str) -> Generation:
    """The creator's video with this API id; another creator's, a deleted or a made-up id is a 404."""
    uid = parse_id(given, VIDEO_PREFIX)
    generation = visible_to(user).filter(uuid=uid).first() if uid else None
    if generation is None:
        raise not_found("video", given, "video_id")
    return generation


def listing(user, *, after: str, limit: int, order: str) -> tuple[list[Generation], bool]:
    """One page, newest first (desc) or oldest first (asc), after the video `after`: keyset, no OFFSET."""
    videos = visible_to(user)
    if after:
        uid = parse_id(after, VIDEO_PREFIX)
        mark = Generation.objects.filter(owner=user, uuid=uid).values("created_at", "pk").first() if uid else None
        if mark is None:
            raise invalid(f"'after' names no video of yours ({after[:80]}).", "after")
        at, pk = mark["created_at"], mark["pk"]
        if order == "desc":
            videos = videos.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
        else:
            videos = videos.filter(Q(created_at__gt=at) | Q(created_at=at, pk__gt=pk))
    ordering = ["-created_at", "-pk"] if order == "desc" else ["created_at", "pk"]
    rows = list(videos.order_by(*ordering)[: limit + 1])
    return rows[:limit], len(rows) > limit


# --- Creating ----------------------------------------------------------------------------------------


def create(token: ApiToken, ask: VideoAsk, *, idempotency_key: str = "") -> Made:
    """Start one video for the token's creator, or find the one an earlier create with this key made."""
    owner = token.user
    body_hash = ask.digest() if idempotency_key else ""
    if idempotency_key and (earlier := _earlier(owner, idempotency_key, body_hash)):
        return earlier
    characters = _characters(owner, ask)
    _check_character_ids(owner, ask, characters)
    policy = lifecycle.default_policy(owner)
    model = _auto_model(ask, characters, policy) if ask.model == "auto" else ask.model
    request = lifecycle.GenerationRequest(
        owner,
        prompt=ask.prompt,
        model=model,
        seconds=ask.seconds,
        size=ask.size,
        backend=ask.backend,
        policy=policy,
        start_image=_image_input(owner, ask.start_image),
        end_image=_image_input(owner, ask.end_image),
        # The key, hashed to fit: a create retried at the same moment finds the first one's job.
        client_token=f"api-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:60]}" if idempotency_key else "",
    )
    try:
        with transaction.atomic():
            caps.lock(token)
            started = lifecycle.start(request)
            if not started.created:  # a twin with the same key committed while this one was checked
                return _earlier(owner, idempotency_key, body_hash) or Made(started.generation, created=False)
            ApiVideo.objects.create(
                generation=started.generation,
                user=owner,
                token=token,
                idempotency_key=idempotency_key,
                body_hash=body_hash,
            )
            caps.check(token, _estimate(started.generation))
    except lifecycle.GenerationRefused as exc:
        raise _refused(exc, ask, model) from None
    except caps.CapExceeded as exc:
        raise _over_budget(str(exc)) from None
    return Made(started.generation)


def _earlier(owner, key: str, body_hash: str) -> Made | None:
    link = ApiVideo.objects.filter(user=owner, idempotency_key=key).select_related("generation").first()
    if link is None:
        return None
    if link.body_hash != body_hash:
        raise ApiError(
            409,
            "This Idempotency-Key was used with a different request. Use a new key for a new video.",
            param="Idempotency-Key",
            code="idempotency_key_reused",
            retry=False,
        )
    return Made(link.generation, created=False)


def _characters(owner, ask: VideoAsk) -> list[Character]:
    try:
        return mentions.resolve(owner, ask.prompt)
    except mentions.MentionError as exc:
        raise invalid(str(exc), "prompt", "character_not_found") from None


def _check_character_ids(owner, ask: VideoAsk, mentioned: list[Character]) -> None:
    """OpenAI's `characters: [{"id"}]`: here a character is used by writing its @handle in the prompt, so
    each one given must be mentioned; one that is not is refused, never added to the prompt silently."""
    handles = {c.handle for c in mentioned}
    for given in ask.character_ids:
        link = ApiCharacter.objects.filter(character__owner=owner, public_id=parse_id(given, "char_")).first()
        if link is None:
            raise invalid(f"No character of yours has the id {given[:80]}.", "characters", "character_not_found")
        if link.character.handle not in handles:
            raise invalid(
                f"Write @{link.character.handle} in the prompt where {link.character.name} appears: "
                "characters travel by their @handle here.",
                "characters",
                "character_not_mentioned",
            )


def _image_input(owner, given: ImageAsk | None) -> images.ImageInput | None:
    """The image an ask names, for this creator: its bytes, the last frame of one of their finished videos, or a
    still of one of their characters. Another creator's video or character is not found, as a 400 on the param."""
    if given is None:
        return None
    if given.content:
        return images.ImageInput(given.content, "upload", given.name)
    try:
        if given.video_id:
            uid = parse_id(given.video_id, VIDEO_PREFIX)
            generation = (
                Generation.objects.filter(owner=owner, uuid=uid, deleted_at__isnull=True).first() if uid else None
            )
            if generation is None:
                raise invalid(f"No video of yours has the id {given.video_id[:80]}.", given.param, "video_not_found")
            return images.last_frame_of(generation)
        character = Character.objects.owned_by(owner).filter(handle=given.character).first()
        if character is None:
            raise invalid(f"You have no character @{given.character}.", given.param, "character_not_found")
        still = character.stills.filter(position=given.still).first()
        if still is None:
            raise invalid(f"@{character.handle} has no still {given.still}.", given.param, "still_not_found")
        return images.from_still(still)
    except images.ImageProblem as exc:
        raise invalid(str(exc), given.param, "invalid_image") from None


def _estimate(generation: Generation):
    return generation.cost_entries.filter(kind=CostKind.ESTIMATE).values_list("amount", flat=True).first() or 0


# --- model "auto" ------------------------------------------------------------------------------------


def _able_models(backends: list[Backend], seconds: int, size: str) -> list[str]:
    """Models some of `backends` offer at this length and size, in the order the backends list them."""
    models = []
    for backend in backends:
        models += [m for m, o in backend.offer().items() if str(seconds) in o["seconds"] and size in o["sizes"]]
    return list(dict.fromkeys(models))


def _auto_model(ask: VideoAsk, characters: list[Character], policy: str) -> str:
    """The model of the route the policy prefers among every (backend, model) able to make this video."""
    backends = [ask.backend] if ask.backend else list(Backend.objects.enabled().with_prices())
    models = _able_models(backends, ask.seconds, ask.size)
    if not models:
        raise invalid(_no_offer(backends, ask), _param_at_fault(backends, "", ask))
    routes, model_of = [], {}
    for model in models:
        for backend in backends:
            result = router.assess(backend, characters, model, str(ask.seconds), ask.size, images=ask.image_roles)
            if not isinstance(result, Refusal):
                routes.append(result)
                model_of[id(result.quote)] = model  # `best` hands back a new Route around the same quote
    if not routes:
        return models[0]  # none can: `start` refuses it, with every backend's reason
    return model_of.get(id(router.best(routes, characters, policy).quote), models[0])


def _no_offer(backends: list[Backend], ask: VideoAsk) -> str:
    offered = []
    for backend in backends:
        for model, offer in backend.offer().items() if backend.enabled else ():
            offered.append(f"{backend.name}: {model} in {'/'.join(offer['seconds'])} s at {', '.join(offer['sizes'])}")
    listed = "; ".join(offered) or "nothing (no backend is enabled)"
    return f"No model makes a {ask.seconds} s video at {ask.size}. Offered: {listed}."


def _param_at_fault(backends: list[Backend], model: str, ask: VideoAsk) -> str | None:
    """Which parameter no backend can meet: the model, the seconds or the size (None: something else)."""
    offers = [o for b in backends for m, o in b.offer().items() if not model or m == model]
    if not offers:
        return "model" if model else None
    if not any(str(ask.seconds) in o["seconds"] for o in offers):
        return "seconds"
    if not any(str(ask.seconds) in o["seconds"] and ask.size in o["sizes"] for o in offers):
        return "size"
    return None


# --- What a refusal becomes ----------------------------------------------------------------------------


def _refused(exc: lifecycle.GenerationRefused, ask: VideoAsk, model: str) -> ApiError:
    """`start` refuses with a message, a form field and a code saying which kind of refusal it is."""
    if exc.code == "over_budget":
        return _over_budget(str(exc))
    if exc.code == "invalid_image":
        return invalid(str(exc), "end_image" if exc.field == "end_image" else "input_reference", "invalid_image")
    if exc.code == "no_backend":
        if exc.field == "prompt":  # a mentioned character is not ready where the video could be made
            return invalid(str(exc), "prompt", "character_not_ready")
        if image_param := _image_at_fault(ask, model):
            return invalid(str(exc), image_param, "no_backend_able")
        if ask.backend is not None and not ask.backend.enabled:
            return invalid(str(exc), "backend", "backend_disabled")
        backends = [ask.backend] if ask.backend else list(Backend.objects.enabled())
        param = _param_at_fault(backends, model, ask) or ("backend" if ask.backend else None)
        return invalid(str(exc), param, "no_backend_able")
    return invalid(str(exc), exc.field if exc.field in ("prompt", "backend") else None)


def _image_at_fault(ask: VideoAsk, model: str) -> str | None:
    """The image no able backend can take ("input_reference", or "end_image" when the start image alone could
    go), or None when the images are not what stops the video."""
    backends = [ask.backend] if ask.backend else list(Backend.objects.enabled().with_prices())

    def able(roles: tuple[str, ...]) -> bool:
        return any(
            not isinstance(router.assess(b, [], model, str(ask.seconds), ask.size, images=roles), Refusal)
            for b in backends
        )

    if not ask.image_roles or not able(()):
        return None
    return "end_image" if ask.end_image and able((images.START,)) else "input_reference"


def _over_budget(message: str) -> ApiError:
    # OpenAI's own answer to a spent quota: 429 insufficient_quota. Waiting will not help: no retry.
    return ApiError(429, message, code="insufficient_quota", type="insufficient_quota", retry=False)


# --- Remix, delete ---------------------------------------------------------------------------------


def remix(token: ApiToken, generation: Generation, prompt: str) -> Made:
    """A variation of a finished video (the provider's remix where it has one, else a new job), capped like a create."""
    try:
        with transaction.atomic():
            caps.lock(token)
            started = lifecycle.remix(generation, prompt)
            if not started.created:
                return Made(started.generation, created=False)  # the same remix asked again
            ApiVideo.objects.create(
                generation=started.generation, user=token.user, token=token, remixed_from=generation
            )
            caps.check(token, _estimate(started.generation))
    except lifecycle.GenerationRefused as exc:
        if exc.code == "over_budget":
            raise _over_budget(str(exc)) from None
        if exc.code == "not_completed":
            raise invalid(str(exc), "video_id", "video_not_completed") from None
        raise invalid(str(exc), "prompt" if exc.field == "prompt" else None) from None
    except caps.CapExceeded as exc:
        raise _over_budget(str(exc)) from None
    return Made(started.generation)


def delete(generation: Generation) -> None:
    try:
        lifecycle.delete(generation)
    except lifecycle.GenerationRefused as exc:
        raise ApiError(400, str(exc), param="video_id", code="video_not_finished", retry=False) from None
