"""Background work: the outbox processor (structure changes today; groups and exports next)."""
