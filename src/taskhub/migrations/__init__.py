"""taskhub's schema history: Alembic's `env.py`, `versions/` and `alembic.ini`, shipped inside
the package so an installed taskhub can migrate (script location `taskhub:migrations`).

From a shell: `TASKHUB_DATABASE_URL=postgresql://... alembic -c <ALEMBIC_INI> upgrade head`,
where `python -c "import taskhub.migrations as m; print(m.ALEMBIC_INI)"` prints the path.
"""

from pathlib import Path

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
"""The packaged Alembic configuration."""
SCRIPT_LOCATION = "taskhub:migrations"
"""Where Alembic finds the scripts, as a package resource (works from a wheel too)."""
