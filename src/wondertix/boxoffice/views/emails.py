"""Previews of every email patrons get, with sample data (admins): subject, plain text, HTML."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_sameorigin

from wondertix.boxoffice.roles import ADMIN, require_role
from wondertix.sales.change_emails import Email
from wondertix.sales.email_previews import PREVIEWS

admin_only = require_role(ADMIN)


def _sample(name: str) -> tuple[str, Email]:
    if name not in PREVIEWS:
        raise Http404("No such email.")
    label, build = PREVIEWS[name]
    return label, build()


@admin_only
def email_list(request: HttpRequest) -> HttpResponse:
    return render(request, "boxoffice/emails/list.html", {"previews": [(name, label) for name, (label, _) in PREVIEWS.items()]})


@admin_only
def email_preview(request: HttpRequest, name: str) -> HttpResponse:
    label, email = _sample(name)
    text, _ = email.render()
    return render(request, "boxoffice/emails/preview.html", {"name": name, "label": label, "subject": email.subject, "text": text})


# This response only: the email's inline styles may apply, nothing may run (sandbox), and only
# the preview page itself may frame it.
FRAME_POLICY = {"default-src": ["'none'"], "style-src": ["'unsafe-inline'"], "img-src": ["'self'", "data:"],
                "frame-ancestors": ["'self'"], "sandbox": True}


@admin_only
@xframe_options_sameorigin
def email_preview_html(request: HttpRequest, name: str) -> HttpResponse:
    """The HTML part exactly as sent, shown in a sandboxed frame of the preview page (its
    inline styles are what mail clients need; nothing in it may run)."""
    _, email = _sample(name)
    _, html = email.render()
    response = HttpResponse(html)
    setattr(response, "_csp_replace", FRAME_POLICY)  # what csp.decorators.csp_replace sets  # noqa: B010
    return response
