"""The start and end image fields that the new-video form and the scene editor share.

Each image is one choice (none, an upload, one of the creator's characters' stills, or the last frame of one
of their finished videos) plus a file field for the upload. Cleaning turns them into `images.ImageInput`s,
checked (type sniffed, size capped, decoded) so a bad image is refused next to its own field, before anything
is started or sent.
"""

from __future__ import annotations

from django import forms

from characters.models import CharacterStill
from generations.jobs import images
from generations.jobs.models import Generation
from generations.states import Status

UPLOAD = "upload"
KEPT = "kept"  # the image chosen before (the scene editor): left as it is
RECENT_VIDEOS = 30  # the newest finished videos offered for "the last frame of"
HELP = (
    "JPEG, PNG or WebP, at most 10 MB and 25 megapixels. It is cropped to the video's size (scaled to cover "
    "it, centred): the preview shows what is kept."
)


def image_choices(owner, *, exclude_video: int | None = None) -> list:
    """None, an upload, each still of the owner's characters, and the last frame of each of their newest
    finished videos, grouped as a select shows them."""
    stills = (
        CharacterStill.objects.filter(character__owner=owner)
        .select_related("character")
        .order_by("character__handle", "position")
    )
    videos = (
        Generation.objects.filter(owner=owner, status=Status.COMPLETED, deleted_at__isnull=True)
        .exclude(video="")
        .exclude(pk=exclude_video)
        .only("pk", "prompt")
        .order_by("-created_at", "-pk")[:RECENT_VIDEOS]
    )
    choices: list = [("", "None"), (UPLOAD, "Upload an image…")]
    still_choices = [(f"still:{s.pk}", f"@{s.character.handle}, still {s.position}") for s in stills]
    video_choices = [(f"video:{g.pk}", f"Video #{g.pk}: {_short(g.prompt)}") for g in videos]
    if still_choices:
        choices.append(("A still of one of your characters", still_choices))
    if video_choices:
        choices.append(("The last frame of a finished video", video_choices))
    return choices


def _short(prompt: str, length: int = 48) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def image_from_choice(owner, value: str) -> images.ImageInput:
    """The image a choice names: one of the owner's stills, or the last frame of one of their finished
    videos. ImageProblem for anything else (another creator's, a deleted or unfinished video)."""
    kind, _, pk = value.partition(":")
    if kind == "still" and pk.isdigit():
        still = CharacterStill.objects.select_related("character").filter(character__owner=owner, pk=pk).first()
        if still is not None:
            return images.from_still(still)
    if kind == "video" and pk.isdigit():
        generation = Generation.objects.filter(owner=owner, pk=pk, deleted_at__isnull=True).first()
        if generation is not None:
            return images.last_frame_of(generation)
    raise images.ImageProblem("Choose one of the images offered.")


class ImageFieldsMixin:
    """Adds `start_image` / `start_upload` and `end_image` / `end_upload`; cleaned into `cleaned_data["start"]`
    and `cleaned_data["end"]` (an ImageInput, or None). Call `_add_image_fields(owner)` in `__init__`; `clean`
    checks the images (a form built without them has none to check)."""

    # role -> (the label of the image kept already, its URL): offered as "kept", the initial choice (scene editor).
    kept_images: dict[str, tuple[str, str]] = {}

    def _add_image_fields(self, owner, *, end: bool = True, exclude_video: int | None = None) -> None:
        self.image_owner = owner
        choices = image_choices(owner, exclude_video=exclude_video)
        for role in (images.START, images.END) if end else (images.START,):
            label = images.ROLE_LABELS[role].capitalize()
            kept = self.kept_images.get(role)
            self.fields[f"{role}_image"] = forms.ChoiceField(
                label=label,
                choices=[(KEPT, f"Keep: {kept[0]}"), *choices] if kept else choices,
                initial=KEPT if kept else "",
                required=False,
                help_text=HELP if role == images.START else "Where the model takes one: the video's last frame.",
            )
            self.fields[f"{role}_upload"] = forms.FileField(
                label=f"{label} file",
                required=False,
                widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
            )

    @property
    def image_field_pairs(self) -> list:
        """(choice, upload, URL of the image kept already or "") per image, start first, for the template."""
        roles = [role for role in (images.START, images.END) if f"{role}_image" in self.fields]
        return [
            (self[f"{role}_image"], self[f"{role}_upload"], self.kept_images.get(role, ("", ""))[1]) for role in roles
        ]

    def clean(self):
        cleaned = super().clean()
        self._clean_images(cleaned)
        return cleaned

    def _clean_images(self, cleaned: dict) -> None:
        for role in (images.START, images.END):
            if f"{role}_image" not in self.fields:
                continue
            cleaned[role] = None
            choice, upload = cleaned.get(f"{role}_image") or "", cleaned.get(f"{role}_upload")
            try:
                if upload and choice in ("", UPLOAD):  # a file given is used (a form sent without its script too)
                    cleaned[role] = images.from_upload(upload)
                elif choice == UPLOAD:
                    self.add_error(f"{role}_upload", "Choose an image file to upload.")
                elif choice == KEPT:
                    cleaned[role] = KEPT
                elif choice:
                    cleaned[role] = image_from_choice(self.image_owner, choice)
            except images.ImageProblem as exc:
                self.add_error(f"{role}_upload" if upload and choice in ("", UPLOAD) else f"{role}_image", str(exc))
        if cleaned.get(images.END) and not cleaned.get(images.START) and f"{images.START}_image" not in self.errors:
            self.add_error("end_image", "An end image needs a start image too.")
