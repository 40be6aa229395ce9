"""What the web processes call. Most calls fire and forget; a few wait for a result.

Each function returns the number of task runs the call starts (the demo's ledger checks that
every one of them ran).
"""
import time

from celery import chain, chord, group
from celery.result import AsyncResult

from shop import analytics, emails, media, orders, reports, search
from shop.celery import app

READ_TIMEOUT = 10.0


class ResultNotReady(Exception):
    """A result the page waited for did not arrive in time."""


# -- fire and forget -------------------------------------------------------------------------
def place_order(order):
    """Checkout: a chain of four steps, and the confirmation e-mail as a link callback."""
    workflow = chain(
        orders.validate_order.s(order),
        orders.reserve_stock.s(),
        orders.charge_payment.s(),
        orders.confirm_order.s(),
    )
    workflow.apply_async(link=emails.send_order_confirmation.s())
    return 5


def cancel_order(order_id, amount):
    orders.cancel_order.delay(order_id, "customer request")
    orders.refund_payment.apply_async((order_id, amount), link=emails.send_receipt.si(order_id, amount))
    return 3


def upload_image(asset_id):
    chain(media.resize_image.s(asset_id, 1200), media.make_thumbnail.s(), media.watermark.s(),
          media.store_asset.s()).apply_async(link=media.purge_cdn.s())
    return 5


def page_view(session_id, user_id, path, sku):
    analytics.track_pageview.delay(session_id, path)
    analytics.track_event.delay(user_id, "view", {"sku": sku})
    analytics.update_recommendations.delay(user_id, sku)
    return 3


def product_saved(sku, category):
    search.index_product.delay(sku)
    if sku % 10 == 0:
        search.reindex_category.delay(category)
        return 2
    return 1


def product_deleted(sku):
    search.remove_from_index.delay(sku)
    return 1


def ship(order_id):
    emails.send_shipping_notice.delay(order_id, "DHL")
    return 1


def password_reset(user_id):
    emails.send_password_reset.delay(user_id)
    return 1


def newsletter(user_ids):
    group(emails.send_newsletter_chunk.s(user_ids[i:i + 50]) for i in range(0, len(user_ids), 50)).apply_async()
    return (len(user_ids) + 49) // 50


def housekeeping(hour):
    analytics.rollup_hourly.delay(hour)
    reports.nightly_cleanup.delay(30)
    return 2


# -- calls that read a result ----------------------------------------------------------------
def shipping_quote(destination, weight_kg):
    """The checkout page waits for the quote."""
    return orders.quote_shipping.delay(destination, weight_kg).get(timeout=READ_TIMEOUT)


def recommendation_score(user_id):
    return analytics.compute_score.delay(user_id).get(timeout=READ_TIMEOUT)


def sales_summary(shards):
    """The back office: a chord over the shards, its summary read and then archived."""
    summary = chord(reports.aggregate_sales.s(shard) for shard in range(shards))(reports.compile_report.s())
    report = summary.get(timeout=READ_TIMEOUT)
    reports.archive_report.delay(report)
    return report


def start_export(day):
    """The export page starts the job and keeps only its id (in the session)."""
    return reports.export_orders_csv.delay(day).id


def export_status(task_id):
    """Polled by the export page with the id from its session."""
    result = AsyncResult(task_id, app=app)
    if result.ready():
        return result.result
    return None


def wait_for_export(task_id, timeout=READ_TIMEOUT, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = export_status(task_id)
        if status is not None:
            return status
        time.sleep(interval)
    raise ResultNotReady("export %s not ready after %ss" % (task_id, timeout))
