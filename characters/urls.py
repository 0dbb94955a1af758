from django.urls import path

from characters import views

app_name = "characters"
urlpatterns = [
    path("", views.character_list, name="list"),
    path("new/", views.new, name="new"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/avatar/", views.avatar, name="avatar"),
    path("<int:pk>/clip/", views.source_clip, name="source_clip"),
    path("<int:pk>/stills/", views.upload_still, name="upload_still"),
    path("<int:pk>/stills/<int:position>.jpg", views.still, name="still"),
    path("<int:pk>/status/", views.binding_status, name="status"),
    path("<int:pk>/register/", views.register, name="register"),
    path("from-generation/<int:generation_pk>/", views.extract, name="extract"),
    # Login-free, signed and expiring: how task_api backends fetch a clip given by URL.
    path("clip/<str:token>/", views.clip, name="clip"),
]
