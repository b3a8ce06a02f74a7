from django.conf import settings
from django.http import HttpRequest

from wondertix.payments import simulated


def site(request: HttpRequest) -> dict[str, object]:
    return {
        "THEATER_NAME": settings.THEATER_NAME,
        "WONDERTIX_ENV": settings.WONDERTIX_ENV,
        "request_id": getattr(request, "request_id", ""),
        # Payments are simulated: every page and ticket says so (payments.simulated).
        "TEST_MARK": simulated.TEST_MARK if simulated.payments_are_simulated() else "",
    }
