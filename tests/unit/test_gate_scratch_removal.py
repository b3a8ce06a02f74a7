"""wtx's integration and performance gates remove their scratch event once counted, with a
script the release runs in the environment (wtx.gate_scratch). Here that script runs against
the app's own models and sale path: what was sold on the scratch event goes, nothing else
does, and the removal is audited."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from wondertix.catalog.models import Event, Performance
from wondertix.ops.models import AuditEntry, OutboxEmail
from wondertix.patrons.models import Patron
from wondertix.payments.models import Payment
from wondertix.sales.models import Order, Ticket
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell
from wtx import gate_integration, gate_scratch

pytestmark = pytest.mark.django_db


def _remove(event_pk: int, slug: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(gate_scratch.removal_script(event_pk, slug), {})  # noqa: S102 - the script the release runs
    line = next(ln for ln in out.getvalue().splitlines() if ln.startswith(gate_integration.MARK))
    data: dict[str, Any] = json.loads(line[len(gate_integration.MARK):])
    return data


def _gate_buyer(i: int) -> Buyer:
    return Buyer(first_name="Gate", last_name=f"Buyer {i}", email=f"gate-run1-{i}@example.com")


def test_the_scratch_event_and_what_was_sold_on_it_are_removed_and_the_removal_audited(make_performance, buyer, good_card):
    scratch = make_performance(capacity=8)
    kept = make_performance(capacity=8)
    for i in range(3):
        sell([LineRequest(scratch.pk, scratch.adult.pk, 1)], CheckoutDetails(buyer=_gate_buyer(i), payment=good_card))
    sell([LineRequest(scratch.pk, scratch.adult.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    theirs = sell([LineRequest(kept.pk, kept.adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card))

    result = _remove(scratch.event.pk, scratch.event.slug)

    assert result["removed"] is True, result
    assert result["rows"]["sales.Order"] == 4 and result["rows"]["sales.Ticket"] == 4
    assert not Event.objects.filter(pk=scratch.event.pk).exists()
    assert not Performance.objects.filter(pk=scratch.pk).exists()
    assert list(Order.objects.all()) == [theirs] and Ticket.objects.count() == 2
    assert list(Payment.objects.values_list("order_id", flat=True)) == [theirs.pk]
    assert not OutboxEmail.objects.exclude(order=theirs).exists()
    # The gate's buyers are gone; a patron with another order stays.
    assert list(Patron.objects.values_list("email", flat=True)) == [buyer.email]
    audit = AuditEntry.objects.get(action=gate_scratch.AUDIT_ACTION)
    assert audit.object_id == str(scratch.event.pk) and audit.after == result["rows"]
    assert AuditEntry.objects.filter(action="order.paid").count() == 5  # the orders' own entries stay


def test_an_order_that_also_holds_seats_elsewhere_keeps_everything(make_performance, good_card):
    scratch, other = make_performance(capacity=8), make_performance(capacity=8)
    sell([LineRequest(scratch.pk, scratch.adult.pk, 1), LineRequest(other.pk, other.adult.pk, 1)],
         CheckoutDetails(buyer=_gate_buyer(1), payment=good_card))

    result = _remove(scratch.event.pk, scratch.event.slug)

    assert result == {"removed": False, "reason": "Keep: an order of the scratch event has tickets for another performance"}
    assert Event.objects.filter(pk=scratch.event.pk).exists() and Ticket.objects.count() == 2
    assert not AuditEntry.objects.filter(action=gate_scratch.AUDIT_ACTION).exists()


def test_an_event_that_is_not_the_gates_own_is_never_touched(make_performance):
    perf = make_performance(capacity=8)
    result = _remove(perf.event.pk, "wtx-gate-integration-someone-elses")
    assert result["removed"] is False and result["reason"].startswith("DoesNotExist")
    assert Event.objects.filter(pk=perf.event.pk).exists()
