"""Stripe's API from recorded responses (tests/unit/fixtures/stripe/*.json), no network.

A fake `stripe.HTTPClient`, installed as `stripe.default_http_client`: the `stripe` library
itself builds, sends and parses every request. Like Stripe, the fake echoes what identifies a
request into the recorded object (an order's token and total), replays the first answer for
a repeated Idempotency-Key, and keeps every request for assertions.

For card readers (Terminal) it plays Stripe's simulated reader: a PaymentIntent handed to a
reader waits `in_progress` until `present_payment_method` (the test helper a simulated reader
answers) succeeds or declines it; the events Stripe would then send are queued in `events`
for the test to deliver, signed, to the webhook.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "stripe"
WEBHOOK_SECRET = "whsec_test_fixture_secret"
DECLINED_CARD = "4000000000000002"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def sign(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends: t=<ts>,v1=<hmac-sha256(secret, "<ts>.<payload>")>."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def _metadata(params: dict[str, str]) -> dict[str, str]:
    return {k[len("metadata["):-1]: v for k, v in params.items() if k.startswith("metadata[")}


class RecordedStripe(stripe.HTTPClient):
    """Answers the Stripe API from recorded responses. Keeps every request for assertions."""

    name = "recorded"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.replies: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
        self.by_key: dict[str, tuple[str, int, dict[str, str]]] = {}
        self.unreachable = False
        self.intents: dict[str, dict[str, Any]] = {}
        self.readers: dict[str, dict[str, Any]] = {}
        # Events Stripe would send after what happened here (delivered by the test).
        self.events: list[dict[str, Any]] = []

    def reply(self, method: str, path: str, body: dict[str, Any], status: int = 200) -> None:
        self.replies.setdefault((method, path), []).append((status, body))

    def add_reader(self, reader_id: str = "", label: str = "") -> dict[str, Any]:
        reader = recorded("terminal_reader_simulated")
        reader["id"] = reader_id or reader["id"]
        reader["label"] = label or reader["label"]
        self.readers[reader["id"]] = reader
        return reader

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, *, _usage: Any = None) -> tuple[str, int, dict[str, str]]:
        method, path = method.upper(), urlsplit(url).path
        params = dict(parse_qsl(post_data or urlsplit(url).query, keep_blank_values=True))
        key = (headers or {}).get("Idempotency-Key", "")
        self.requests.append({"method": method, "path": path, "params": params, "idempotency_key": key, "auth": (headers or {}).get("Authorization", "")})
        if self.unreachable:
            raise stripe.APIConnectionError("Could not connect to Stripe (test: network down).", should_retry=False)
        if key and key in self.by_key:
            return self.by_key[key]  # Stripe replays the first answer for a repeated key
        simulated = self._terminal(method, path, params, key)
        if simulated is not None:
            status, body = simulated
        else:
            answers = self.replies.get((method, path))
            if not answers:
                raise AssertionError(f"unexpected Stripe request {method} {path}")
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            body = copy.deepcopy(body)
            if path == "/v1/checkout/sessions" and method == "POST":
                # Echo what Stripe echoes: our order token, total and the page's expiry.
                token = params["metadata[order_token]"]
                body["metadata"] = _metadata(params)
                body["client_reference_id"] = token
                body["amount_total"] = body["amount_subtotal"] = int(params["line_items[0][price_data][unit_amount]"])
                body["expires_at"] = int(params["expires_at"])
                body["success_url"], body["cancel_url"] = params["success_url"], params["cancel_url"]
                body["id"] = f"cs_test_{hashlib.sha256(key.encode()).hexdigest()[:24]}"
                body["url"] = f"https://checkout.stripe.com/c/pay/{body['id']}"
        answer = (json.dumps(body), status, {"Request-Id": f"req_test_{len(self.requests)}", "Content-Type": "application/json"})
        if key:
            self.by_key[key] = answer
        return answer

    # ------------------------------------------------------------------ the simulated reader

    def _terminal(self, method: str, path: str, params: dict[str, str], key: str) -> tuple[int, dict[str, Any]] | None:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/payment_intents":
            intent = recorded("payment_intent_card_present")
            intent["id"] = f"pi_test_{hashlib.sha256(key.encode()).hexdigest()[:24]}"
            intent.update(amount=int(params["amount"]), currency=params["currency"], description=params.get("description"), metadata=_metadata(params))
            self.intents[intent["id"]] = intent
            return 200, copy.deepcopy(intent)
        if parts[:2] == ["v1", "payment_intents"] and len(parts) >= 3:
            intent = self.intents.get(parts[2])
            if intent is None:
                return 404, recorded("error_no_such_payment_intent")
            if method == "POST" and parts[3:] == ["cancel"]:
                if intent["status"] in ("succeeded", "canceled"):
                    return 400, recorded("error_payment_intent_unexpected_state")
                intent["status"] = "canceled"
            return 200, copy.deepcopy(intent)
        if parts[:3] == ["v1", "terminal", "readers"]:
            if method == "GET" and len(parts) == 3:
                return 200, {"object": "list", "url": "/v1/terminal/readers", "has_more": False, "data": copy.deepcopy(list(self.readers.values()))}
            reader = self.readers.get(parts[3])
            if reader is None:
                raise AssertionError(f"unknown reader {parts[3]}")
            if method == "POST" and parts[4:] == ["process_payment_intent"]:
                reader["action"] = {"type": "process_payment_intent", "status": "in_progress", "failure_code": None, "failure_message": None,
                                    "process_payment_intent": {"payment_intent": params["payment_intent"]}}
            elif method == "POST" and parts[4:] == ["cancel_action"]:
                reader["action"] = None
            return 200, copy.deepcopy(reader)
        if parts[:4] == ["v1", "test_helpers", "terminal", "readers"] and parts[5:] == ["present_payment_method"]:
            return 200, self._present(self.readers[parts[4]], params.get("card_present[number]", "4242424242424242"))
        return None

    def _present(self, reader: dict[str, Any], number: str) -> dict[str, Any]:
        action = reader.get("action") or {}
        intent = self.intents[action["process_payment_intent"]["payment_intent"]]
        if number == DECLINED_CARD:
            action.update(status="failed", failure_code="card_declined", failure_message="Your card was declined.")
            intent["last_payment_error"] = {"code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."}
            self.events.append(self._event("payment_intent.payment_failed", intent))
        else:
            action["status"] = "succeeded"
            intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None,
                          latest_charge=f"ch_test_{intent['id'][8:]}", payment_method=f"pm_test_{intent['id'][8:]}")
            self.events.append(self._event("payment_intent.succeeded", intent))
        return copy.deepcopy(reader)

    def _event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = recorded(f"event_{kind.replace('.', '_')}")
        seed = f"{kind}{obj['id']}{len(self.events)}"
        event["id"] = f"evt_test_{hashlib.sha256(seed.encode()).hexdigest()[:24]}"
        event["data"]["object"] = copy.deepcopy(obj)
        return event

    def close(self) -> None:
        pass


def checkout_event(order: Any, name: str = "event_checkout_session_completed") -> str:
    """The event Stripe sends about an order's Checkout page: its session id, token, total and
    a PaymentIntent of its own (so refunds can be told apart)."""
    from wondertix.payments.models import CheckoutSession

    event = recorded(name)
    session = event["data"]["object"]
    checkout = CheckoutSession.objects.get(order=order)
    session.update({"id": checkout.session_id, "client_reference_id": order.token, "amount_total": order.total_cents,
                    "amount_subtotal": order.total_cents, "payment_intent": f"pi_test_order_{order.pk}"})
    session["metadata"] = {"order_token": order.token, "order_reference": order.reference}
    event["id"] = f"evt_test_{name}_{order.token}"
    return json.dumps(event)
