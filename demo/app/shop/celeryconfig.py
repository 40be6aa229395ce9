"""Celery settings of the shop, as a project usually starts out: results kept for a day."""
import os

broker_url = os.environ.get("SHOP_REDIS_URL", "redis://127.0.0.1:6380/0")
result_backend = broker_url

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"

broker_connection_retry_on_startup = True
worker_prefetch_multiplier = 4

# Results are kept for a day (Celery's default), for every task.
result_expires = 86400
