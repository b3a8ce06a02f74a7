"""Spec refusals, as the spec tests check them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wtx.spec import SpecError, load_spec


def refused(write_spec: Callable[[dict[str, Any]], Path], data: dict[str, Any]) -> str:
    """The message `load_spec` refuses `data` with (written by the `write_spec` fixture); the
    message must name the file, so an operator knows which spec to fix."""
    path = write_spec(data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message, "the error names the file"
    return message
