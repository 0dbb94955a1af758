from django.apps import AppConfig


class GatewayConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "generations.gateway"
    label = "gateway"
    verbose_name = "API gateway"
