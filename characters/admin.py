"""Admin: characters with their per-backend bindings."""

from django.contrib import admin, messages
from django.db import models

from characters import avatars
from characters.models import Character, CharacterBinding


class CharacterBindingInline(admin.TabularInline):
    # Read-only: registering goes through registry.bind (it queues the provider call).
    model = CharacterBinding
    extra = 0
    fields = ["backend", "status", "remote_id", "extract_from_task", "error", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Character)
class CharacterAdmin(admin.ModelAdmin):
    list_display = ["handle", "name", "owner", "created_at"]
    list_select_related = ["owner"]
    list_filter = ["bindings__status", "bindings__backend"]
    search_fields = ["handle", "name", "description", "owner__username"]
    raw_id_fields = ["source_generation"]
    inlines = [CharacterBindingInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["make_avatars"]

    @admin.action(description="Make avatars from the stored clips (where missing)")
    def make_avatars(self, request, queryset):
        made = sum(avatars.ensure_avatar(character) for character in queryset.filter(avatar=""))
        self.message_user(request, f"{made} avatar{'s' if made != 1 else ''} made.", messages.SUCCESS)
