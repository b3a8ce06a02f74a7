import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wondertix.settings")
application = get_wsgi_application()


def _refuse_unsafe_settings() -> None:
    """An app server refuses to start with an insecure or dangerous configuration (the same
    system checks as `manage.py check`, with the deploy ones whenever DEBUG is off): a
    worker that cannot boot never becomes ready, so a deploy aborts instead of serving."""
    from django.conf import settings
    from django.core import checks
    from django.core.exceptions import ImproperlyConfigured

    serious = [
        m for m in checks.run_checks(include_deployment_checks=not settings.DEBUG)
        if m.is_serious() and not m.is_silenced()
    ]
    if serious:
        raise ImproperlyConfigured("refusing to start:\n" + "\n".join(str(m) for m in serious))


_refuse_unsafe_settings()
