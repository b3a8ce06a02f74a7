"""Public season-subscription pages, mounted at /subscriptions/."""

from django.urls import path

from wondertix.patrons import public_views

app_name = "subscriptions"

urlpatterns = [
    path("", public_views.subscriptions_page, name="list"),
    path("thanks/<str:token>/", public_views.subscription_thanks, name="thanks"),
]
