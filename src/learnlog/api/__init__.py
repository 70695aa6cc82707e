"""The HTTP edge: app factory, routers per API family, the envelope, the one error handler."""
