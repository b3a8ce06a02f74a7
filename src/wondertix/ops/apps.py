from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "wondertix.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from wondertix.ops import checks  # noqa: F401  (registers deploy checks)
