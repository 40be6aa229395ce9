"""Search index maintenance, triggered after writes."""
from shop.celery import app


@app.task
def index_product(sku):
    return {"indexed": sku}


@app.task
def remove_from_index(sku):
    return {"removed": sku}


@app.task
def reindex_category(category):
    return {"category": category}
