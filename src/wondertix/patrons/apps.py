from django.apps import AppConfig


class PatronsConfig(AppConfig):
    name = "wondertix.patrons"
    label = "patrons"
