"""The character library: list, create, register on backends, extract from a finished video."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from characters import avatars, registry, stills
from characters.forms import CharacterForm, ExtractCharacterForm, StillForm
from characters.models import BindingStatus, Character, CharacterBinding
from generations.jobs.models import Generation
from generations.providers.models import Backend
from generations.states import Status
from sora_studio import files
from sora_studio.htmx import partial_wanted, redirect_to, vary_on_htmx


def _characters_for(user):
    bindings = CharacterBinding.objects.select_related("backend").order_by("backend__name")
    return Character.objects.for_user(user).select_related("owner").prefetch_related(Prefetch("bindings", bindings))


def _get_character_for_user(request: HttpRequest, pk: int) -> Character:
    return get_object_or_404(_characters_for(request.user), pk=pk)


def _get_generation_for_user(request: HttpRequest, pk: int) -> Generation:
    return get_object_or_404(Generation.objects.for_user(request.user).select_related("backend"), pk=pk)


@require_GET
def character_list(request: HttpRequest) -> HttpResponse:
    """The creator's characters, with their status on each backend."""
    characters = list(_characters_for(request.user))
    for character in characters:
        character.processing = _any_processing(character)
    return render(request, "characters/list.html", {"characters": characters})


@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    """Create a character from a video URL or an uploaded clip and register it on chosen backends."""
    form = CharacterForm(
        request.POST or None, request.FILES or None, instance=Character(owner=request.user), owner=request.user
    )
    if request.method == "POST" and form.is_valid():
        character = form.instance
        character.source_url = form.cleaned_data["video_url"]
        if form.cleaned_data["clip"]:
            character.source_clip = form.cleaned_data["clip"]
        try:
            with transaction.atomic():
                character.save()
                for backend in form.cleaned_data["backends"]:
                    registry.bind(character, backend)
        except IntegrityError:  # the same handle saved a moment ago, by another tab
            form.add_error("handle", f"You already have a character called @{character.handle}.")
        else:
            # An uploaded clip is here already: its first frame becomes the avatar now. A clip given
            # by URL is fetched by the worker; the avatar view makes that one when first asked.
            avatars.ensure_avatar(character)
            stills.take_from_clip(character)
            if not character.source_url and (note := registry.unreachable_upload_note(form.cleaned_data["backends"])):
                messages.warning(request, note)
            if form.cleaned_data["backends"]:
                messages.success(request, f"@{character.handle} is being registered.")
            else:
                messages.success(request, f"@{character.handle} is saved. Register it on a backend below to use it.")
            return redirect("characters:detail", pk=character.pk)
    note = registry.unreachable_upload_note(Backend.objects.for_characters())
    return render(request, "characters/new.html", {"form": form, "upload_note": note})


def _binding_rows(character: Character) -> list[dict]:
    """Every capable backend: the character's binding there, if any."""
    bindings = {b.backend_id: b for b in character.bindings.all()}
    backends = {b.pk: b for b in Backend.objects.for_characters()}
    for binding in bindings.values():
        backends.setdefault(binding.backend_id, binding.backend)
    return [
        {"backend": backend, "binding": bindings.get(pk), "travel": registry.how_it_travels(character, backend)}
        for pk, backend in sorted(backends.items(), key=lambda item: item[1].name)
    ]


def _render_bindings(
    request: HttpRequest, character: Character, *, polled: bool, errors: dict[int, str] | None = None
) -> HttpResponse:
    rows = _binding_rows(character)
    for row in rows:
        row["error"] = (errors or {}).get(row["backend"].pk, "")
    processing = any(r["binding"] and r["binding"].status == BindingStatus.PROCESSING for r in rows)
    status = HTMX_STOP_POLLING if polled and not processing else 200
    return render(
        request,
        "characters/detail.html#bindings",
        {"character": character, "rows": rows, "processing": processing},
        status=status,
    )


def _any_processing(character: Character) -> bool:
    return any(b.status == BindingStatus.PROCESSING for b in character.bindings.all())


@require_GET
def binding_status(request: HttpRequest, pk: int) -> HttpResponse:
    """A character's statuses on the list page; polled while any registration is processing."""
    character = _get_character_for_user(request, pk)
    if not partial_wanted(request):
        return vary_on_htmx(redirect("characters:detail", pk=pk))
    character.processing = _any_processing(character)
    response = render(
        request,
        "characters/list.html#status",
        {"character": character},
        status=200 if character.processing else HTMX_STOP_POLLING,
    )
    return vary_on_htmx(response)


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A character: its bindings (live while any is processing) and the videos it appears in."""
    character = _get_character_for_user(request, pk)
    if partial_wanted(request):
        response = _render_bindings(request, character, polled=True)
    else:
        rows = _binding_rows(character)
        generations = Generation.objects.for_user(request.user).filter(characters=character).with_card_data()[:24]
        context = {
            "character": character,
            "rows": rows,
            "processing": any(r["binding"] and r["binding"].status == BindingStatus.PROCESSING for r in rows),
            "generations": generations,
        }
        response = render(request, "characters/detail.html", context)
    return vary_on_htmx(response)


@require_POST
def register(request: HttpRequest, pk: int) -> HttpResponse:
    """Register the character on another backend from its stored clip (or try a failed one again)."""
    character = _get_character_for_user(request, pk)
    try:
        # The field refuses any id the database cannot look up ("²" passes isdigit(), 5,000 digits int()).
        backend = forms.ModelChoiceField(Backend.objects.for_characters()).clean(request.POST.get("backend"))
    except ValidationError:
        raise Http404("No enabled backend that holds characters has this id.") from None
    existing = character.binding_on(backend)
    error = ""
    if not (character.source_clip or character.source_url or (existing and existing.extract_from_task)):
        error = "This character has no stored clip to register from. Make a new character from a clip."
    else:
        with transaction.atomic():
            registry.bind(character, backend)
    if request.htmx:
        return _render_bindings(
            request, _get_character_for_user(request, pk), polled=False, errors={backend.pk: error} if error else None
        )
    if error:
        messages.error(request, f"{backend.name}: {error}")
    return redirect("characters:detail", pk=character.pk)


@require_POST
def extract(request: HttpRequest, generation_pk: int) -> HttpResponse:
    """Make a character from a finished video: keep its clip, and extract it where the backend can."""
    generation = _get_generation_for_user(request, generation_pk)
    form = ExtractCharacterForm(request.POST, instance=Character(owner=request.user), owner=request.user)
    if generation.status != Status.COMPLETED or not generation.video:
        form.add_error(None, "Only a completed video with a stored clip can become a character.")
    if form.is_valid():
        character = form.instance
        character.source_generation = generation
        try:
            with transaction.atomic():
                # The stored clip keeps the character consistent when it is registered elsewhere later.
                with generation.video.open("rb") as video:
                    character.source_clip.save("clip.mp4", File(video), save=False)
                if generation.thumbnail:
                    with generation.thumbnail.open("rb") as thumb:
                        name = generation.thumbnail.name
                        character.avatar.save("avatar" + name[name.rfind(".") :], File(thumb), save=False)
                character.save()
                backend = generation.backend
                if backend.supports_extract and generation.remote_id:
                    registry.bind(character, backend, extract_from_task=generation.remote_id)
                elif backend.supports_characters:
                    registry.bind(character, backend)
        except IntegrityError:
            form.add_error("handle", f"You already have a character called @{character.handle}.")
        except FileNotFoundError:
            form.add_error(None, "The video file is missing from storage.")
        else:
            url = reverse("characters:detail", args=[character.pk])
            messages.success(request, f"@{character.handle} is being registered on {generation.backend.name}.")
            return redirect_to(request, url)
    context = {"generation": generation, "extract_form": form}
    template = "characters/extract.html#form" if request.htmx else "characters/extract.html"
    return render(request, template, context)


@require_GET
def avatar(request: HttpRequest, pk: int) -> HttpResponse:
    """The character's avatar, only to its owner (and staff): made from its clip on first request if
    need be (a clip given by URL arrives later), else its initial, never cached, so a later visit
    finds the real one."""
    character = _get_character_for_user(request, pk)
    if avatars.ensure_avatar(character):
        try:
            response = files.serve(request, character.avatar, content_type="image/jpeg")
        except Http404:  # missing from storage
            pass
        else:
            if not response.has_header("Cache-Control"):  # a signed link sets its own, shorter than its life
                response["Cache-Control"] = "private, max-age=300"
            return response
    response = HttpResponse(avatars.initials_svg(character), content_type="image/svg+xml")
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def still(request: HttpRequest, pk: int, position: int) -> FileResponse:
    """One of the character's stills, to its owner (and staff)."""
    character = _get_character_for_user(request, pk)
    still = character.stills.filter(position=position).first()
    if still is None:
        raise Http404("No still in that place.")
    return files.serve(request, still.image, content_type="image/jpeg")


@require_POST
def upload_still(request: HttpRequest, pk: int) -> HttpResponse:
    """Put an uploaded still in one of the three places (what reference-image backends are sent)."""
    character = _get_character_for_user(request, pk)
    form = StillForm(request.POST, request.FILES)
    if form.is_valid():
        stills.replace(character, form.cleaned_data["position"], form.cleaned_data["image"])
        messages.success(request, f"Still {form.cleaned_data['position']} of @{character.handle} replaced.")
    else:
        problems = " ".join(error for errors in form.errors.values() for error in errors)
        messages.error(request, f"The still was not kept: {problems}")
    return redirect("characters:detail", pk=character.pk)


@require_GET
def source_clip(request: HttpRequest, pk: int) -> FileResponse:
    """The stored source clip, to its owner (and staff), to check what gets registered."""
    character = _get_character_for_user(request, pk)
    return files.serve(request, character.source_clip)


@login_not_required
@require_GET
def clip(request: HttpRequest, token: str) -> FileResponse:
    """The stored source clip behind a signed, expiring link (task_api backends fetch clips by URL).

    Streamed even from a bucket: a provider fetches it once, and some (the simulator among them) never
    follow a redirect to another origin."""
    character = registry.character_for_clip_token(token)
    if character is None:
        raise Http404("This link is not valid (or has expired).")
    name = character.source_clip.name
    return files.serve(
        request, character.source_clip, stream=True, filename=f"{character.handle}{name[name.rfind('.') :]}"
    )
