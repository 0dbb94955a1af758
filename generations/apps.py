from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "generations"

    def ready(self):
        from sora_studio import lookups  # noqa: F401  (registers the overflow-safe `__in`)
