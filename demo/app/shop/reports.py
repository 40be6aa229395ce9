"""Reports: sales summaries (a chord over shards) and CSV exports (polled by id from the web)."""
import random

from shop.celery import app


@app.task
def aggregate_sales(shard):
    """One shard of the sales summary (a chord header)."""
    rng = random.Random(shard)
    return {"shard": shard, "orders": rng.randint(10, 99), "revenue": round(rng.uniform(100, 999), 2)}


@app.task
def compile_report(parts):
    """The chord body: the sales summary the back office reads."""
    return {"orders": sum(p["orders"] for p in parts), "revenue": round(sum(p["revenue"] for p in parts), 2)}


@app.task(bind=True)
def export_orders_csv(self, day):
    """A CSV export; the web page polls its state by id until it is ready."""
    rows = []
    for hour in range(24):
        rows.append("%s,%02d:00,%d" % (day, hour, hour * 3))
    return {"day": day, "rows": len(rows), "url": "/exports/%s.csv" % day}


@app.task
def archive_report(report):
    return {"archived": True, "size": len(str(report))}


@app.task
def nightly_cleanup(days):
    return {"removed_days": days}
