"""Forms for the character library: create from a URL or an uploaded clip, or from a finished video."""

from __future__ import annotations

import io
from pathlib import Path

from django import forms
from django.conf import settings
from PIL import Image

from characters.models import Character
from generations.providers.models import Backend
from sora_studio import netguard

CLIP_EXTENSIONS = {".mp4", ".webm", ".mov"}


def clean_handle(owner, value: str) -> str:
    """Handles are written as @handle but stored bare and lower-case; one per owner."""
    handle = value.strip().lstrip("@").lower()
    if Character.objects.owned_by(owner).filter(handle=handle).exists():
        raise forms.ValidationError(f"You already have a character called @{handle}; choose another handle.")
    return handle


class HandleMixin:
    def clean_handle(self):
        return clean_handle(self.owner, self.cleaned_data["handle"])


class CharacterForm(HandleMixin, forms.ModelForm):
    video_url = forms.URLField(
        required=False,
        max_length=2000,
        label="Video URL",
        assume_scheme="https",
        help_text="A short clip of the character (2–4 s works best).",
    )
    clip = forms.FileField(
        required=False,
        label="…or upload a clip",
        widget=forms.ClearableFileInput(attrs={"accept": "video/mp4,video/webm,video/quicktime"}),
    )
    backends = forms.ModelMultipleChoiceField(
        queryset=Backend.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Register on",
        help_text="A character id lives on one backend only; register it wherever you will use it.",
    )

    class Meta:
        model = Character
        fields = ["name", "handle", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"handle": "Written as @handle in prompts: lowercase letters, digits and underscores."}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        capable = Backend.objects.for_characters()
        self.fields["backends"].queryset = capable
        if not self.is_bound:
            self.initial["backends"] = list(capable)

    def clean_clip(self):
        clip = self.cleaned_data.get("clip")
        if not clip:
            return clip
        if Path(clip.name).suffix.lower() not in CLIP_EXTENSIONS:
            raise forms.ValidationError("Upload an .mp4, .webm or .mov clip.")
        limit = settings.CHARACTER_CLIP_MAX_BYTES
        if clip.size > limit:
            raise forms.ValidationError(f"The clip is larger than {limit // (1024 * 1024)} MB.")
        return clip

    def clean_video_url(self):
        url = self.cleaned_data["video_url"]
        if url:
            try:
                netguard.check(url)
            except netguard.UnsafeURL as exc:
                raise forms.ValidationError(str(exc)) from None
        return url

    def clean(self):
        cleaned = super().clean()
        if "video_url" in cleaned and "clip" in cleaned:  # both fields valid on their own
            if cleaned["video_url"] and cleaned["clip"]:
                raise forms.ValidationError("Give a video URL or upload a clip, not both.")
            if not cleaned["video_url"] and not cleaned["clip"]:
                raise forms.ValidationError("Give a video URL or upload a clip.")
        return cleaned


class ExtractCharacterForm(HandleMixin, forms.ModelForm):
    """A character made from one of the creator's finished videos."""

    class Meta:
        model = Character
        fields = ["name", "handle"]
        help_texts = {"handle": "Written as @handle in prompts."}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner


class StillForm(forms.Form):
    """An uploaded still for one of the three places: sniffed, capped and decoded before it is kept."""

    position = forms.TypedChoiceField(choices=[(1, "1"), (2, "2"), (3, "3")], coerce=int)
    image = forms.FileField(help_text="A JPEG, PNG or WebP of the character, at most 10 MB.")

    MAX_BYTES = 10 * 1024 * 1024

    def clean_image(self) -> bytes:
        upload = self.cleaned_data["image"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("That image is larger than 10 MB.")
        data = upload.read()
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ("JPEG", "PNG", "WEBP"):
                    raise forms.ValidationError("Upload a JPEG, PNG or WebP image.")
                if image.width * image.height > 40_000_000:
                    raise forms.ValidationError("That image has too many pixels (40 megapixels at most).")
                image.load()  # decode it all: a truncated or booby-trapped file fails here, not at a provider
                converted = image.convert("RGB")
        except (OSError, Image.DecompressionBombError, SyntaxError, ValueError):
            raise forms.ValidationError("That file is not an image that can be read.") from None
        converted.thumbnail((1024, 1024))
        out = io.BytesIO()
        converted.save(out, format="JPEG", quality=90)
        return out.getvalue()
