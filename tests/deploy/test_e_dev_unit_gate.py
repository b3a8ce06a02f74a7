"""dev's `unit` gate as checked in passes a good release as installed in dev, on the unit tests
that see what differs inside the gate: the release tests (tests/unit/wtx/test_wtx_release.py)
build releases with the gate's interpreter — the release as installed, then the project's test
tools.

They failed there and only there while an installed release carried the interpreter's bundled
pip and setuptools ahead of the locked ones (wtx.backends.local.install); this runs them the
way the pipeline does. The gate's other thresholds are the checked-in ones; its paths are
narrowed to those tests because the whole unit suite, the same code, is `make unit`'s layer
(running it a second time here cost two minutes of every `make test`), and the drill proves the
gate stops a release a unit test catches (test_e_drill.py).
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pytest

from wtx import pipeline
from wtx.backends.local import LocalBackend
from wtx.spec import parse_spec

pytestmark = pytest.mark.slow


RELEASE_TESTS = "tests/unit/wtx/test_wtx_release.py"


def test_devs_checked_in_unit_gate_passes_the_release_tests_of_a_good_release_inside_the_gate(stack):
    raw = tomllib.loads(stack.spec.path.read_text())
    dev = raw["environments"]["dev"]
    checked_in = next(g for g in dev["gates"] if g["check"] == "unit")
    assert checked_in["paths"] == ["tests/unit"], "the pipeline's gate runs the whole unit suite"
    # The unit gate alone, its thresholds untouched, on the release tests.
    dev["gates"] = [{**checked_in, "paths": [RELEASE_TESTS]}]
    spec = parse_spec(raw, stack.spec.path)
    backend = LocalBackend(spec, stack.backend.root, stack.var_dir)
    base = stack.builds.ids["base"]
    if backend.active_release("dev") != base:
        backend.deploy("dev", base)

    started = time.monotonic()
    run = pipeline.run_gates(spec, backend, stack.builds.clone, "dev", base)
    seconds = round(time.monotonic() - started, 1)
    stack.figures["dev_unit_gate_release_tests_seconds"] = seconds

    unit = run.results[0]
    print(f"\ndev unit gate: {unit.summary} ({seconds} s)")
    assert run.passed, unit.summary
    assert unit.figures["failed"] == 0
    # the release tests ran inside the gate and passed there
    report = Path(stack.var_dir) / "gates" / "dev" / base / run.run / "unit.xml"
    cases = ElementTree.parse(report).getroot().iter("testcase")  # noqa: S314 - our own pytest's report
    release_tests = [c for c in cases if c.get("classname", "").endswith("test_wtx_release")]
    assert len(release_tests) >= 10
    assert all(c.find("failure") is None and c.find("error") is None and c.find("skipped") is None
               for c in release_tests)
