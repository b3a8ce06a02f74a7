"""The API docs as deployed (DEBUG off, gunicorn, collected and hashed static files served by
WhiteNoise): the Swagger UI page and every file it loads come from the site itself, and the
public document leaves the staff API out."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.slow


def test_deployed_api_docs_load_swagger_ui_from_the_sites_static_files(backoffice_server: LiveServer):
    base = backoffice_server.url
    page = httpx.get(base + "/api/v1/docs", timeout=30)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any("swagger-ui-bundle" in a for a in assets) and any(a.endswith(".css") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/static/"), f"{asset} is not one of the site's own files"
        assert httpx.get(base + asset, timeout=30).status_code == 200, asset
    document = httpx.get(base + "/api/v1/openapi.json", timeout=30).json()
    assert "/api/v1/orders" in document["paths"]
    assert not [p for p in document["paths"] if p.startswith("/api/v1/staff")]
    assert httpx.get(base + "/api/v1/staff/openapi.json", timeout=30).status_code == 401
