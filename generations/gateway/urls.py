"""Two sets of routes: the API at /v1/ (namespace `api`) and the API tokens page (namespace `gateway`)."""

from django.urls import path, re_path

from generations.gateway import api, views

api_patterns = [
    path("videos", api.video_collection, name="videos"),
    # Before videos/<id>: "characters" is not a video id.
    path("videos/characters", api.character_collection, name="characters"),
    path("videos/characters/<str:character_id>", api.character_item, name="character"),
    path("videos/<str:video_id>", api.video_item, name="video"),
    path("videos/<str:video_id>/content", api.video_content, name="content"),
    path("videos/<str:video_id>/remix", api.video_remix, name="remix"),
    re_path(r"^(?P<rest>.*)$", api.unknown),
]

page_patterns = [
    path("", views.token_list, name="tokens"),
    path("<int:pk>/revoke/", views.revoke, name="revoke"),
]
