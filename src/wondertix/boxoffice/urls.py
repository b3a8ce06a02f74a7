"""Staff UI, mounted at /staff/. Back-office areas (sales, contacts, reports) mount beside it."""

from django.urls import path

from wondertix.boxoffice.views import auth, dashboard

app_name = "boxoffice"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth.StaffLoginView.as_view(), name="login"),
    path("logout/", auth.logout_view, name="logout"),
]
