"""Checks every API answer a test receives against the published OpenAPI document.

`ResponseChecker.check(method, path, response)` finds the documented operation, requires the
status to be documented for it, and validates a JSON body against the documented schema (or
requires an empty body where none is documented). Requests that reach no documented operation
(an unknown path, a method the path does not have) are left to the tests that expect them.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from functools import cache
from typing import Any

import jsonschema_rs
from ninja.responses import NinjaJSONEncoder

API = "/api/v1/"
NOT_OPERATIONS = {"/api/v1/openapi.json", "/api/v1/docs", "/api/v1/staff/openapi.json", "/api/v1/staff/docs"}


@cache
def published() -> dict[str, Any]:
    """The full document (public and staff), as a client reads it."""
    from wondertix.api.api import api
    from wondertix.api.documents import full_document

    return json.loads(json.dumps(full_document(api), cls=NinjaJSONEncoder))


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in published()["paths"]:
        pattern = re.escape(template)
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", pattern)
        # Literal paths first: /staff/reports/summary before /staff/reports/{report}.
        out.append((re.compile(pattern + r"\Z"), template))
    return sorted(out, key=lambda item: item[1].count("{"))


@cache
def _validator(method: str, template: str, status: str) -> Any:
    doc = published()
    schema = doc["paths"][template][method]["responses"][status]["content"]["application/json"]["schema"]
    return jsonschema_rs.validator_for({**schema, "components": doc["components"]}, validate_formats=True)


class ResponseChecker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked = 0
        self._lock = threading.Lock()

    def check(self, method: str, path: str, response: Any) -> None:
        if not path.startswith(API) or path in NOT_OPERATIONS:
            return
        method = method.lower()
        template = next((t for pattern, t in _templates() if pattern.match(path)), None)
        if template is None or method not in published()["paths"][template]:
            return
        problem = self._problem(method, template, response)
        with self._lock:
            self.checked += 1
            if problem:
                self.problems.append(f"{method.upper()} {path} → {response.status_code}: {problem}")

    def _problem(self, method: str, template: str, response: Any) -> str | None:
        status = str(response.status_code)
        documented = published()["paths"][template][method]["responses"]
        if status not in documented:
            return f"status {status} is not documented for {method.upper()} {template} (documented: {', '.join(sorted(documented))})"
        content = documented[status].get("content")
        body = response.content
        if response.get("Content-Encoding") == "gzip":  # sent compressed to a client that asked
            body = gzip.decompress(body)
        if not content:
            return f"documented without a body, but answered {body[:200]!r}" if body else None
        if not response.get("Content-Type", "").startswith("application/json"):
            return f"documented as JSON, answered {response.get('Content-Type')}"
        try:
            data = json.loads(body)
        except ValueError:
            return f"documented as JSON, answered {body[:200]!r}"
        errors = [f"{'/'.join(map(str, e.instance_path)) or 'body'}: {e.message}" for e in _validator(method, template, status).iter_errors(data)]
        return "; ".join(errors[:5]) or None
