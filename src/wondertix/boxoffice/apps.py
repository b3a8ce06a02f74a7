from django.apps import AppConfig


class BoxofficeConfig(AppConfig):
    name = "wondertix.boxoffice"
    label = "boxoffice"
