"""Order pipeline: each step passes the order to the next one in the message (a chain)."""
import random

from shop.celery import app


@app.task
def validate_order(order):
    order["valid"] = bool(order["items"])
    return order


@app.task
def reserve_stock(order):
    order["reserved"] = [item["sku"] for item in order["items"]]
    return order


@app.task
def charge_payment(order):
    order["charged"] = round(sum(item["price"] * item["qty"] for item in order["items"]), 2)
    return order


@app.task
def confirm_order(order):
    order["status"] = "confirmed"
    return order


@app.task
def cancel_order(order_id, reason):
    return {"order_id": order_id, "status": "cancelled", "reason": reason}


@app.task
def refund_payment(order_id, amount):
    return {"order_id": order_id, "refunded": amount}


@app.task
def quote_shipping(destination, weight_kg):
    """Read by the checkout page (shop.api.shipping_quote) while the customer waits."""
    base = 4.9 if destination in ("DE", "AT", "NL") else 12.5
    return round(base + 1.1 * weight_kg + random.random(), 2)
