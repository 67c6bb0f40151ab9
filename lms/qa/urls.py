from django.urls import path

from lms.qa import views

app_name = "qa"

urlpatterns = [
    path("streams/<int:stream_id>/questions/", views.question_create, name="ask"),
    path("questions/<int:question_id>/vote/", views.question_vote, name="vote"),
    path("questions/<int:question_id>/withdraw/", views.question_withdraw, name="withdraw"),
    path("questions/<int:question_id>/<str:verb>/", views.question_run, name="run"),
    path("streams/<int:stream_id>/polls/", views.poll_create, name="poll_create"),
    path("polls/<int:poll_id>/vote/", views.poll_vote, name="poll_vote"),
    path("polls/<int:poll_id>/close/", views.poll_close, name="poll_close"),
]
