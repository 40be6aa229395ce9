"""The demo shop: a Celery app of the usual shape (orders, e-mail, reports, media, analytics, search)."""
