from django.urls import path

app_name = "characters"
urlpatterns: list = []
