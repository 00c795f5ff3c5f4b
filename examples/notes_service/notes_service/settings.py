"""Settings come from the environment, read when asked for (never at import time)."""

from __future__ import annotations

import os


def database_url() -> str:
    """NOTES_DATABASE_URL, e.g. postgresql+psycopg://notes:secret@localhost/notes."""
    url = os.environ.get("NOTES_DATABASE_URL")
    if not url:
        raise RuntimeError("set NOTES_DATABASE_URL")
    return url
