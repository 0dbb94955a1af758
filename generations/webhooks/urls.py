# Not namespaced: providers are given this URL (generations.providers.webhooks.callback_url names it "webhook").
from django.urls import path

from generations.webhooks import views

urlpatterns = [
    path("<int:backend_id>/", views.receive, name="webhook"),
]
