from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from generations.gateway import urls as gateway_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("characters/", include("characters.urls")),
    path("webhooks/", include("generations.webhooks.urls")),
    # The OpenAI-compatible API (bearer tokens, no session) and the page that makes its tokens.
    path("v1/", include((gateway_urls.api_patterns, "api"))),
    path("api-tokens/", include((gateway_urls.page_patterns, "gateway"))),
    path("", include("generations.urls")),
]

if settings.SIMULATOR_ENABLED:
    urlpatterns.append(path("simulator/", include("simulator.urls")))
