"""Background work: the outbox processor (structure changes, CSV exports; groups next)."""
