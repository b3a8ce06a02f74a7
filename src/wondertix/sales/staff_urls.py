"""Staff order pages, mounted at /staff/sales/: find orders, refund, exchange, refund a canceled show."""

from django.urls import path

from wondertix.sales import staff_views

app_name = "staff-sales"

urlpatterns = [
    path("", staff_views.order_list, name="orders"),
    path("orders/<int:order_id>/", staff_views.order_detail, name="order"),
    path("orders/<int:order_id>/refund/", staff_views.order_refund, name="order-refund"),
    path("orders/<int:order_id>/exchange/", staff_views.order_exchange, name="order-exchange"),
    path("orders/<int:order_id>/tickets.pdf", staff_views.order_tickets_print, name="order-tickets-print"),
    path("orders/<int:order_id>/resend-confirmation/", staff_views.order_resend_confirmation, name="order-resend-confirmation"),
    path("performances/<int:performance_id>/refund-all/", staff_views.performance_refund_all, name="refund-all"),
]
