from django.contrib import admin
from django.urls import include, path

from wondertix.api.api import api
from wondertix.ops import views as ops_views

urlpatterns = [
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics_view, name="metrics"),
    path("ops/raise-error", ops_views.raise_error, name="raise-error"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("staff/", include("wondertix.boxoffice.urls")),
    path("staff/reports/", include("wondertix.reports.urls")),
    path("staff/sales/", include("wondertix.sales.staff_urls")),
    path("staff/contacts/", include("wondertix.patrons.urls")),
    path("", include("wondertix.payments.urls")),
    path("subscriptions/", include("wondertix.patrons.public_urls")),
    path("", include("wondertix.storefront.urls")),
]

handler404 = "wondertix.ops.errors.not_found"
handler500 = "wondertix.ops.errors.server_error"
