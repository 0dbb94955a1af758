"""Series (storyboards), scenes, takes and exports. Not namespaced, like the rest of generations."""

from django.urls import path

from generations import series_views

urlpatterns = [
    path("series/", series_views.series_list, name="series_list"),
    path("series/<int:pk>/", series_views.series_detail, name="series_detail"),
    path("series/<int:pk>/scenes/", series_views.scene_add, name="scene_add"),
    path("series/<int:pk>/generate/", series_views.series_generate_all, name="series_generate_all"),
    path("scenes/<int:pk>/generate/", series_views.scene_generate, name="scene_generate"),
]
