"""Background work: the outbox processor and its handlers (group figures, collection and
course structure changes, CSV exports)."""
