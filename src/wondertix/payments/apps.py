from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "wondertix.payments"
    label = "payments"
