"""Accessibility audits in the e2e suite: axe-core (vendored in tests/e2e/vendor/axe-core,
no network at test time) run in the page against the WCAG 2.0/2.1 A and AA rules, and
screenshots of a page at phone and desktop size. Frames are not entered: a page shown in a
frame (an email's HTML preview) is audited as a page of its own.

axe is added to every document of a browser context as an init script (Playwright's, which
the pages' Content-Security-Policy does not apply to), so each audit is one `axe.run` call."""

from __future__ import annotations

import struct
from pathlib import Path

AXE_SCRIPT = Path(__file__).resolve().parents[1] / "e2e" / "vendor" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

# One audit is given AUDIT_SECONDS; a page it cannot finish in that time fails the test.
AUDIT_SECONDS = 20
_RUN = """async ([tags, seconds]) => {
  const late = new Promise((_, reject) => setTimeout(() => reject(new Error(`axe did not finish in ${seconds} s`)), seconds * 1000));
  const result = await Promise.race([axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations'], iframes: false}), late]);
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5),
  }));
}"""


def add_axe(context) -> None:  # noqa: ANN001
    """Make axe available in every page the context opens from now on."""
    if not AXE_SCRIPT.is_file():
        raise AssertionError(f"{AXE_SCRIPT} is missing: see tests/e2e/vendor/axe-core/README.md")
    context.add_init_script(path=str(AXE_SCRIPT))


def audit(page, label: str) -> list[str]:  # noqa: ANN001
    """The WCAG A/AA violations on the page as it is now, one line each
    (page, rule id, impact, target selectors)."""
    page.wait_for_load_state("load")
    found = page.evaluate(_RUN, [WCAG_TAGS, AUDIT_SECONDS])
    return [f"{label} ({page.url}): {v['id']} [{v['impact']}] {v['help']} at {' | '.join(v['targets'])}" for v in found]


def audit_at_sizes(page, name: str, problems: list[str]) -> list[Path]:  # noqa: ANN001
    """At each size (phone, desktop): audit the page into `problems` and save its viewport as
    var/screenshots/<name>-<size>.png. The page is left at the size it had."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    paths = []
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        problems.extend(audit(page, f"{name} at {size} size"))
        path = SCREENSHOTS / f"{name}-{size}.png"
        page.screenshot(path=str(path))
        paths.append(path)
    if before:
        page.set_viewport_size(before)
    return paths


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG file's header; AssertionError if it is not a PNG."""
    head = path.read_bytes()[:24]
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return width, height
