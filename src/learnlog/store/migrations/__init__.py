"""Alembic migrations, applied programmatically by `learnlog migrate` and `learnlog serve`."""
