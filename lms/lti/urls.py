from django.urls import path
from lti_tool.views import jwks

from lms.lti import views

app_name = "lti"

urlpatterns = [
    path("jwks.json", jwks, name="jwks"),
    # Platforms that send client_id with the login (Moodle, Canvas) need no registration UUID.
    path("init/", views.LoginInitView.as_view(), name="init_any"),
    path("init/<uuid:registration_uuid>/", views.LoginInitView.as_view(), name="init"),
    path("launch/", views.LaunchView.as_view(), name="launch"),
    path("deep-link/", views.DeepLinkView.as_view(), name="deep_link"),
    path("courses/<int:course_id>/roster/sync/", views.roster_sync, name="roster_sync"),
]
