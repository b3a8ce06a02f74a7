"""The `performance` gate's on-sale scenario for locust (run by wtx.gate_performance, headless).

Each patron arrives on the storefront, buys one ticket of the gate's scratch performance, and
then browses the storefront and the API. One order per patron keeps the orders of a run from
one loopback address under the front door's per-address order limit (users <= its
orders_per_window) and makes every run buy something. Its settings come from the environment the gate starts locust with:
WTX_PERF_HOST (the Host header), WTX_PERF_AUTH ("user:password" for basic auth, or empty),
WTX_PERF_PERFORMANCE, WTX_PERF_PRICE_TYPE, WTX_PERF_TAG. A buy that answers 201 (sold) or 409
(sold out) is a success; anything else, 429 included, is an error.
"""

from __future__ import annotations

import os
import uuid

from locust import HttpUser, between, task

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


class Patron(HttpUser):
    wait_time = between(1, 2)

    def on_start(self) -> None:
        self.client.headers["Host"] = os.environ["WTX_PERF_HOST"]
        user, _, password = os.environ.get("WTX_PERF_AUTH", "").partition(":")
        if user:
            self.client.auth = (user, password)
        self.performance = int(os.environ["WTX_PERF_PERFORMANCE"])
        self.price_type = int(os.environ["WTX_PERF_PRICE_TYPE"])
        self.tag = os.environ.get("WTX_PERF_TAG", "perf")
        self.storefront()
        self.buy()

    @task(5)
    def storefront(self) -> None:
        self.client.get("/", name="/")

    @task(3)
    def events(self) -> None:
        self.client.get("/api/v1/events", name="/api/v1/events")

    @task(3)
    def performance_page(self) -> None:
        self.client.get(f"/performances/{self.performance}/", name="/performances/[id]/")

    def buy(self) -> None:
        key = f"wtx-perf-{self.tag}-{uuid.uuid4().hex}"
        body = {"lines": [{"performance_id": self.performance, "price_type_id": self.price_type, "quantity": 1}],
                "buyer": {"first_name": "Perf", "last_name": "Patron", "email": f"perf-{key[-12:]}@example.com"},
                "card": CARD}
        with self.client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": key},
                              name="/api/v1/orders", catch_response=True) as resp:
            if resp.status_code in (201, 409):
                resp.success()
            else:
                resp.failure(f"answered {resp.status_code}")
