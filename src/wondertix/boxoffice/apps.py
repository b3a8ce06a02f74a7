from django.apps import AppConfig


class BoxofficeConfig(AppConfig):
    name = "wondertix.boxoffice"
    label = "boxoffice"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from wondertix.boxoffice.roles import ensure_role_groups

        post_migrate.connect(ensure_role_groups, sender=self, dispatch_uid="boxoffice-role-groups")
