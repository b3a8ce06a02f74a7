"""Contacts (CRM) and season subscriptions for staff, mounted at /staff/contacts/."""

from django.urls import path

from wondertix.patrons import views

app_name = "contacts"

urlpatterns = [
    path("", views.contact_search, name="search"),
    path("new/", views.contact_new, name="new"),
    path("<int:patron_id>/", views.contact_detail, name="contact"),
    path("<int:patron_id>/edit/", views.contact_edit, name="edit"),
    path("<int:patron_id>/note/", views.contact_note, name="note"),
    path("<int:patron_id>/merge/", views.contact_merge, name="merge"),
    path("<int:patron_id>/gift/", views.gift_new, name="gift"),
    path("subscriptions/", views.subscription_types, name="subscription-types"),
    path("subscriptions/new/", views.subscription_type_edit, name="subscription-type-new"),
    path("subscriptions/types/<int:type_id>/edit/", views.subscription_type_edit, name="subscription-type-edit"),
    path("subscriptions/sell/", views.subscription_sell, name="subscription-sell"),
    path("subscriptions/<int:subscription_id>/redeem/", views.subscription_redeem, name="subscription-redeem"),
]
