"""A series' settings and a scene's prompt (and, in the editor, its start and end images)."""

from __future__ import annotations

from django import forms
from django.urls import reverse

from characters.models import Character
from generations.jobs.forms import ImageFieldsMixin
from generations.jobs.models import CharacterFallback, Policy
from generations.providers.forms import AUTOMATIC, OfferFieldsMixin
from generations.providers.models import Backend
from generations.storyboards.models import Scene, Series


class SeriesForm(OfferFieldsMixin, forms.ModelForm):
    model = forms.ChoiceField()
    # Offered as the offers write them ("4"), cleaned to a whole number of seconds.
    seconds = forms.TypedChoiceField(label="Length", coerce=int)
    size = forms.ChoiceField()

    class Meta:
        model = Series
        fields = [
            "title",
            "description",
            "characters",
            "backend",
            "routing_policy",
            "character_fallback",
            "model",
            "seconds",
            "size",
            "continuous",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "characters": forms.CheckboxSelectMultiple,
        }
        labels = {"backend": "Default backend"}

    def __init__(self, *args, owner, backends: list[Backend], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["characters"].queryset = Character.objects.owned_by(owner)
        self.fields["characters"].help_text = "Mention them in scene prompts with @handle."
        self.fields["backend"].empty_label = AUTOMATIC
        self.fields["routing_policy"].choices = [("", "Your default"), *Policy.choices]
        self.fields["routing_policy"].help_text = "How a scene's backend is picked when no default backend is set."
        fallback = self.fields["character_fallback"]
        fallback.help_text = "When a scene's backend fails and no other backend can carry its characters."
        fallback.required = False  # a form (or a script) that leaves it out: wait
        self._set_offer_choices(backends)
        self._backends = backends

    def clean_character_fallback(self):
        return self.cleaned_data.get("character_fallback") or CharacterFallback.WAIT

    def clean(self):
        cleaned = super().clean()
        model, seconds, size = cleaned.get("model"), cleaned.get("seconds"), cleaned.get("size")
        if not (model and seconds and size):
            return cleaned
        backend = cleaned.get("backend")
        refusals = [b.refusal(model, seconds, size) for b in ([backend] if backend else self._backends)]
        if refusals and all(refusals):
            # Every candidate refuses: say why next to the backend choice, before any scene is generated.
            self.add_error("backend" if backend else "seconds", " ".join(map(str, refusals)))
        return cleaned


class SceneForm(ImageFieldsMixin, forms.ModelForm):
    """A scene's prompt; in the editor (`owner` given), also its start and end images, which every take of the
    scene starts from (each cropped to the series' size when it is started)."""

    class Meta:
        model = Scene
        fields = ["prompt"]
        widgets = {"prompt": forms.Textarea(attrs={"rows": 3, "placeholder": "@handle walks into the lighthouse"})}
        labels = {"prompt": "New scene"}

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        if owner is not None and self.instance.pk:
            self.kept_images = {
                kept.role: (
                    kept.note or "the image chosen before",
                    reverse("scene_image", args=[kept.scene_id, kept.role]),
                )
                for kept in self.instance.images.all()
            }
            self._add_image_fields(owner)
