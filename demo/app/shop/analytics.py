"""Tracking and recommendations. Everything here is fire-and-forget except the scores."""
import hashlib

from shop.celery import app


@app.task
def track_event(user_id, name, props):
    return {"user": user_id, "event": name, "props": len(props)}


@app.task
def track_pageview(session_id, path):
    return {"session": session_id, "path": path}


@app.task
def update_recommendations(user_id, sku):
    return {"user": user_id, "seen": sku}


@app.task
def compute_score(user_id):
    """Read by the product page (shop.api.recommendation_score) to order the carousel."""
    digest = hashlib.md5(str(user_id).encode()).hexdigest()
    return int(digest[:4], 16) / 65535.0


@app.task
def rollup_hourly(hour):
    return {"hour": hour}
