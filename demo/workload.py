"""The demo workload: web-like producers calling the shop at a steady rate.

    python -m demo.workload supervise --rate 60 --ledger redis://... --pidfile PATH

The supervisor runs two producer processes, one firing and forgetting (chains, link callbacks,
groups, plain calls), one waiting for results (``.get()``, a chord, polling by id), in the
proportion of ``--read-share``. Like a web server on deploy, SIGHUP starts a new generation of
producers (which import the shop's config afresh) and lets the old one finish what it is doing;
SIGTERM stops everything.

Every call is counted in a separate "ledger" Redis (never the result backend): calls, task runs
expected, reads ok / failed / hung. The shop's workers count the task runs done there too.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import time

import redis

LEDGER_KEY = "ledger"
READ_TIMEOUT = 10.0

# Calls per 100 of each kind; the shares inside each producer.
FIRE_MIX = [
    ("page_view", 40), ("place_order", 15), ("product_saved", 10), ("upload_image", 8), ("ship", 8),
    ("cancel_order", 3), ("password_reset", 3), ("product_deleted", 2), ("housekeeping", 1), ("newsletter", 1),
]
READ_MIX = [("shipping_quote", 40), ("recommendation_score", 30), ("export", 20), ("sales_summary", 10)]


class Ledger:
    """Counters batched in memory, flushed to the ledger Redis about once a second."""

    def __init__(self, url):
        self.client = redis.Redis.from_url(url)
        self.pending = {}
        self.flushed_at = time.monotonic()

    def add(self, field, amount=1):
        self.pending[field] = self.pending.get(field, 0) + amount
        if time.monotonic() - self.flushed_at > 1.0:
            self.flush()

    def flush(self):
        if self.pending:
            pipe = self.client.pipeline(transaction=False)
            for field, amount in self.pending.items():
                pipe.hincrby(LEDGER_KEY, field, amount)
            pipe.execute()
            self.pending = {}
        self.flushed_at = time.monotonic()


def read_ledger(client):
    """The ledger as a dict of ints (missing fields are 0)."""
    raw = client.hgetall(LEDGER_KEY)
    counts = {key.decode(): int(value) for key, value in raw.items()}
    for field in ("calls", "expected", "reads", "reads_ok", "reads_failed", "reads_hung", "done"):
        counts.setdefault(field, 0)
    return counts


# -- producers ---------------------------------------------------------------------------------
def _fire(api, name, rng, n):
    if name == "page_view":
        return api.page_view("s%d" % rng.randint(1, 5000), rng.randint(1, 20000), "/p/%d" % rng.randint(1, 900),
                             rng.randint(1, 900))
    if name == "place_order":
        items = [{"sku": rng.randint(1, 900), "qty": rng.randint(1, 3), "price": round(rng.uniform(2, 80), 2)}
                 for _item in range(rng.randint(1, 4))]
        return api.place_order({"order_id": n, "email": "c%d@example.com" % n, "items": items})
    if name == "product_saved":
        return api.product_saved(rng.randint(1, 900), "cat-%d" % rng.randint(1, 30))
    if name == "upload_image":
        return api.upload_image("img-%d" % n)
    if name == "ship":
        return api.ship(n)
    if name == "cancel_order":
        return api.cancel_order(n, round(rng.uniform(5, 90), 2))
    if name == "password_reset":
        return api.password_reset(rng.randint(1, 20000))
    if name == "product_deleted":
        return api.product_deleted(rng.randint(1, 900))
    if name == "housekeeping":
        return api.housekeeping(n % 24)
    if name == "newsletter":
        return api.newsletter(list(range(rng.randint(50, 200))))
    raise ValueError(name)


def _read(api, name, rng):
    """One call that waits for a result; returns the task runs it started."""
    if name == "shipping_quote":
        api.shipping_quote(rng.choice(["DE", "FR", "US", "NL"]), rng.uniform(0.2, 9))
        return 1
    if name == "recommendation_score":
        api.recommendation_score(rng.randint(1, 20000))
        return 1
    if name == "export":
        api.wait_for_export(api.start_export("2026-11-%02d" % rng.randint(1, 28)), timeout=READ_TIMEOUT)
        return 1
    if name == "sales_summary":
        api.sales_summary(4)
        return 6  # four shards, the summary, the archive
    raise ValueError(name)


def _is_timeout(exc):
    from celery.exceptions import TimeoutError as CeleryTimeout
    return isinstance(exc, CeleryTimeout) or type(exc).__name__ in ("ResultNotReady", "TimeoutError")


def produce(kind, rate, ledger_url, seed):
    """Call the shop ``rate`` times a second until SIGTERM, then finish the call at hand and exit."""
    from shop import api  # the app as configured now: a new generation sees a rewritten config

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_args: stopping.append(True))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    ledger = Ledger(ledger_url)
    rng = random.Random(seed)
    mix = FIRE_MIX if kind == "fire" else READ_MIX
    names = [name for name, _weight in mix]
    weights = [weight for _name, weight in mix]
    interval = 1.0 / rate
    next_at = time.monotonic()
    n = seed * 10 ** 7
    while not stopping:
        now = time.monotonic()
        if now < next_at:
            time.sleep(min(next_at - now, 0.2))
            continue
        next_at = max(next_at + interval, now - 1.0)  # steady: catch up at most a second of lag
        n += 1
        name = rng.choices(names, weights)[0]
        ledger.add("calls")
        if kind == "fire":
            ledger.add("expected", _fire(api, name, rng, n))
            continue
        ledger.add("reads")
        try:
            runs = _read(api, name, rng)
        except Exception as exc:  # counted, never fatal: the point is to see whether reads break
            ledger.add("reads_hung" if _is_timeout(exc) else "reads_failed")
            ledger.add("read_error:%s:%s" % (name, type(exc).__name__))
            runs = 1 if name != "sales_summary" else 6
        else:
            ledger.add("reads_ok")
        ledger.add("expected", runs)
    ledger.flush()


# -- supervisor --------------------------------------------------------------------------------
class Supervisor:
    """Producer processes, replaced by a new generation on SIGHUP."""

    def __init__(self, rate, read_share, ledger_url):
        self.rates = {"fire": rate * (1.0 - read_share), "read": rate * read_share}
        self.ledger_url = ledger_url
        self.generation = 0
        self.producers = []

    def spawn(self):
        self.generation += 1
        started = []
        for index, (kind, rate) in enumerate(sorted(self.rates.items())):
            if rate <= 0:
                continue
            seed = self.generation * 10 + index
            argv = [sys.executable, "-m", "demo.workload", "produce", "--kind", kind, "--rate", repr(rate),
                    "--ledger", self.ledger_url, "--seed", str(seed)]
            started.append(subprocess.Popen(argv))
        return started

    def reload(self):
        old, self.producers = self.producers, self.spawn()
        redis.Redis.from_url(self.ledger_url).hincrby(LEDGER_KEY, "reloads", 1)
        self.stop(old)

    @staticmethod
    def stop(processes, timeout=20.0):
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def run(self):
        events = []
        signal.signal(signal.SIGHUP, lambda *_args: events.append("reload"))
        signal.signal(signal.SIGTERM, lambda *_args: events.append("stop"))
        signal.signal(signal.SIGINT, lambda *_args: events.append("stop"))
        self.producers = self.spawn()
        try:
            while "stop" not in events:
                if events:
                    events.remove("reload")
                    self.reload()
                for process in self.producers:
                    if process.poll() is not None:
                        raise SystemExit("producer %d exited with %s" % (process.pid, process.returncode))
                time.sleep(0.1)
        finally:
            self.stop(self.producers)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m demo.workload", description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    supervise = sub.add_parser("supervise")
    supervise.add_argument("--rate", type=float, default=60.0, help="calls per second, all producers")
    supervise.add_argument("--read-share", type=float, default=0.05, help="share of calls that read a result")
    supervise.add_argument("--ledger", required=True)
    supervise.add_argument("--pidfile")
    producer = sub.add_parser("produce")
    producer.add_argument("--kind", choices=["fire", "read"], required=True)
    producer.add_argument("--rate", type=float, required=True)
    producer.add_argument("--ledger", required=True)
    producer.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "produce":
        produce(args.kind, args.rate, args.ledger, args.seed)
        return 0
    if args.pidfile:
        with open(args.pidfile, "w") as handle:
            handle.write("%d\n" % os.getpid())
    Supervisor(args.rate, args.read_share, args.ledger).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
