from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "wondertix.catalog"
    label = "catalog"
