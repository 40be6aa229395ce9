"""Outgoing e-mail. Nobody reads these results."""
from shop.celery import app


def _render(template, context):
    return "%s: %s" % (template, ", ".join("%s=%s" % pair for pair in sorted(context.items())))


@app.task
def send_order_confirmation(order):
    return {"to": order.get("email"), "body": _render("order_confirmation", {"order": order["order_id"]})}


@app.task
def send_shipping_notice(order_id, carrier):
    return {"order": order_id, "body": _render("shipping", {"carrier": carrier})}


@app.task
def send_password_reset(user_id):
    return {"user": user_id, "body": _render("password_reset", {"user": user_id})}


@app.task
def send_receipt(order_id, amount):
    return {"order": order_id, "body": _render("receipt", {"amount": amount})}


@app.task
def send_newsletter_chunk(user_ids):
    return {"sent": len(user_ids)}
