"""Image pipeline after an upload: resize -> thumbnail -> store, then a CDN purge as a callback."""
import hashlib

from shop.celery import app


@app.task
def resize_image(asset_id, width):
    return {"asset": asset_id, "width": width}


@app.task
def make_thumbnail(image):
    image["thumbnail"] = "%s-thumb" % image["asset"]
    return image


@app.task
def watermark(image):
    image["watermarked"] = True
    return image


@app.task
def store_asset(image):
    image["etag"] = hashlib.sha1(repr(sorted(image.items())).encode()).hexdigest()
    return image


@app.task
def purge_cdn(image):
    return {"purged": image["asset"]}
