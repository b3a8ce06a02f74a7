"""Reports, mounted at /staff/reports/: a page and a CSV export per report."""

from django.urls import path

from wondertix.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.report, name="report"),
    path("<slug:slug>.csv", views.report_csv, name="report-csv"),
]
