"""Choosing among what backends offer: the model, seconds and size fields every generation form shares."""

from __future__ import annotations

from generations.providers.models import Backend

AUTOMATIC = "Automatic (by the routing policy)"


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
    return list(models), _ordered_seconds(seconds), list(sizes)


def _ordered_seconds(seconds: set[str]) -> list[str]:
    return sorted(seconds, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))


def narrowed_offer(backends: list[Backend], model: str = "") -> tuple[list[str], list[str], list[str]]:
    """What to offer once a backend (or "automatic": all of them) and a model are chosen.

    Models: any the candidates offer. Seconds and sizes: those of `model` where it is offered, so
    sora-2-pro's larger sizes appear only with sora-2-pro.
    """
    models, seconds, sizes = offer_choices(backends)
    offers = [backend.offer()[model] for backend in backends if model in backend.offer()]
    if not offers:
        return models, seconds, sizes
    seconds = _ordered_seconds({str(s) for offer in offers for s in offer.get("seconds", [])})
    sizes = list(dict.fromkeys(size for offer in offers for size in offer.get("sizes", [])))
    return models, seconds, sizes


def pick(value: str, values: list[str], preferred: str) -> str:
    if value in values:
        return value
    return preferred if preferred in values else (values[0] if values else "")


def pairs(values: list[str], suffix: str = "") -> list[tuple[str, str]]:
    return [(v, f"{v}{suffix}") for v in values]


class OfferFieldsMixin:
    """Model, seconds and size as selects over the union of the enabled backends' offers."""

    def _set_offer_choices(self, backends: list[Backend]) -> None:
        models, seconds, sizes = offer_choices(backends)
        self.fields["backend"].queryset = Backend.objects.filter(pk__in=[b.pk for b in backends])
        self.fields["model"].choices = pairs(models)
        self.fields["seconds"].choices = pairs(seconds, " s")
        self.fields["size"].choices = pairs(sizes)
        for name, values, preferred in [
            ("model", models, "sora-2"),
            ("seconds", seconds, "4"),
            ("size", sizes, "720x1280"),
        ]:
            if values and not self.initial.get(name):
                self.initial[name] = preferred if preferred in values else values[0]
