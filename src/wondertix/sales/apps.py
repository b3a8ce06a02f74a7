from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "wondertix.sales"
    label = "sales"
