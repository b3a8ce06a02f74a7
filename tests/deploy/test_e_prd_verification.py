"""prd's post-deploy verification from /metrics for real: a release whose events API answers
500 reaches prd (dev's and stg's gates recorded as passed, prd approved: this test is about
prd's own check) and the pipeline's `verify` gate — prd's /metrics read through the front
door before and after a short window of smoke traffic — finds the 5xx share, fails, and the
pipeline rolls prd back to the release before. dev and stg, which the pipeline moved on the
way, are rolled back afterwards so that nothing after this test runs the broken release.
"""

from __future__ import annotations

import tomllib

import pytest
from variants import append_to_urls, build_variant

from wtx import ledger, pipeline
from wtx import release as releases
from wtx.backends.local import LocalBackend
from wtx.spec import parse_spec

pytestmark = pytest.mark.slow
WINDOW_S = 3

BROKEN_EVENTS = """

from django.http import JsonResponse as _JsonResponse  # noqa: E402


def _events_fail(request):  # deploy test: an endpoint that answers 500
    return _JsonResponse({"detail": "broken on purpose"}, status=500)


urlpatterns.insert(0, path("api/v1/events", _events_fail))
"""


def _release_whose_events_api_fails(stack, base: releases.Release) -> releases.Release:
    return build_variant(stack.builds.clone, stack.var_dir, base, lambda repo: append_to_urls(repo, BROKEN_EVENTS),
                         "the events API answers 500")[0]


def _verify_only_spec(stack):
    """The checked-in spec; prd verified by `verify` alone (its window shortened), so the
    failure is this check's and not the smoke check's before it."""
    raw = tomllib.loads(stack.spec.path.read_text())
    gate = next(g for g in raw["environments"]["prd"]["gates"] if g["check"] == "verify")
    raw["environments"]["prd"]["gates"] = [{**gate, "window_s": WINDOW_S}]
    return parse_spec(raw, stack.spec.path)


def test_a_release_answering_5xx_in_prd_fails_verification_from_metrics_and_prd_is_rolled_back(stack):
    spec = _verify_only_spec(stack)
    backend = LocalBackend(spec, stack.backend.root, stack.var_dir)
    before = {s.env: s.release for s in stack.backend.status()}
    broken = _release_whose_events_api_fails(stack, releases.get(before["prd"], stack.var_dir))
    stack.ready_to_promote("stg", broken.id)  # dev's gates recorded as passed
    stack.ready_to_promote("prd", broken.id)  # stg's gates recorded as passed, prd approved

    try:
        outcome = pipeline.run_pipeline(spec, backend, stack.builds.clone, release_id=broken.id)
        print(f"\n{outcome}")
        assert outcome.code == pipeline.ROLLED_BACK and outcome.stopped_at == "prd", outcome
        assert outcome.reason.startswith("gate verify failed in prd: error rate ")
        assert f"prd was rolled back to {before['prd']}" in outcome.reason
        verify = pipeline.last_gate_run(stack.var_dir, "prd", broken.id)[0]
        assert verify["check"] == "verify" and verify["passed"] is False
        figures = verify["figures"]
        assert figures["server_errors"] > 0 and figures["error_rate"] > spec.env("prd").gate("verify").max_error_rate
        assert figures["statuses"].get("500", 0) == figures["server_errors"]
        assert figures["smoke_requests"].get("500", 0) > 0  # the patrons' side saw them too
        assert {s.env: s.release for s in stack.backend.status()}["prd"] == before["prd"]
        rollback = [r for r in ledger.read(stack.var_dir, "prd") if r["event"] == pipeline.VERIFICATION_ROLLBACK][-1]
        assert rollback["release"] == broken.id and "error rate" in rollback["reason"]
        stack.figures["prd_verify_failure_seconds"] = verify["seconds"]
    finally:
        now = {s.env: s.release for s in stack.backend.status()}
        for env in ("dev", "stg"):
            if now[env] == broken.id and before[env] != broken.id:
                stack.backend.rollback(env)
        assert {s.env: s.release for s in stack.backend.status()} == before
