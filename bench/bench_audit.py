"""Bench: celery_task_audit over a generated app of 2,000 modules (target: under 10 s)."""
import os
import shutil
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

# The collection on sys.path under its Ansible name.
import tests.conftest  # noqa: E402,F401 pylint: disable=unused-import,wrong-import-position

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import audit  # noqa: E402

MODULES = 2000
PACKAGES = 40
TARGET_SECONDS = 10.0

TASK_MODULE = '''"""Generated tasks module {index}."""
import logging

from celery import chain, group, shared_task

from gen.app import app

log = logging.getLogger(__name__)


@app.task(bind=True, acks_late=True, max_retries=3)
def fetch_{index}(self, url):
    self.update_state(state="PROGRESS", meta={{"url": url}})
    return url


@app.task(queue="low")
def parse_{index}(body):
    return body.split()


@shared_task(ignore_result=True)
def store_{index}(items):
    return len(items)


@app.task
def notify_{index}(count):
    log.info("stored %s", count)


@app.task(name="gen.custom.report_{index}")
def report_{index}(count):
    return count


def pipeline_{index}(url):
    flow = chain(fetch_{index}.s(url), parse_{index}.s(), store_{index}.s())
    flow.apply_async(link=notify_{index}.s())
    results = [report_{index}.delay(i) for i in range(3)]
    if {index} % 7 == 0:
        return [r.get(timeout=10) for r in results]
    return None


def fan_out_{index}(urls):
    job = group(parse_{index}.s(u) for u in urls).apply_async()
    totals = {{}}
    for position, url in enumerate(urls):
        totals[url] = position
    return sorted(totals)


class Helper{index}:
    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)
        return self

    def run(self):
        pending = store_{index}.delay(self.items)
        log.debug("sent %s", pending)
        return len(self.items)
'''


def generate(root, modules=MODULES, packages=PACKAGES):
    """Write ``modules`` task modules spread over ``packages`` packages under ``root/gen``."""
    gen = os.path.join(root, "gen")
    os.makedirs(gen)
    with open(os.path.join(gen, "__init__.py"), "w") as handle:
        handle.write("")
    with open(os.path.join(gen, "app.py"), "w") as handle:
        handle.write("from celery import Celery\n\napp = Celery('gen')\n")
    per_package = modules // packages
    for index in range(modules):
        package = os.path.join(gen, "pkg%02d" % (index // per_package))
        if not os.path.isdir(package):
            os.makedirs(package)
            with open(os.path.join(package, "__init__.py"), "w") as handle:
                handle.write("")
        with open(os.path.join(package, "tasks_%04d.py" % index), "w") as handle:
            handle.write(TASK_MODULE.format(index=index))


def run():
    root = tempfile.mkdtemp(prefix="bench-audit-")
    try:
        generate(root)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = audit([root])
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    expected_tasks = MODULES * 5
    if result["summary"]["total"] != expected_tasks:
        raise AssertionError("found %d tasks, expected %d" % (result["summary"]["total"], expected_tasks))
    return [{
        "name": "audit 2,000-module app",
        "value": round(elapsed, 3),
        "unit": "s",
        "reference": "target",
        "reference_value": TARGET_SECONDS,
        "ratio": round(elapsed / TARGET_SECONDS, 3),
        # CPU time of the audit alone: on a busy machine the wall clock also counts waiting.
        "cpu_seconds": round(cpu, 3),
        "tasks": result["summary"]["total"],
        "need_result": result["summary"]["need_result"],
    }]


if __name__ == "__main__":
    for row in run():
        print(row)
