"""Admin: backends (keys write-only, prices inline), generations, series, and the read-only ledger."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from generations.billing.models import Budget, CostEntry
from generations.jobs import lifecycle
from generations.jobs.models import Attempt, CreatorSettings, Generation, GenerationImage
from generations.providers.models import Backend, Price
from generations.states import Status
from generations.storyboards.models import Scene, Series

URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}  # Django 6's default, chosen now


def _formfield(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs.update(URL_FIELDS[models.URLField])
    return field.formfield(**kwargs)


class BackendForm(forms.ModelForm):
    # Write-only: the key is never rendered back (neither plaintext nor ciphertext).
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave blank to keep the current key.",
    )

    class Meta:
        model = Backend
        fields = "__all__"  # noqa: DJ007 -- BackendAdmin.fieldsets decide what is shown
        formfield_callback = _formfield

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["api_key"].help_text = "Stored encrypted; never shown again after saving."
        elif self.instance.api_key:
            self.fields["api_key"].help_text = "A key is set. Leave blank to keep the current key."
        # Never let the stored value reach the widget, even as an initial value.
        self.initial.pop("api_key", None)

    def clean_api_key(self):
        key = self.cleaned_data["api_key"]
        if key:
            return key
        if self.instance.pk is None:
            raise forms.ValidationError("Enter the API key for this backend.")
        return self.instance.api_key  # blank on change: keep what is stored


class PriceInline(admin.TabularInline):
    """Existing price rows, read-only: the ledger points at them, so a change is a new row."""

    model = Price
    extra = 0
    fields = ["model", "size", "unit", "amount", "effective_from"]
    readonly_fields = fields
    verbose_name_plural = "Prices (to change one, add a row with a later effective date)"

    def has_add_permission(self, request, obj=None):
        return False


class NewPriceInline(admin.TabularInline):
    model = Price
    extra = 0
    fields = ["model", "size", "unit", "amount", "effective_from"]
    verbose_name = "new price"
    verbose_name_plural = "Add prices"

    def get_queryset(self, request):
        return super().get_queryset(request).none()


@admin.register(Backend)
class BackendAdmin(admin.ModelAdmin):
    form = BackendForm
    formfield_overrides = URL_FIELDS
    inlines = [PriceInline, NewPriceInline]
    list_display = [
        "name",
        "protocol",
        "tier",
        "enabled",
        "health",
        "base_url",
        "masked_key",
        "max_in_flight",
        "paused_until",
    ]
    list_filter = ["protocol", "tier", "enabled"]
    search_fields = ["name", "base_url"]
    readonly_fields = [
        "paused_until",
        "created_at",
        "disabled_reason",
        "consecutive_failures",
        "last_failure",
        "circuit_open_until",
        "probe_started_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "protocol", "tier", "base_url", "api_key", "enabled"]}),
        ("What it offers", {"fields": ["offers", "supports_characters", "supports_extract", "supports_remix"]}),
        (
            "Behaviour",
            {
                "fields": [
                    "max_in_flight",
                    "timeout_seconds",
                    "honours_idempotency_keys",
                    "bills_failed_jobs",
                    "paused_until",
                    "created_at",
                ]
            },
        ),
        (
            "Health",
            {
                "fields": [
                    "disabled_reason",
                    "consecutive_failures",
                    "last_failure",
                    "circuit_open_until",
                    "probe_started_at",
                ],
                "description": "Kept by the studio. Enabling a backend again clears the reason it was disabled.",
            },
        ),
    ]

    @admin.display(description="API key")
    def masked_key(self, backend):
        return backend.masked_key

    @admin.display(description="Health")
    def health(self, backend):
        return backend.health_summary or "ok"


class CostEntryInline(admin.TabularInline):
    model = CostEntry
    fk_name = "generation"
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "amount", "price", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AttemptInline(admin.TabularInline):
    """Earlier tries on other backends (fallback), read-only."""

    model = Attempt
    extra = 0
    can_delete = False
    fields = ["number", "backend", "remote_id", "error_code", "error_message", "started_at", "ended_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class GenerationImageInline(admin.TabularInline):
    """The start and end images the video was made from, as they were sent, read-only."""

    model = GenerationImage
    extra = 0
    can_delete = False
    fields = ["role", "shown", "source", "note", "width", "height"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="image")
    def shown(self, kept: GenerationImage) -> str:
        url = reverse("generation_image", args=[kept.generation_id, kept.role])
        return format_html('<a href="{}">{}</a>', url, f"{kept.role}.jpg")


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["pk", "short_prompt", "status", "progress", "backend", "model", "seconds", "owner", "created_at"]
    list_filter = ["status", "backend", "model", "created_at"]
    list_select_related = ["backend", "owner"]
    search_fields = ["prompt", "prompt_sent", "remote_id"]
    date_hierarchy = "created_at"
    raw_id_fields = ["scene", "remix_of"]
    filter_horizontal = ["characters"]
    inlines = [GenerationImageInline, AttemptInline, CostEntryInline]
    formfield_overrides = URL_FIELDS
    actions = ["cancel_queued", "confirm_possibly_billed", "void_possibly_billed"]
    readonly_fields = [
        "uuid",
        "owner",
        "backend",
        "status",
        "progress",
        "remote_id",
        "idempotency_key",
        "attempts",
        "poll_errors",
        "next_poll_at",
        "lease_until",
        "remote_video_url",
        "prompt_sent",
        "characters_sent",
        "routing_reason",
        "degraded",
        "error_code",
        "created_at",
        "submitted_at",
        "completed_at",
        "updated_at",
    ]

    @admin.display(description="Prompt")
    def short_prompt(self, generation):
        return generation.prompt[:60]

    @admin.action(description="Cancel the selected queued generations")
    def cancel_queued(self, request, queryset):
        cancelled = sum(lifecycle.cancel(g) for g in queryset.filter(status="queued"))
        self.message_user(request, f"Cancelled {cancelled} generation(s).", messages.SUCCESS)

    @admin.action(description="Possibly billed: confirm the provider billed them (adds the charge)")
    def confirm_possibly_billed(self, request, queryset):
        self._settle(request, queryset, confirm=True)

    @admin.action(description="Possibly billed: void, the provider did not bill them")
    def void_possibly_billed(self, request, queryset):
        self._settle(request, queryset, confirm=False)

    def _settle(self, request, queryset, *, confirm: bool):
        settled = sum(
            CostEntry.objects.settle(g, confirm=confirm, by=request.user.get_username())
            for g in queryset.filter(status=Status.UNKNOWN)
        )
        verb = "Confirmed" if confirm else "Voided"
        self.message_user(request, f"{verb} {settled} possibly billed generation(s).", messages.SUCCESS)


class SceneInline(admin.TabularInline):
    model = Scene
    extra = 0
    fields = ["position", "prompt", "chosen_take"]
    raw_id_fields = ["chosen_take"]


@admin.register(CreatorSettings)
class CreatorSettingsAdmin(admin.ModelAdmin):
    list_display = ["user", "routing_policy"]
    list_filter = ["routing_policy"]
    search_fields = ["user__username"]


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "backend", "model", "seconds", "size", "created_at"]
    list_select_related = ["owner", "backend"]
    search_fields = ["title", "description"]
    filter_horizontal = ["characters"]
    inlines = [SceneInline]


@admin.register(CostEntry)
class CostEntryAdmin(admin.ModelAdmin):
    """The ledger is append-only: corrections are refunds written by the app, never edits."""

    list_display = ["created_at", "kind", "amount", "backend", "owner", "generation", "binding", "note"]
    list_filter = ["kind", "backend", "day"]
    list_select_related = ["backend", "owner", "generation", "binding"]
    search_fields = ["note", "owner__username"]
    date_hierarchy = "day"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "backend", "amount", "hard", "committed_this_month"]
    list_filter = ["hard", "backend"]

    @admin.display(description="Committed this month")
    def committed_this_month(self, budget):
        from generations.billing.budgets import committed

        return f"${committed(budget):.2f}"
