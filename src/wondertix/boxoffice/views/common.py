"""Small helpers every staff view shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from wondertix.sales.errors import SaleError

T = TypeVar("T")


def attempt(request: HttpRequest, call: Callable[[], T], form: forms.BaseForm | None = None) -> tuple[T | None, SaleError | None]:
    """Run one service call; a refusal becomes a message on the page (and a form field error
    when the service named the field)."""
    try:
        return call(), None
    except SaleError as exc:
        if form is not None and exc.field and exc.field in form.fields:
            form.add_error(exc.field, exc.message)
        else:
            messages.error(request, exc.message)
        return None, exc


def form_page(
    request: HttpRequest,
    form: forms.BaseForm,
    *,
    title: str,
    back: str,
    submit: str = "Save",
    intro: str = "",
    status: int = 200,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    visible = [name for name, field in form.fields.items() if not field.widget.is_hidden]
    target = next((name for name in visible if name in form.errors), visible[0] if visible else None)
    if target is not None:  # keyboard users start typing at once (or at the first error)
        form.fields[target].widget.attrs.setdefault("autofocus", True)
    context = {"form": form, "title": title, "back": back, "submit": submit, "intro": intro, **(extra or {})}
    return render(request, "boxoffice/form.html", context, status=status)


def refused_status(exc: SaleError | None) -> int:
    return exc.status if exc is not None else 422
