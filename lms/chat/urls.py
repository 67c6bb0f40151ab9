from django.urls import path

from lms.chat import views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("<int:room_id>/", views.room_detail, name="room"),
    path("<int:room_id>/history/", views.history, name="history"),
    path("<int:room_id>/messages/", views.message_create, name="message_create"),
    path("<int:room_id>/composer/", views.composer, name="composer"),
    path("<int:room_id>/search/", views.search, name="search"),
    path("<int:room_id>/typing/", views.typing, name="typing"),
    path("<int:room_id>/read/", views.mark_read, name="read"),
    path("<int:room_id>/mentions/", views.mention_suggestions, name="mentions"),
    path("unread/", views.unread_state, name="unread"),
    path("read-all/", views.read_all, name="read_all"),
    path("notifications/", views.notifications, name="notifications"),
    path("messages/<int:message_id>/", views.message_detail, name="message"),
    path("messages/<int:message_id>/edit/", views.message_edit, name="message_edit"),
    path("messages/<int:message_id>/delete/", views.message_delete, name="message_delete"),
    path("messages/<int:message_id>/reactions/", views.message_react, name="message_react"),
    path("courses/<int:course_id>/rooms/", views.room_create, name="room_create"),
    path("courses/<int:course_id>/moderation/", views.moderation, name="moderation"),
    path("courses/<int:course_id>/mute/", views.member_mute, name="mute"),
    path("courses/<int:course_id>/unmute/<int:user_id>/", views.member_unmute, name="unmute"),
    path("direct/<int:user_id>/", views.direct_start, name="direct"),
]
