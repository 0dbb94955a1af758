"""Both protocols of the simulated provider, mounted at /simulator/ when SIMULATOR_ENABLED.

openai_videos base: {host}/simulator/openai/v1    task_api base: {host}/simulator/task/v1
"""

from django.urls import path

from simulator import fal_views

from . import openai_views, task_views

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
    # fal_queue (base {host}/simulator/fal): status/result/cancel use only owner/alias of the app id, so they come
    # before the catch-all submit route, which takes the whole app id (fal-ai/kling-video/v2.1/master/text-to-video).
    path("fal/<str:app_owner>/<str:alias>/requests/<str:request_id>/status", fal_views.status, name="fal_status"),
    path("fal/<str:app_owner>/<str:alias>/requests/<str:request_id>/cancel", fal_views.cancel, name="fal_cancel"),
    path("fal/<str:app_owner>/<str:alias>/requests/<str:request_id>", fal_views.result, name="fal_result"),
    path("fal-media/files/<str:request_id>/output.mp4", fal_views.media, name="fal_media"),
    path("fal/<path:app_id>", fal_views.submit, name="fal_submit"),
]
