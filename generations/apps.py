from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "generations"

    def ready(self):
        from generations.billing import rollup
        from sora_studio import lookups  # noqa: F401  (registers the overflow-safe `__in`)

        rollup.connect()  # keeps the spending roll-ups right when a series or character is deleted
