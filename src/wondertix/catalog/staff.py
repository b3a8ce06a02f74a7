"""Staff editing of the catalog: seasons, events, performances, price types, discount codes.

Every function is one use case in one transaction: lock what it touches, check the rules,
write, and record an audit entry with the state before and after. A SaleError means nothing
was written (the transaction is rolled back, so the audit entry goes with it).

Rules that protect sales already made:
- capacity never goes below the tickets sold, and a price type's per-performance limit never
  below what that type has sold (the performance rows are locked, so a sale cannot slip in
  between the check and the write);
- a performance with sales cannot be deleted, only canceled;
- a price edit changes future sales only: tickets keep the price_cents they were sold at.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Model, ProtectedError
from django.utils import timezone
from django.utils.text import slugify

from wondertix.catalog.models import Event, Performance, PriceType, Season, SeasonPrice
from wondertix.catalog.performance_models import PerformancePrice
from wondertix.catalog.seating import use_chart
from wondertix.ops import audit
from wondertix.ops.audit import Actor
from wondertix.sales import errors
from wondertix.sales.inventory import lock_performances
from wondertix.sales.models import DiscountCode, Ticket

SEASON_FIELDS = ("name", "slug", "starts_on", "ends_on", "active")
SEASON_PRICE_FIELDS = ("name", "price_cents", "fee_cents", "limit_per_performance", "staff_only", "sort_order")
EVENT_FIELDS = ("title", "slug", "description", "image_url", "image_alt", "duration_minutes", "active", "season_id")
PERFORMANCE_FIELDS = ("event_id", "starts_at", "on_sale_from", "on_sale_until", "capacity", "status", "note", "tickets_sold")
PERFORMANCE_EDITABLE = ("starts_at", "on_sale_from", "on_sale_until", "capacity", "note")
PRICE_TYPE_FIELDS = (
    "event_id", "name", "description", "price_cents", "fee_cents", "limit_per_performance",
    "pay_what_you_can", "min_price_cents", "max_price_cents", "active", "staff_only", "sort_order", "seat_category_id",
)
DISCOUNT_FIELDS = ("code", "description", "kind", "value", "usage_limit", "times_used", "min_tickets", "valid_from", "valid_until", "active")


# ---------------------------------------------------------------------------- helpers


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(obj: Model, fields: tuple[str, ...]) -> dict[str, Any]:
    """The audited state of an object: plain JSON values of the given fields."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def _validate(obj: Model, exclude: list[str] | None = None) -> None:
    """Model validation, turned into the one error type views and the API understand."""
    try:
        obj.full_clean(exclude=exclude, validate_unique=True, validate_constraints=True)
    except ValidationError as exc:
        field, message = "", "; ".join(exc.messages)
        if hasattr(exc, "error_dict"):
            field = next(iter(exc.error_dict))
            message = "; ".join(
                f"{name.replace('_', ' ').capitalize()}: {msg}" if name != "__all__" else msg
                for name, errs in exc.error_dict.items()
                for msg in ValidationError(errs).messages
            )
            field = "" if field == "__all__" else field
        raise errors.invalid("invalid_" + (field or "input"), message, field=field) from None


def _apply(obj: Model, changes: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(changes) - set(allowed)
    if unknown:
        raise errors.invalid("invalid_field", f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    for name, value in changes.items():
        setattr(obj, name, value)


def _save(obj: Model) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise errors.invalid("conflict", f"That conflicts with existing data ({exc.__class__.__name__}).") from None


def _locked(model: type[Model], pk: int, what: str) -> Any:
    obj = model._default_manager.select_for_update().filter(pk=pk).first()  # type: ignore[attr-defined]
    if obj is None:
        raise errors.not_found(f"unknown_{what}", f"That {what.replace('_', ' ')} does not exist.")
    return obj


# ---------------------------------------------------------------------------- seasons


def create_season(data: dict[str, Any], *, actor: Actor) -> Season:
    season = Season()
    _apply(season, data, SEASON_FIELDS)
    _validate(season)
    with transaction.atomic():
        _save(season)
        audit.record("season.created", actor=actor, obj=season, after=snapshot(season, SEASON_FIELDS))
    return season


def update_season(season_id: int, changes: dict[str, Any], *, actor: Actor) -> Season:
    with transaction.atomic():
        season = _locked(Season, season_id, "season")
        before = snapshot(season, SEASON_FIELDS)
        _apply(season, changes, SEASON_FIELDS)
        _validate(season)
        _save(season)
        old, new = _changed(before, snapshot(season, SEASON_FIELDS))
        if new:
            audit.record("season.updated", actor=actor, obj=season, before=old, after=new)
    return season


def set_season_active(season_id: int, active: bool, *, actor: Actor) -> Season:
    return update_season(season_id, {"active": active}, actor=actor)


def save_season_price(season_id: int, data: dict[str, Any], *, actor: Actor, price_id: int | None = None) -> SeasonPrice:
    """Create or edit one of a season's default prices. Existing events keep their own prices;
    the defaults are copied into events created in (or added to) the season from now on."""
    with transaction.atomic():
        season = _locked(Season, season_id, "season")
        if price_id is None:
            row = SeasonPrice(season=season)
            before: dict[str, Any] = {}
        else:
            found = SeasonPrice.objects.select_for_update().filter(pk=price_id, season=season).first()
            if found is None:
                raise errors.not_found("unknown_season_price", "That default price does not exist.")
            row = found
            before = snapshot(row, SEASON_PRICE_FIELDS)
        _apply(row, data, SEASON_PRICE_FIELDS)
        _validate(row)
        _save(row)
        after = snapshot(row, SEASON_PRICE_FIELDS)
        old, new = _changed(before, after) if before else ({}, after)
        audit.record(
            "season_price.created" if not before else "season_price.updated",
            actor=actor, obj=row, before=old or None, after={"season_id": season.pk, **new},
        )
    return row


def delete_season_price(price_id: int, *, actor: Actor) -> int:
    with transaction.atomic():
        row = _locked(SeasonPrice, price_id, "season_price")
        before = {"season_id": row.season_id, **snapshot(row, SEASON_PRICE_FIELDS)}
        row.delete()
        audit.record("season_price.deleted", actor=actor, object_type="catalog.seasonprice", object_id=price_id, before=before)
    return price_id


def season_in_use(season: Season) -> str:
    """Why the season cannot be deleted ("" when it can): events and subscriptions belong to it."""
    titles = list(season.events.order_by("title").values_list("title", flat=True)[:6])
    if titles:
        shown = ", ".join(f"“{t}”" for t in titles[:5]) + (" and more" if len(titles) > 5 else "")
        return (f"{season.name} has events ({shown}) and cannot be deleted. Move them to another season "
                f"(or to none) first, or deactivate the season instead.")
    packages = season.subscription_types.count()  # type: ignore[attr-defined]
    if packages:
        return (f"{season.name} has {packages} subscription type{'s' if packages != 1 else ''} and cannot be deleted "
                f"(subscribers' records point at it). Deactivate the season instead.")
    return ""


def delete_season(season_id: int, *, actor: Actor) -> int:
    """Delete an empty season (no events, no subscription types) with its default prices."""
    with transaction.atomic():
        season = _locked(Season, season_id, "season")
        why = season_in_use(season)
        if why:
            raise errors.conflict("season_in_use", why)
        before = {**snapshot(season, SEASON_FIELDS), "default_prices": list(season.default_prices.values_list("name", flat=True))}
        try:
            season.delete()
        except ProtectedError:  # an event joined it since the check above
            raise errors.conflict("season_in_use", f"{season.name} is in use and cannot be deleted.") from None
        audit.record("season.deleted", actor=actor, object_type="catalog.season", object_id=season_id, before=before)
    return season_id


def _apply_season_defaults(event: Event, *, actor: Actor) -> list[PriceType]:
    """Give the event a price type for each season default it does not have yet (by name)."""
    if event.season_id is None:
        return []
    have = set(event.price_types.values_list("name", flat=True))
    created = []
    for row in SeasonPrice.objects.filter(season_id=event.season_id):
        if row.name in have:
            continue
        pt = PriceType.objects.create(
            event=event, name=row.name, price_cents=row.price_cents, fee_cents=row.fee_cents,
            limit_per_performance=row.limit_per_performance, staff_only=row.staff_only, sort_order=row.sort_order,
        )
        audit.record("price_type.created", actor=actor, obj=pt, after={**snapshot(pt, PRICE_TYPE_FIELDS), "from_season": event.season_id})
        created.append(pt)
    return created


# ---------------------------------------------------------------------------- events


def unique_slug(title: str, model: type[Model] = Event) -> str:
    """A URL slug from the title, numbered when taken ('hamlet', 'hamlet-2', …)."""
    base = slugify(title)[:40] or "event"
    slug, n = base, 1
    while model._default_manager.filter(slug=slug).exists() and n < 1000:  # type: ignore[attr-defined]
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_event(data: dict[str, Any], *, actor: Actor) -> Event:
    """A new event (inactive unless told otherwise), with its season's default prices."""
    event = Event()
    data = dict(data)
    if not data.get("slug"):
        data["slug"] = unique_slug(data.get("title") or "")
    _apply(event, data, EVENT_FIELDS)
    _validate(event)
    with transaction.atomic():
        _save(event)
        audit.record("event.created", actor=actor, obj=event, after=snapshot(event, EVENT_FIELDS))
        _apply_season_defaults(event, actor=actor)
    return event


def update_event(event_id: int, changes: dict[str, Any], *, actor: Actor) -> Event:
    with transaction.atomic():
        event = _locked(Event, event_id, "event")
        before = snapshot(event, EVENT_FIELDS)
        if "slug" in changes and not changes["slug"]:
            changes = {k: v for k, v in changes.items() if k != "slug"}  # blank keeps the current address
        _apply(event, changes, EVENT_FIELDS)
        _validate(event)
        _save(event)
        old, new = _changed(before, snapshot(event, EVENT_FIELDS))
        if new:
            audit.record("event.updated", actor=actor, obj=event, before=old, after=new)
        if "season_id" in new:
            _apply_season_defaults(event, actor=actor)
    return event


def set_event_active(event_id: int, active: bool, *, actor: Actor) -> Event:
    """Activate (shown on the storefront, on sale) or deactivate an event."""
    with transaction.atomic():
        event = _locked(Event, event_id, "event")
        if active and not event.price_types.filter(active=True).exists():
            raise errors.invalid("no_price_types", "Add at least one active price type before activating this event.")
        before = event.active
        event.active = active
        event.save(update_fields=["active"])
        if before != active:
            audit.record("event.activated" if active else "event.deactivated", actor=actor, obj=event,
                         before={"active": before}, after={"active": active})
    return event


def add_event_to_season(event_id: int, season_id: int | None, *, actor: Actor) -> Event:
    if season_id is not None and not Season.objects.filter(pk=season_id).exists():
        raise errors.not_found("unknown_season", "That season does not exist.")
    return update_event(event_id, {"season_id": season_id}, actor=actor)


# ---------------------------------------------------------------------------- performances


def create_performance(event_id: int, data: dict[str, Any], *, actor: Actor) -> Performance:
    if not Event.objects.filter(pk=event_id).exists():
        raise errors.not_found("unknown_event", "That event does not exist.")
    perf = Performance(event_id=event_id)
    _apply(perf, data, PERFORMANCE_EDITABLE)
    _validate(perf)
    _check_sale_window(perf)
    with transaction.atomic():
        _save(perf)
        audit.record("performance.created", actor=actor, obj=perf, after=snapshot(perf, PERFORMANCE_FIELDS))
    return perf


def _check_sale_window(perf: Performance) -> None:
    if perf.on_sale_from and perf.on_sale_until and perf.on_sale_from >= perf.on_sale_until:
        raise errors.invalid("invalid_on_sale_until", "Online sales must close after they open.", field="on_sale_until")


def update_performance(perf_id: int, changes: dict[str, Any], *, actor: Actor) -> Performance:
    """Edit a performance. Capacity can never go below the tickets already sold: the row is
    locked, so no sale can land between this check and the write."""
    with transaction.atomic():
        perf = lock_performances([perf_id])[perf_id]
        before = snapshot(perf, PERFORMANCE_FIELDS)
        if perf.seating_chart_id is not None and "capacity" in changes and changes["capacity"] != before.get("capacity"):
            # A reserved performance sells its chart's seats: its capacity is the chart's.
            raise errors.invalid("capacity_follows_chart", "This performance sells reserved seats: its capacity is its seating chart's.", field="capacity")
        _apply(perf, changes, PERFORMANCE_EDITABLE)
        if "capacity" in changes and perf.capacity is not None and perf.capacity < perf.tickets_sold:
            raise errors.invalid(
                "capacity_below_sold",
                f"Capacity cannot be lower than the {perf.tickets_sold} ticket{'s' if perf.tickets_sold != 1 else ''} already sold "
                f"for this performance. Refund or exchange tickets first.",
                field="capacity",
                sold=perf.tickets_sold,
            )
        _validate(perf)
        _check_sale_window(perf)
        _save(perf)
        old, new = _changed(before, snapshot(perf, PERFORMANCE_FIELDS))
        if new:
            audit.record("performance.updated", actor=actor, obj=perf, before=old, after=new)
    return perf


def _moved_like(moment: datetime | None, source_start: datetime, new_start: datetime) -> datetime | None:
    """`moment` moved as the curtain moved, on the theater's wall clock.

    The shift is taken between local times, not instants: copying a Friday 7:30 pm show with
    sales opening Monday 10:00 am to a date across a daylight-saving change keeps 10:00 am
    (a fixed duration would land on 9:00 or 11:00 am).
    """
    if moment is None:
        return None
    zone = timezone.get_current_timezone()

    def wall(dt: datetime) -> datetime:
        return timezone.localtime(dt, zone).replace(tzinfo=None)

    shifted = wall(moment) + (wall(new_start) - wall(source_start))
    return timezone.make_aware(shifted, zone)


def copy_performance(perf_id: int, starts_at: datetime, *, actor: Actor) -> Performance:
    """A new performance of the same event, capacity, seating chart and note at another time;
    the online sale window moves with it (on the theater's wall clock). Nothing sold is copied."""
    source = Performance.objects.filter(pk=perf_id).first()
    if source is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    copy = Performance(
        event_id=source.event_id,
        starts_at=starts_at,
        capacity=source.capacity,
        note=source.note,
        on_sale_from=_moved_like(source.on_sale_from, source.starts_at, starts_at),
        on_sale_until=_moved_like(source.on_sale_until, source.starts_at, starts_at),
    )
    _validate(copy)
    with transaction.atomic():
        _save(copy)
        if source.seating_chart_id is not None:  # the same seats, its capacity the chart's as of now
            copy = use_chart(copy, source.seating_chart)
        audit.record("performance.copied", actor=actor, obj=copy, before={"copied_from": source.pk},
                     after={**snapshot(copy, PERFORMANCE_FIELDS), "seating_chart_id": copy.seating_chart_id})
    return copy


def cancel_performance(perf_id: int, reason: str, *, actor: Actor) -> Performance:
    """Stop sales for good (status canceled). Tickets stay valid until refunded, so the buyers
    can be offered refunds from the cancel page."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.invalid("reason_required", "Please give a reason for canceling this performance.", field="reason")
    with transaction.atomic():
        perf = lock_performances([perf_id])[perf_id]
        if perf.status == Performance.CANCELED:
            raise errors.conflict("already_canceled", "This performance is already canceled.")
        before = perf.status
        perf.status = Performance.CANCELED
        perf.save(update_fields=["status"])
        audit.record("performance.canceled", actor=actor, obj=perf, before={"status": before},
                     after={"status": perf.status, "reason": reason[:200], "tickets_sold": perf.tickets_sold})
    return perf


def delete_performance(perf_id: int, *, actor: Actor) -> int:
    """Delete a performance that never sold anything. One with sales can only be canceled."""
    with transaction.atomic():
        perf = lock_performances([perf_id])[perf_id]
        issued = Ticket.objects.filter(performance=perf).count()
        if issued or perf.tickets_sold:
            raise errors.conflict(
                "performance_has_sales",
                f"This performance has {issued} ticket{'s' if issued != 1 else ''} on record and cannot be deleted. "
                "Cancel it instead; its buyers can then be refunded.",
            )
        before = snapshot(perf, PERFORMANCE_FIELDS)
        perf.hold_lines.all().delete()
        perf.delete()
        audit.record("performance.deleted", actor=actor, object_type="catalog.performance", object_id=perf_id, before=before)
    return perf_id


def buyers_of(perf_id: int) -> list[dict[str, Any]]:
    """Who holds valid tickets for a performance: one row per order (for the cancel page)."""
    rows = (
        Ticket.objects.filter(performance_id=perf_id, status=Ticket.VALID)
        .values("order_id", "order__buyer_name", "order__buyer_email", "order__buyer_phone", "order__total_cents")
        .annotate(tickets=Count("id"))
        .order_by("order__buyer_name", "order_id")
    )
    return [
        {
            "order_id": r["order_id"], "name": r["order__buyer_name"], "email": r["order__buyer_email"],
            "phone": r["order__buyer_phone"], "tickets": r["tickets"], "order_total_cents": r["order__total_cents"],
        }
        for r in rows
    ]


# ---------------------------------------------------------------------------- price types


def create_price_type(event_id: int, data: dict[str, Any], *, actor: Actor) -> PriceType:
    if not Event.objects.filter(pk=event_id).exists():
        raise errors.not_found("unknown_event", "That event does not exist.")
    pt = PriceType(event_id=event_id)
    _apply(pt, data, PRICE_TYPE_FIELDS)
    _validate(pt)
    with transaction.atomic():
        _save(pt)
        audit.record("price_type.created", actor=actor, obj=pt, after=snapshot(pt, PRICE_TYPE_FIELDS))
    return pt


def update_price_type(pt_id: int, changes: dict[str, Any], *, actor: Actor) -> PriceType:
    """Edit a price type. A new price applies to future sales only (tickets keep the price they
    were sold at). The per-performance limit never goes below what any performance has sold of
    this type: the event's performances are locked for the check."""
    if "event_id" in changes:
        raise errors.invalid("invalid_field", "A price type cannot move to another event.")
    with transaction.atomic():
        pt = PriceType.objects.filter(pk=pt_id).first()
        if pt is None:
            raise errors.not_found("unknown_price_type", "That price type does not exist.")
        new_limit = changes.get("limit_per_performance", pt.limit_per_performance)
        if "limit_per_performance" in changes and new_limit is not None:
            lock_performances(Performance.objects.filter(event_id=pt.event_id).values_list("pk", flat=True))
            # Performances with their own limit for this type (performance_prices) keep it.
            own_limit = PerformancePrice.objects.filter(price_type_id=pt.pk, limit_per_performance__isnull=False).values("performance_id")
            most = (
                Ticket.objects.counted().filter(price_type_id=pt.pk)
                .exclude(performance_id__in=own_limit)
                .values("performance_id").annotate(n=Count("id")).order_by("-n").first()
            )
            if most and new_limit < most["n"]:
                perf = Performance.objects.select_related("event").get(pk=most["performance_id"])
                raise errors.invalid(
                    "limit_below_sold",
                    f"The limit for “{pt.name}” cannot be lower than the {most['n']} already sold for {perf}.",
                    field="limit_per_performance",
                    sold=most["n"],
                )
        if changes.get("seat_category_id", pt.seat_category_id) != pt.seat_category_id:
            _refuse_category_change(pt)  # performances locked before the price type, as above
        pt = PriceType.objects.select_for_update().get(pk=pt_id)
        before = snapshot(pt, PRICE_TYPE_FIELDS)
        _apply(pt, changes, PRICE_TYPE_FIELDS)
        _validate(pt)
        _save(pt)
        old, new = _changed(before, snapshot(pt, PRICE_TYPE_FIELDS))
        if new:
            audit.record("price_type.updated", actor=actor, obj=pt, before=old, after=new)
    return pt


def _refuse_category_change(pt: PriceType) -> None:
    """Tickets sold or held at a price type count under its seat category (per-category limits,
    a seat's price): moving the type to another category would move them too."""
    lock_performances(Performance.objects.filter(event_id=pt.event_id).values_list("pk", flat=True))
    if Ticket.objects.filter(price_type_id=pt.pk).exists() or pt.hold_lines.filter(expires_at__gt=timezone.now()).exists():
        raise errors.conflict(
            "price_type_has_sales",
            f"“{pt.name}” has tickets sold or held: its seat category cannot change. Add a new price type instead.",
            field="seat_category",
        )


def set_price_type_active(pt_id: int, active: bool, *, actor: Actor) -> PriceType:
    return update_price_type(pt_id, {"active": active}, actor=actor)


def delete_price_type(pt_id: int, *, actor: Actor) -> int:
    """Delete a price type nobody has bought or held. One with sales can only go off sale."""
    with transaction.atomic():
        pt = PriceType.objects.filter(pk=pt_id).first()
        if pt is None:
            raise errors.not_found("unknown_price_type", "That price type does not exist.")
        lock_performances(Performance.objects.filter(event_id=pt.event_id).values_list("pk", flat=True))
        if Ticket.objects.filter(price_type_id=pt_id).exists() or pt.hold_lines.filter(expires_at__gt=timezone.now()).exists():
            raise errors.conflict(
                "price_type_has_sales",
                f"“{pt.name}” has tickets sold or held and cannot be deleted. Take it off sale instead.",
            )
        before = snapshot(pt, PRICE_TYPE_FIELDS)
        pt.hold_lines.all().delete()
        pt.delete()
        audit.record("price_type.deleted", actor=actor, object_type="catalog.pricetype", object_id=pt_id, before=before)
    return pt_id


# ---------------------------------------------------------------------------- discount codes


def create_discount(data: dict[str, Any], price_type_ids: list[int], *, actor: Actor) -> DiscountCode:
    code = DiscountCode()
    _apply(code, data, DISCOUNT_FIELDS)
    code.code = (code.code or "").strip().upper()
    _validate(code, exclude=["price_types"])
    with transaction.atomic():
        _save(code)
        code.price_types.set(price_type_ids)
        audit.record("discount.created", actor=actor, obj=code,
                     after={**snapshot(code, DISCOUNT_FIELDS), "price_type_ids": sorted(price_type_ids)})
    return code


def update_discount(code_id: int, changes: dict[str, Any], price_type_ids: list[int] | None = None, *, actor: Actor) -> DiscountCode:
    """Edit a code. Its usage limit can never go below the orders that already used it (the
    row is locked, as the sale path locks it when counting a use)."""
    with transaction.atomic():
        code = _locked(DiscountCode, code_id, "discount_code")
        before = {**snapshot(code, DISCOUNT_FIELDS), "price_type_ids": sorted(code.price_types.values_list("pk", flat=True))}
        if "times_used" in changes:
            raise errors.invalid("invalid_field", "The number of uses is counted by sales and cannot be edited.")
        _apply(code, changes, DISCOUNT_FIELDS)
        code.code = (code.code or "").strip().upper()
        if code.usage_limit is not None and code.usage_limit < code.times_used:
            raise errors.invalid(
                "limit_below_used",
                f"The usage limit cannot be lower than the {code.times_used} orders that already used this code.",
                field="usage_limit",
            )
        _validate(code, exclude=["price_types"])
        _save(code)
        if price_type_ids is not None:
            code.price_types.set(price_type_ids)
        after = {**snapshot(code, DISCOUNT_FIELDS), "price_type_ids": sorted(code.price_types.values_list("pk", flat=True))}
        old, new = _changed(before, after)
        if new:
            audit.record("discount.updated", actor=actor, obj=code, before=old, after=new)
    return code


def set_discount_active(code_id: int, active: bool, *, actor: Actor) -> DiscountCode:
    return update_discount(code_id, {"active": active}, actor=actor)


def delete_discount(code_id: int, *, actor: Actor) -> int:
    """Delete a code no order has used (orders keep a reference to the code they used)."""
    with transaction.atomic():
        code = _locked(DiscountCode, code_id, "discount_code")
        if code.times_used or code.orders.exists():
            raise errors.conflict("discount_used", f"{code.code} has been used by orders and cannot be deleted. Deactivate it instead.")
        before = snapshot(code, DISCOUNT_FIELDS)
        code.delete()
        audit.record("discount.deleted", actor=actor, object_type="sales.discountcode", object_id=code_id, before=before)
    return code_id


def default_copy_time(perf: Performance) -> datetime:
    """The suggested time for a copy: the same time one week later."""
    return timezone.localtime(perf.starts_at) + timedelta(days=7)
