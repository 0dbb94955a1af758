# Not namespaced: LOGIN_REDIRECT_URL and the nav name these pages plainly ("gallery").
from django.urls import path

from generations import series_views, spending_views, views

urlpatterns = [
    path("", views.gallery, name="gallery"),
    path("generations/new/", views.new, name="generation_new"),
    path("generations/estimate/", views.estimate, name="generation_estimate"),
    path("generations/<int:pk>/", views.detail, name="generation_detail"),
    path("generations/<int:pk>/card/", views.card, name="generation_card"),
    path("generations/<int:pk>/video.mp4", views.video, name="generation_video"),
    path("generations/<int:pk>/thumbnail/", views.thumbnail, name="generation_thumbnail"),
    path("generations/<int:pk>/cancel/", views.cancel, name="generation_cancel"),
    path("series/", series_views.series_list, name="series_list"),
    path("series/<int:pk>/", series_views.series_detail, name="series_detail"),
    path("series/<int:pk>/scenes/", series_views.scene_add, name="scene_add"),
    path("series/<int:pk>/generate/", series_views.series_generate_all, name="series_generate_all"),
    path("scenes/<int:pk>/generate/", series_views.scene_generate, name="scene_generate"),
    path("spending/", spending_views.spending_page, name="spending"),
]
