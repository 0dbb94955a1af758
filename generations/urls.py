# Not namespaced: LOGIN_REDIRECT_URL and the nav name these pages plainly ("gallery").
from django.urls import include, path

from generations import views

urlpatterns = [
    path("", views.gallery, name="gallery"),
    path("generations/new/", views.new, name="generation_new"),
    path("generations/estimate/", views.estimate, name="generation_estimate"),
    path("generations/new/choices/", views.choices, name="generation_choices"),
    path("generations/mentions/", views.mention_suggestions, name="generation_mentions"),
    path("generations/<int:pk>/", views.detail, name="generation_detail"),
    path("generations/<int:pk>/card/", views.card, name="generation_card"),
    path("generations/<int:pk>/video.mp4", views.video, name="generation_video"),
    path("generations/<int:pk>/thumbnail/", views.thumbnail, name="generation_thumbnail"),
    path("generations/<int:pk>/images/<str:role>.jpg", views.image, name="generation_image"),
    path("generations/images/preview/", views.image_preview, name="generation_image_preview"),
    path("generations/<int:pk>/cancel/", views.cancel, name="generation_cancel"),
    path("generations/<int:pk>/retry/", views.retry, name="generation_retry"),
    path("generations/<int:pk>/check-again/", views.check_again, name="generation_check_again"),
    path("generations/<int:pk>/remix/", views.remix, name="generation_remix"),
    path("generations/<int:pk>/delete/", views.delete, name="generation_delete"),
    path("settings/", views.creator_settings, name="creator_settings"),
    path("", include("generations.billing.urls")),
    path("", include("generations.storyboards.urls")),
]
