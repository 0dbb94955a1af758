from django.contrib import admin

from .models import Character, Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "protocol", "model", "seconds", "triggers", "created_at", "finishes_at"]
    list_filter = ["protocol", "model"]
    search_fields = ["id", "prompt"]


@admin.register(Character)
class CharacterAdmin(admin.ModelAdmin):
    list_display = ["id", "protocol", "name", "created_at"]
    list_filter = ["protocol"]
    search_fields = ["id", "name"]
