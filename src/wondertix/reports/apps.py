from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "wondertix.reports"
    label = "reports"
