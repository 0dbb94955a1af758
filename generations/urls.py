from django.urls import path

app_name = "generations"
urlpatterns: list = []
