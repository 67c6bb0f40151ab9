from django.urls import path, re_path

from lms.livestream import views

app_name = "livestream"

urlpatterns = [
    path("", views.stream_list, name="list"),
    path("new/", views.stream_create, name="create"),
    path("<int:stream_id>/", views.stream_detail, name="detail"),
    path("<int:stream_id>/stage/", views.stream_stage, name="stage"),
    path("<int:stream_id>/edit/", views.stream_edit, name="edit"),
    path("<int:stream_id>/manage/", views.stream_manage, name="manage"),
    path("<int:stream_id>/stats/", views.stream_stats, name="stats"),
    path("<int:stream_id>/start/", views.stream_start, name="start"),
    path("<int:stream_id>/end/", views.stream_end, name="end"),
    path("<int:stream_id>/recording/", views.recording_page, name="recording"),
    path("<int:stream_id>/recording/attach/", views.recording_attach, name="recording_attach"),
    path("<int:stream_id>/recording/file/", views.recording_file, name="recording_file"),
    re_path(r"^(?P<stream_id>[0-9]+)/transcript\.(?P<fmt>csv|md)$", views.transcript_export, name="transcript"),
]
