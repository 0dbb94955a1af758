"""Series (storyboards), scenes, takes and exports. Not namespaced, like the rest of generations."""

from django.urls import path

from generations.storyboards import views

urlpatterns = [
    path("series/", views.series_list, name="series_list"),
    path("series/<int:pk>/", views.series_detail, name="series_detail"),
    path("series/<int:pk>/edit/", views.series_edit, name="series_edit"),
    path("series/<int:pk>/delete/", views.series_delete, name="series_delete"),
    path("series/<int:pk>/progress/", views.series_progress, name="series_progress"),
    path("series/<int:pk>/watch/", views.series_watch, name="series_watch"),
    path("series/<int:pk>/export/", views.series_export, name="series_export"),
    path("series/<int:pk>/scenes/", views.scene_add, name="scene_add"),
    path("series/<int:pk>/generate/", views.series_generate_all, name="series_generate_all"),
    path("scenes/<int:pk>/", views.scene_detail, name="scene_detail"),
    path("scenes/<int:pk>/edit/", views.scene_edit, name="scene_edit"),
    path("scenes/<int:pk>/images/<str:role>", views.scene_image, name="scene_image"),
    path("scenes/<int:pk>/delete/", views.scene_delete, name="scene_delete"),
    path("scenes/<int:pk>/move/", views.scene_move, name="scene_move"),
    path("scenes/<int:pk>/generate/", views.scene_generate, name="scene_generate"),
    path("scenes/<int:pk>/takes/<int:take_pk>/choose/", views.scene_choose_take, name="scene_choose_take"),
    path("scenes/<int:pk>/regenerate-after/", views.scene_regenerate_after, name="scene_regenerate_after"),
    path("exports/", views.export_list, name="export_list"),
    path("exports/all/", views.export_all, name="export_all"),
    path("exports/<int:pk>/", views.export_detail, name="export_detail"),
    path("exports/<int:pk>/download/", views.export_download, name="export_download"),
]
