from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "wondertix.storefront"
    label = "storefront"
