"""Series (storyboards), scenes, takes and exports. Not namespaced, like the rest of generations."""

from django.urls import path

from generations import series_views

urlpatterns = [
    path("series/", series_views.series_list, name="series_list"),
    path("series/<int:pk>/", series_views.series_detail, name="series_detail"),
    path("series/<int:pk>/edit/", series_views.series_edit, name="series_edit"),
    path("series/<int:pk>/delete/", series_views.series_delete, name="series_delete"),
    path("series/<int:pk>/progress/", series_views.series_progress, name="series_progress"),
    path("series/<int:pk>/watch/", series_views.series_watch, name="series_watch"),
    path("series/<int:pk>/export.zip", series_views.series_export, name="series_export"),
    path("series/<int:pk>/scenes/", series_views.scene_add, name="scene_add"),
    path("series/<int:pk>/generate/", series_views.series_generate_all, name="series_generate_all"),
    path("scenes/<int:pk>/", series_views.scene_detail, name="scene_detail"),
    path("scenes/<int:pk>/edit/", series_views.scene_edit, name="scene_edit"),
    path("scenes/<int:pk>/delete/", series_views.scene_delete, name="scene_delete"),
    path("scenes/<int:pk>/move/", series_views.scene_move, name="scene_move"),
    path("scenes/<int:pk>/generate/", series_views.scene_generate, name="scene_generate"),
    path("scenes/<int:pk>/takes/<int:take_pk>/choose/", series_views.scene_choose_take, name="scene_choose_take"),
    path("export/all.zip", series_views.export_all, name="export_all"),
]
