from django.urls import path

from generations.billing import views

urlpatterns = [
    path("spending/", views.spending_page, name="spending"),
]
