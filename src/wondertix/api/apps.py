from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "wondertix.api"
    label = "api"
