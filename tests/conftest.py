"""Shared fixtures: a small catalog every test layer can build on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone


@pytest.fixture
def make_performance(db):
    """Factory: an active event with Adult/Student(limit) price types and one performance."""
    from wondertix.catalog.models import Event, Performance, PriceType

    counter = {"n": 0}

    def make(capacity: int = 10, *, starts_in: timedelta = timedelta(days=7), student_limit: int | None = 3, **perf_kwargs):
        counter["n"] += 1
        event = Event.objects.create(title=f"Show {counter['n']}", slug=f"show-{counter['n']}", active=True)
        adult = PriceType.objects.create(event=event, name="Adult", price_cents=2500, fee_cents=200)
        student = PriceType.objects.create(event=event, name="Student", price_cents=1000, fee_cents=200, limit_per_performance=student_limit)
        pwyc = PriceType.objects.create(event=event, name="Pay what you can", price_cents=500, min_price_cents=500, max_price_cents=5000, pay_what_you_can=True)
        perf = Performance.objects.create(event=event, starts_at=timezone.now() + starts_in, capacity=capacity, **perf_kwargs)
        perf.adult, perf.student, perf.pwyc = adult, student, pwyc  # type: ignore[attr-defined]
        return perf

    return make


@pytest.fixture
def buyer():
    from wondertix.sales.services import Buyer

    return Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org", phone="555-010-2000")


@pytest.fixture
def good_card():
    from wondertix.payments.providers.base import PaymentDetails

    return PaymentDetails(card_number="4242 4242 4242 4242", exp_month=12, exp_year=2030, cvc="123")


@pytest.fixture
def clerk(db):
    """A box-office staff member (the role that sells, refunds, exchanges and reads reports)."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("window", password="x" * 12, is_staff=True)
    user.groups.add(Group.objects.get(name="box_office"))
    return user


@pytest.fixture
def staff(clerk):
    """A browser signed in as `clerk`."""
    from django.test import Client

    client = Client()
    client.force_login(clerk)
    return client
