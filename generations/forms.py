"""Forms for a new generation and for series: choices come from what the enabled backends offer."""

from __future__ import annotations

import uuid

from django import forms

from characters.models import Character
from generations.jobs.forms import ImageFieldsMixin
from generations.jobs.models import CreatorSettings, Policy
from generations.providers.forms import AUTOMATIC, OfferFieldsMixin, narrowed_offer, offer_choices, pairs, pick
from generations.providers.models import Backend
from generations.states import Status
from generations.storyboards.models import Series


class GenerationForm(ImageFieldsMixin, OfferFieldsMixin, forms.Form):
    # A one-time token: the same form sent twice (a double click, a retried POST) starts one video.
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "A paper boat on a rainy street, @handle watching"}),
        max_length=32000,
        help_text="Mention your characters with @handle.",
    )
    backend = forms.ModelChoiceField(queryset=Backend.objects.none(), required=False, empty_label=AUTOMATIC)
    # Blank (a form sent without it): the creator's default. A chosen backend is pinned, whatever this says.
    policy = forms.ChoiceField(
        label="Routing",
        choices=Policy.choices,
        required=False,
        help_text="How the backend is picked when it is automatic.",
    )
    model = forms.ChoiceField()
    # Offered as the offers write them ("4"), cleaned to a whole number of seconds.
    seconds = forms.TypedChoiceField(label="Length", coerce=int)
    size = forms.ChoiceField()

    def __init__(self, *args, backends: list[Backend], owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("token", uuid.uuid4().hex)
        # Validation accepts what any backend offers, so a combination the chosen backend lacks is
        # refused by the router with a reason next to the backend ("makes sora-2 in 10, 15 seconds").
        self._set_offer_choices(backends)
        self._offer_only_what_the_choice_allows(backends)
        if owner is not None:  # the start and end images (the offer-only re-render needs none)
            self._add_image_fields(owner)

    def _offer_only_what_the_choice_allows(self, backends: list[Backend]) -> None:
        """The selects list only what the chosen backend (automatic: any backend) makes of the chosen model."""
        values = self.data if self.is_bound else self.initial
        chosen = values.get("backend") or ""
        chosen = str(getattr(chosen, "pk", chosen))
        candidates = [b for b in backends if str(b.pk) == chosen] or backends
        model = pick(values.get("model") or "", offer_choices(candidates)[0], "sora-2")
        models, seconds, sizes = narrowed_offer(candidates, model)
        self.fields["model"].widget.choices = pairs(models)
        self.fields["seconds"].widget.choices = pairs(seconds, " s")
        self.fields["size"].widget.choices = pairs(sizes)
        if not self.is_bound:
            self.initial["model"] = model
            self.initial["seconds"] = pick(str(self.initial.get("seconds") or ""), seconds, "4")
            self.initial["size"] = pick(self.initial.get("size") or "", sizes, "720x1280")


class CreatorSettingsForm(forms.ModelForm):
    class Meta:
        model = CreatorSettings
        fields = ["routing_policy"]
        labels = {"routing_policy": "Default routing"}
        help_texts = {
            "routing_policy": "How a video's backend is picked when you choose none and its series sets no policy."
        }


class RemixForm(forms.Form):
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=32000)

    def __init__(self, *args, generation, native: bool, **kwargs):
        kwargs.setdefault("auto_id", "remix_%s")
        super().__init__(*args, **kwargs)
        prompt = self.fields["prompt"]
        if native:
            prompt.label = "What should change"
            prompt.widget.attrs["placeholder"] = "The same shot at night, in the rain"
            prompt.help_text = f"{generation.backend.name} remixes this video: describe the change."
        else:
            prompt.label = "Prompt for the new video"
            prompt.help_text = (
                f"{generation.backend.name} cannot remix, so this starts a new video with the same "
                "model, length and size, on whichever backend can make it."
            )
            self.initial.setdefault("prompt", generation.prompt)


STATUS_FILTERS = [("", "Any status"), ("active", "Queued or running"), *Status.choices]


class GalleryFilterForm(forms.Form):
    """The gallery's filters, read from the query string; a field that does not validate is ignored."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search prompts",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Words in the prompt"}),
    )
    status = forms.ChoiceField(required=False, choices=STATUS_FILTERS)
    series = forms.ModelChoiceField(queryset=Series.objects.none(), required=False, empty_label="Any series")
    character = forms.ModelChoiceField(queryset=Character.objects.none(), required=False, empty_label="Any character")
    backend = forms.ModelChoiceField(queryset=Backend.objects.all(), required=False, empty_label="Any backend")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    # The choice fields: where their choices come from, the field their label is, and how it is written.
    CHOICES = {"series": ("title", "{}"), "character": ("handle", "@{}"), "backend": ("name", "{}")}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        for name, queryset in self.choice_sources(user).items():
            self.fields[name].queryset = queryset
        self.fields["character"].label_from_instance = lambda character: f"@{character.handle}"

    @staticmethod
    def choice_sources(user) -> dict:
        """The querysets of the choice fields, for `user` (each in its model's own order)."""
        return {
            "series": Series.objects.for_user(user).only("pk", "title"),
            "character": Character.objects.for_user(user).only("pk", "handle"),
            "backend": Backend.objects.only("pk", "name"),
        }

    @classmethod
    def sets_a_filter(cls, query) -> bool:
        """Whether the query string sets any filter (else there is nothing to validate, or to build a form for)."""
        return any(query.get(name) for name in cls.base_fields)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned

    @property
    def active(self) -> dict:
        """The filters that validated and are set."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return {name: value for name, value in data.items() if value not in (None, "")}
