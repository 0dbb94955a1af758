"""Forms for a new generation and for series: choices come from what the enabled backends offer."""

from __future__ import annotations

import uuid

from django import forms

from characters.models import Character
from generations.models import Backend, Scene, Series

AUTOMATIC = "Automatic (cheapest that can)"


def offer_choices(backends: list[Backend]) -> tuple[list[str], list[str], list[str]]:
    """Models, seconds and sizes offered by any of `backends` (the router refuses bad combinations)."""
    models: dict[str, None] = {}
    seconds: set[str] = set()
    sizes: dict[str, None] = {}
    for backend in backends:
        for model, offer in backend.offer().items():
            models.setdefault(model)
            seconds.update(str(s) for s in offer.get("seconds", []))
            sizes.update(dict.fromkeys(offer.get("sizes", [])))
    ordered_seconds = sorted(seconds, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
    return list(models), ordered_seconds, list(sizes)


def _pairs(values: list[str], suffix: str = "") -> list[tuple[str, str]]:
    return [(v, f"{v}{suffix}") for v in values]


class OfferFieldsMixin:
    """Model, seconds and size as selects over the union of the enabled backends' offers."""

    def _set_offer_choices(self, backends: list[Backend]) -> None:
        models, seconds, sizes = offer_choices(backends)
        self.fields["backend"].queryset = Backend.objects.filter(pk__in=[b.pk for b in backends])
        self.fields["model"].choices = _pairs(models)
        self.fields["seconds"].choices = _pairs(seconds, " s")
        self.fields["size"].choices = _pairs(sizes)
        for name, values, preferred in [("model", models, "sora-2"), ("seconds", seconds, "4"),
                                        ("size", sizes, "720x1280")]:
            if values and not self.initial.get(name):
                self.initial[name] = preferred if preferred in values else values[0]


class GenerationForm(OfferFieldsMixin, forms.Form):
    # A one-time token: the same form sent twice (a double click, a retried POST) starts one video.
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "A paper boat on a rainy street, @handle watching"}),
        max_length=32000,
        help_text="Mention your characters with @handle.",
    )
    backend = forms.ModelChoiceField(queryset=Backend.objects.none(), required=False, empty_label=AUTOMATIC)
    model = forms.ChoiceField()
    seconds = forms.ChoiceField(label="Length")
    size = forms.ChoiceField()

    def __init__(self, *args, backends: list[Backend], **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("token", uuid.uuid4().hex)
        self._set_offer_choices(backends)


class SeriesForm(OfferFieldsMixin, forms.ModelForm):
    model = forms.ChoiceField()
    seconds = forms.ChoiceField(label="Length")
    size = forms.ChoiceField()

    class Meta:
        model = Series
        fields = ["title", "description", "characters", "backend", "model", "seconds", "size"]
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
        self._set_offer_choices(backends)
        self._backends = backends

    def clean(self):
        cleaned = super().clean()
        model, seconds, size = cleaned.get("model"), cleaned.get("seconds"), cleaned.get("size")
        if not (model and seconds and size):
            return cleaned
        backend = cleaned.get("backend")
        refusals = [b.allows(model, seconds, size) for b in ([backend] if backend else self._backends)]
        if refusals and all(refusals):
            # Every candidate refuses: say why next to the backend choice, before any scene is generated.
            self.add_error("backend" if backend else "seconds", " ".join(refusals))
        return cleaned


class SceneForm(forms.ModelForm):
    class Meta:
        model = Scene
        fields = ["prompt"]
        widgets = {"prompt": forms.Textarea(attrs={"rows": 3, "placeholder": "@handle walks into the lighthouse"})}
        labels = {"prompt": "New scene"}
