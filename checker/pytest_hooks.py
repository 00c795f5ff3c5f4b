"""The hooks the checker's pytest plugin calls; implement them in a `conftest.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sqlalchemy import URL


@pytest.hookspec
def pytest_checker_prepare_template(config: pytest.Config, url: URL) -> None:
    """Prepare the template database at `url` (its owner's URL) before it is migrated: run
    SQL, create what the migrations take for granted (schemas, functions, extensions).
    Called once per session (under pytest-xdist with a shared server: once, in the
    controller), after the `checker_extensions` are created; every test database is a clone
    of the result (objects are cloned; `ALTER DATABASE ... SET` settings are not)."""
