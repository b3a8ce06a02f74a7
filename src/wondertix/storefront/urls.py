from django.urls import path

from wondertix.storefront import account_views, lookup_views, views

app_name = "storefront"

urlpatterns = [
    path("", views.events, name="events"),
    path("events/<slug:slug>/", views.event_detail, name="event"),
    path("performances/<int:performance_id>/", views.performance, name="performance"),
    path("cart/", views.cart_view, name="cart"),
    path("cart/empty/", views.cart_empty, name="cart_empty"),
    path("cart/hold-again/", views.cart_hold_again, name="cart_hold_again"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/<str:token>/", views.order_detail, name="order"),
    path("orders/<str:token>/tickets.pdf", views.order_tickets_pdf, name="order_tickets_pdf"),
    path("orders/<str:token>/calendar.ics", views.order_calendar, name="order_calendar"),
    path("tickets/find/", lookup_views.find_tickets, name="find_tickets"),
    path("tickets/<str:code>/qr.svg", views.ticket_qr, name="ticket_qr"),
    path("donate/", views.donate, name="donate"),
    path("account/", account_views.home, name="account"),
    path("account/sign-in/", account_views.sign_in, name="sign_in"),
    path("account/sign-in/<str:token>/", account_views.sign_in_link, name="sign_in_link"),
    path("account/sign-out/", account_views.sign_out, name="sign_out"),
    path("account/newsletter/", account_views.newsletter, name="account_newsletter"),
    path("account/orders/<int:order_id>/exchange/", account_views.exchange, name="account_exchange"),
    path("account/subscriptions/<int:subscription_id>/redeem/", account_views.redeem, name="account_redeem"),
]
