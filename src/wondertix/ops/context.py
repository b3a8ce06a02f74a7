from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    return {
        "THEATER_NAME": settings.THEATER_NAME,
        "WONDERTIX_ENV": settings.WONDERTIX_ENV,
        "request_id": getattr(request, "request_id", ""),
    }
