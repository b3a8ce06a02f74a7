"""The integration and performance gates' scratch data, removed once the gate has counted it.

Each of those gates makes a scratch event ("[wtx gate integration <run>]") with a performance
and a price type, and sells it: orders, tickets, payments, one patron per buyer, confirmation
emails waiting in the outbox. Left behind, every stg gate run would add an event and some
forty "Gate Buyer" patrons and their orders to stg's data. Once the tickets are counted, the
release (`wondertix shell`, stg's own database) removes all of it in one transaction, and
records one audit entry saying what it removed (the orders' own audit entries stay: the
audit is never edited).

Only what belongs to the scratch event alone goes: an order with a ticket for another
performance, a patron with another order, a refund or anything else that refers to these
rows stops the removal (Django's PROTECT), and the event stays as before — off sale,
labelled — with the reason in the gate's figures and summary. The gate's verdict is the
count, not the tidying: a removal that did not happen never fails a gate.
"""

from __future__ import annotations

from typing import Any

AUDIT_ACTION = "wtx.gate_scratch_removed"


def removal_script(event: int, slug: str) -> str:
    from wtx.gate_integration import MARK

    return f"""
import json
from collections import Counter
from django.db import transaction
from django.db.models import ProtectedError
from wondertix.catalog.models import Event, Performance, PriceType
from wondertix.ops import audit
from wondertix.patrons.models import Patron
from wondertix.payments.models import Payment
from wondertix.sales.models import Hold, HoldLine, Order, Ticket

class Keep(Exception):
    pass

removed = Counter()
def gone(qs):
    removed.update(qs.delete()[1])
try:
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk={event}, slug={slug!r})
        perfs = list(Performance.objects.filter(event=event).values_list("pk", flat=True))
        orders = set(Ticket.objects.filter(performance_id__in=perfs).values_list("order_id", flat=True))
        if Ticket.objects.filter(order_id__in=orders).exclude(performance_id__in=perfs).exists():
            raise Keep("an order of the scratch event has tickets for another performance")
        patrons = set(Order.objects.filter(pk__in=orders).exclude(patron=None).values_list("patron_id", flat=True))
        holds = set(HoldLine.objects.filter(performance_id__in=perfs).values_list("hold_id", flat=True))
        gone(Payment.objects.filter(order_id__in=orders))
        gone(Ticket.objects.filter(order_id__in=orders))
        gone(Order.objects.filter(pk__in=orders))
        gone(Patron.objects.filter(pk__in=patrons, orders=None))
        gone(Hold.objects.filter(pk__in=holds))
        gone(Performance.objects.filter(pk__in=perfs))
        gone(PriceType.objects.filter(event=event))
        gone(Event.objects.filter(pk=event.pk))
        audit.record({AUDIT_ACTION!r}, object_type="catalog.event", object_id={event}, actor_label="wtx gate",
                     before={{"slug": {slug!r}}}, after=dict(sorted(removed.items())))
except (Keep, ProtectedError, Event.DoesNotExist) as exc:
    print({MARK!r} + json.dumps({{"removed": False, "reason": type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]}}))
else:
    print({MARK!r} + json.dumps({{"removed": True, "rows": dict(sorted(removed.items()))}}))
"""


def remove(work: Any, made: dict[str, Any], slug: str, *, timeout: float, log: Any) -> dict[str, Any]:
    """Remove the scratch event `made` (its pk) and everything sold on it; returns the figure
    for the gate's record: {"removed": True, "rows": {model: count}} or {"removed": False,
    "reason": …}. Never raises for a removal that did not happen."""
    from wtx.gate_integration import release_shell
    from wtx.gates import CheckError

    try:
        return release_shell(work, removal_script(int(made["event"]), slug), "removing the scratch event",
                             timeout=timeout, log=log)
    except CheckError as exc:
        return {"removed": False, "reason": str(exc)}


def summary(figure: dict[str, Any]) -> str:
    """What the gate's one line says about its scratch data."""
    if figure.get("removed"):
        rows = figure.get("rows", {})
        orders = sum(n for model, n in rows.items() if model.endswith(".Order"))
        return f"scratch event removed ({orders} orders)"
    return f"scratch event NOT removed, left off sale: {figure.get('reason', '?')}"
