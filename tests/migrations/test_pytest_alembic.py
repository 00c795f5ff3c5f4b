"""pytest-alembic's built-in tests: one head, base->head upgrade, up/down consistency at every
revision, and the models matching the migrated DDL (autogenerate finds no difference)."""

from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]
