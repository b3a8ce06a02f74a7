"""Staff sign-in and sign-out. django-axes throttles failures (see settings.AXES_*)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from wondertix.ops import audit


class StaffLoginView(auth_views.LoginView):
    template_name = "boxoffice/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):  # type: ignore[no-untyped-def]
        response = super().form_valid(form)
        audit.record("staff.login", actor=self.request.user, obj=self.request.user)
        return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import logout

    if request.user.is_authenticated:
        audit.record("staff.logout", actor=request.user, obj=request.user)
    logout(request)
    return redirect("/staff/login/?logged_out=1")
