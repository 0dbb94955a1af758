"""Admin: API tokens, read-only (a token's secret exists only when it is made: on the API tokens page or
with `manage.py create_token`); staff can revoke them."""

from django.contrib import admin, messages

from generations.gateway.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "monthly_cap", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username"]
    readonly_fields = ["user", "name", "hint", "created_at", "last_used_at", "revoked_at"]
    fields = ["user", "name", "hint", "monthly_cap", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        revoked = sum(token.revoke() for token in queryset)
        messages.success(request, f"{revoked} token{'s' if revoked != 1 else ''} revoked.")
