"""The Celery app of the shop. Broker, result backend and every setting come from shop.celeryconfig."""
import os

from celery import Celery
from celery.signals import task_postrun

app = Celery("shop", include=[
    "shop.orders",
    "shop.emails",
    "shop.reports",
    "shop.media",
    "shop.analytics",
    "shop.search",
])
app.config_from_object("shop.celeryconfig")

# The demo counts every task that ran in a separate "ledger" Redis (never the result backend),
# so that "tasks lost" is a number and not a guess.
_LEDGER_URL = os.environ.get("SHOP_LEDGER_URL")
_LEDGER = {}


@task_postrun.connect
def _count_done(sender=None, state=None, **_kwargs):
    if not _LEDGER_URL:
        return
    if "client" not in _LEDGER:
        import redis
        _LEDGER["client"] = redis.Redis.from_url(_LEDGER_URL)
    _LEDGER["client"].hincrby("ledger", "done" if state == "SUCCESS" else "done_" + str(state).lower(), 1)
