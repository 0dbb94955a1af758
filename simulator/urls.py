"""Every protocol of the simulated provider, mounted at /simulator/ when SIMULATOR_ENABLED.

Base URLs under {host}/simulator/: openai_videos openai/v1 · task_api task/v1 · gemini_veo veo/v1beta ·
runway runway/v1 · fal_queue fal · replicate replicate/v1. Every endpoint fails a share of its calls when fault
mode is on (faults.py); the books (books.py) never do.
"""

from django.urls import path

from . import books, fal_views, faults, openai_views, replicate_views, task_views, veo_views
from . import runway_views as runway

app_name = "simulator"

urlpatterns = [
    # openai_videos. `characters` routes come first: "characters" would otherwise match {video_id}.
    path("openai/v1/videos", openai_views.videos, name="openai_videos"),
    path("openai/v1/videos/characters", openai_views.create_character, name="openai_create_character"),
    path("openai/v1/videos/characters/<str:character_id>", openai_views.character, name="openai_character"),
    path("openai/v1/videos/<str:video_id>", openai_views.video, name="openai_video"),
    path("openai/v1/videos/<str:video_id>/content", openai_views.content, name="openai_content"),
    path("openai/v1/videos/<str:video_id>/remix", openai_views.remix, name="openai_remix"),
    # task_api
    path("task/v1/sora/generate", task_views.generate, name="task_generate"),
    path("task/v1/sora/tasks/<str:task_id>", task_views.task, name="task_status"),
    path("task/v1/sora/characters", task_views.characters, name="task_characters"),
    path("task/v1/sora/characters/extract", task_views.extract_character, name="task_extract_character"),
    path("task/v1/files/<str:task_id>.<str:extension>", task_views.task_file, name="task_file"),
    # gemini_veo: Veo through the Gemini API (base {host}/simulator/veo/v1beta), as google-genai 2.x speaks it.
    path("veo/v1beta/models/<str:model>:predictLongRunning", veo_views.predict_long_running, name="veo_predict"),
    path("veo/v1beta/models/<str:model>/operations/<str:operation_id>", veo_views.operation, name="veo_operation"),
    path("veo/v1beta/files/<str:file_id>:download", veo_views.file_download, name="veo_file"),
    # replicate: the studio's base URL is .../replicate/v1; the `replicate` SDK's is .../replicate (it adds /v1).
    # Output files live outside /v1, as on replicate.delivery.
    path(
        "replicate/v1/models/<str:model_owner>/<str:model_name>/predictions",
        replicate_views.create,
        name="replicate_create",
    ),
    path("replicate/v1/webhooks/default/secret", replicate_views.webhook_secret, name="replicate_webhook_secret"),
    path("replicate/v1/predictions", replicate_views.predictions, name="replicate_predictions"),
    path("replicate/v1/predictions/<str:prediction_id>", replicate_views.prediction, name="replicate_prediction"),
    path("replicate/v1/predictions/<str:prediction_id>/cancel", replicate_views.cancel, name="replicate_cancel"),
    path("replicate/delivery/<str:prediction_id>/output.mp4", replicate_views.output_file, name="replicate_file"),
    # runway: the SDK's base URL is {host}/simulator/runway (its paths start with /v1/); the studio's is
    # {host}/simulator/runway/v1. Output links stand in for Runway's CDN, outside the API's path.
    path("runway/v1/text_to_video", runway.text_to_video, name="runway_text_to_video"),
    path("runway/v1/image_to_video", runway.image_to_video, name="runway_image_to_video"),
    path("runway/v1/tasks/<str:task_id>", runway.task, name="runway_task"),
    path("runway/cdn/<str:task_id>.mp4", runway.task_file, name="runway_file"),
    # fal_queue (base {host}/simulator/fal): status/result/cancel use only owner/alias of the app id, so they come
    # before the catch-all submit route, which takes the whole app id (fal-ai/kling-video/v2.1/master/text-to-video).
    path("fal/<str:app_owner>/<str:alias>/requests/<str:request_id>/status", fal_views.status, name="fal_status"),
    path("fal/<str:app_owner>/<str:alias>/requests/<str:request_id>/cancel", fal_views.cancel, name="fal_cancel"),
    path("fal/<str:app_owner>/<str:alias>/requests/<str:request_id>", fal_views.result, name="fal_result"),
    path("fal-media/files/<str:request_id>/output.mp4", fal_views.media, name="fal_media"),
    path("fal/.well-known/jwks.json", fal_views.jwks, name="fal_jwks"),
    path("fal/<path:app_id>", fal_views.submit, name="fal_submit"),
]
faults.inject(urlpatterns)
urlpatterns.append(path("books", books.books, name="books"))
