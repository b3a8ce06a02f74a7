"""Staff UI, mounted at /staff/. Back-office areas (sales, contacts, reports) mount beside it."""

from django.urls import path

from wondertix.boxoffice.views import (
    audit,
    auth,
    catalog,
    dashboard,
    deletes,
    door,
    emails,
    pos,
    pos_card,
    seating,
)

app_name = "boxoffice"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth.StaffLoginView.as_view(), name="login"),
    path("logout/", auth.logout_view, name="logout"),
    # Catalog (admins)
    path("events/", catalog.event_list, name="events"),
    path("events/new/", catalog.event_new, name="event-new"),
    path("events/<int:event_id>/", catalog.event_detail, name="event"),
    path("events/<int:event_id>/edit/", catalog.event_edit, name="event-edit"),
    path("events/<int:event_id>/active/", catalog.event_active, name="event-active"),
    path("events/<int:event_id>/season/", catalog.event_season, name="event-season"),
    path("events/<int:event_id>/performances/new/", catalog.performance_new, name="performance-new"),
    path("events/<int:event_id>/price-types/new/", catalog.price_type_new, name="price-type-new"),
    path("performances/<int:performance_id>/edit/", catalog.performance_edit, name="performance-edit"),
    path("performances/<int:performance_id>/copy/", catalog.performance_copy, name="performance-copy"),
    path("performances/<int:performance_id>/cancel/", catalog.performance_cancel, name="performance-cancel"),
    path("performances/<int:performance_id>/delete/", deletes.performance_delete, name="performance-delete"),
    path("price-types/<int:price_type_id>/edit/", catalog.price_type_edit, name="price-type-edit"),
    path("price-types/<int:price_type_id>/active/", catalog.price_type_active, name="price-type-active"),
    path("price-types/<int:price_type_id>/delete/", deletes.price_type_delete, name="price-type-delete"),
    path("seasons/", catalog.season_list, name="seasons"),
    path("seasons/new/", catalog.season_new, name="season-new"),
    path("seasons/<int:season_id>/", catalog.season_detail, name="season"),
    path("seasons/<int:season_id>/edit/", catalog.season_edit, name="season-edit"),
    path("seasons/<int:season_id>/active/", catalog.season_active, name="season-active"),
    path("seasons/<int:season_id>/delete/", deletes.season_delete, name="season-delete"),
    path("seasons/<int:season_id>/add-event/", catalog.season_add_event, name="season-add-event"),
    path("seasons/<int:season_id>/prices/new/", catalog.season_price_new, name="season-price-new"),
    path("season-prices/<int:price_id>/edit/", catalog.season_price_edit, name="season-price-edit"),
    path("season-prices/<int:price_id>/delete/", deletes.season_price_delete, name="season-price-delete"),
    path("discounts/", catalog.discount_list, name="discounts"),
    path("discounts/new/", catalog.discount_new, name="discount-new"),
    path("discounts/<int:discount_id>/edit/", catalog.discount_edit, name="discount-edit"),
    path("discounts/<int:discount_id>/active/", catalog.discount_active, name="discount-active"),
    path("discounts/<int:discount_id>/delete/", deletes.discount_delete, name="discount-delete"),
    # Point of sale (box office and admins)
    path("seating/", seating.charts, name="seating-charts"),
    path("seating/<int:chart_id>/export/", seating.chart_export, name="seating-chart-export"),
    path("pos/", pos.choose, name="pos"),
    path("pos/<int:performance_id>/", pos.sell, name="pos-sell"),
    path("pos/<int:performance_id>/hold/", pos.hold_seats, name="pos-hold"),
    path("pos/holds/<int:hold_id>/release/", pos.release_seats, name="pos-release"),
    path("pos/orders/<int:order_id>/", pos.order_done, name="pos-order"),
    path("pos/card/<int:payment_id>/", pos_card.card_payment, name="pos-card"),
    path("pos/card/<int:payment_id>/act/", pos_card.card_action, name="pos-card-action"),
    # Door (ushers and up)
    path("door/", door.choose, name="door"),
    path("door/<int:performance_id>/", door.door, name="door-list"),
    path("door/<int:performance_id>/print/", door.door_print, name="door-print"),
    path("door/<int:performance_id>/export.csv", door.door_export, name="door-csv"),
    path("door/<int:performance_id>/checkin/", door.scan, name="door-checkin"),
    path("door/<int:performance_id>/undo/", door.undo, name="door-undo"),
    path("door/<int:performance_id>/admit/", door.admit_party, name="door-admit"),
    # Audit log, previews of patron emails (admins)
    path("audit/", audit.audit_log, name="audit"),
    path("emails/", emails.email_list, name="emails"),
    path("emails/<slug:name>/", emails.email_preview, name="email-preview"),
    path("emails/<slug:name>/html/", emails.email_preview_html, name="email-preview-html"),
]
