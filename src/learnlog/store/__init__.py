"""Persistence: tables, migrations, the batch unit of work, the writer, the cache and the outbox.

Nothing here decides a domain rule; it loads values, hands them to the service layer and
writes back what it is given.
"""
