"""Bench: celery_task_audit over a generated app of 20,000 files (targets: 20 s, 500 MB).

2,000 task modules (five tasks each, every call pattern the audit follows) and 18,000 modules
of ordinary application code (models, views, helpers that import each other and never touch a
task): the shape of the real apps the audit runs on. The audit runs in a child process of its
own, so its peak RSS is measured alone.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness.collection import REPO_ROOT

MODULES = 2000
PLAIN_MODULES = 18000
PACKAGES = 40
TARGET_SECONDS = 20.0
TARGET_RSS_MB = 500.0

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


PLAIN_MODULE = '''"""Generated application module {index}: no Celery here."""
import json
import logging

from gen.web{prev:03d}.views_{prev} import render_{prev}

log = logging.getLogger(__name__)
FIELDS = ("id", "name", "email", "created")


class Record{index}:
    kind = "record"

    def __init__(self, **values):
        self.values = {{k: values.get(k) for k in FIELDS}}

    def as_json(self):
        return json.dumps(self.values, sort_keys=True)

    def perms(self, role):
        return getattr(self, "%s_perms" % role, ())


def render_{index}(rows):
    records = [Record{index}(**row) for row in rows]
    text = "\\n".join(r.as_json() for r in records)
    log.debug("rendered %d rows", len(records))
    return render_{prev}([]) if not rows else text


def summarise_{index}(rows, key="name"):
    counts = {{}}
    for row in rows:
        counts[row.get(key)] = counts.get(row.get(key), 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
'''


def generate(root, modules=MODULES, packages=PACKAGES, plain=PLAIN_MODULES):
    """Write ``modules`` task modules spread over ``packages`` packages under ``root/gen``,
    and ``plain`` modules of ordinary code in ``root/gen/webNNN``."""
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
    for index in range(plain):
        package = os.path.join(gen, "web%03d" % (index // 100))
        if not os.path.isdir(package):
            os.makedirs(package)
            with open(os.path.join(package, "__init__.py"), "w") as handle:
                handle.write("")
        prev = max(index - 1, 0)
        with open(os.path.join(package, "views_%d.py" % index), "w") as handle:
            handle.write(PLAIN_MODULE.format(index=index, prev=prev).replace(
                "web%03d" % prev, "web%03d" % (prev // 100)))


# Run in a child: the audit, its wall and CPU time, and the peak RSS of that process alone.
CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from harness.collection import use_checkout
use_checkout()
from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import audit
started, cpu_started = time.perf_counter(), time.process_time()
result = audit([sys.argv[1]])
print(json.dumps({"elapsed": time.perf_counter() - started,
                  "cpu": time.process_time() - cpu_started,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                  "summary": result["summary"], "warnings": len(result["warnings"])}))
"""


def run():
    root = tempfile.mkdtemp(prefix="bench-audit-")
    try:
        generate(root)
        files = sum(len([f for f in names if f.endswith(".py")]) for _d, _s, names in os.walk(root))
        proc = subprocess.run([sys.executable, "-c", CHILD, root, REPO_ROOT], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if proc.returncode != 0:
        raise AssertionError(proc.stderr.decode()[-3000:])
    measured = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    expected_tasks = MODULES * 5
    if measured["summary"]["total"] != expected_tasks:
        raise AssertionError("found %d tasks, expected %d" % (measured["summary"]["total"],
                                                              expected_tasks))
    common = {"files": files, "tasks": measured["summary"]["total"],
              "need_result": measured["summary"]["need_result"]}
    return [dict(common, **{
        "name": "audit %s-file app" % format(files, ","),
        "value": round(measured["elapsed"], 3),
        "unit": "s",
        "reference": "target",
        "reference_value": TARGET_SECONDS,
        "ratio": round(measured["elapsed"] / TARGET_SECONDS, 3),
        # CPU time of the audit alone: on a busy machine the wall clock also counts waiting.
        "cpu_seconds": round(measured["cpu"], 3),
    }), dict(common, **{
        "name": "audit %s-file app, peak RSS" % format(files, ","),
        "value": round(measured["rss_mb"], 1),
        "unit": "MB",
        "reference": "target",
        "reference_value": TARGET_RSS_MB,
        "ratio": round(measured["rss_mb"] / TARGET_RSS_MB, 3),
    })]


if __name__ == "__main__":
    for row in run():
        print(row)
