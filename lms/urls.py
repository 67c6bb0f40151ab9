from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from lms import views
from lms.accounts import views as accounts_views
from lms.realtime import views as realtime_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("events/", realtime_views.events, name="events"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("chat/", include("lms.chat.urls")),
    path("accounts/profile/", accounts_views.profile, name="profile"),
    path("livestream/calendar/<str:token>.ics", accounts_views.calendar_feed, name="calendar_feed"),
    path("livestream/", include("lms.livestream.urls")),
    path("qa/", include("lms.qa.urls")),
    path("lti/", include("lms.lti.urls")),
    path("admin/", admin.site.urls),
]

handler400 = views.bad_request
handler403 = views.permission_denied
handler404 = views.page_not_found
handler500 = views.server_error
