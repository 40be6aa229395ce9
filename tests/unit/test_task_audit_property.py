"""Property: a read injected through any path the audit claims to follow is never lost.

A generated app whose tasks are all queued and never read must come out all "can ignore";
the same app with one read of one task's result, reached through a random path (a helper, an
alias, a container, an id round trip, a canvas form, a class attribute, a chain of helpers),
must mark that task ``needs_result: true``.
"""
import os
import tempfile
import textwrap

from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.celery_ops.lean_results.plugins.module_utils._task_audit import audit

APP = 'from celery import Celery\n\napp = Celery("gen", broker="memory://")\n'

# Each path: module-level code and the body of ``run()``; {t} is the task read, {o} another.
PATHS = {
    "helper": ("def helper(task, *args):\n    return task.s(*args).apply_async()\n",
               "helper({t}, 1).get(timeout=5)"),
    "helper_chain": ("def inner(task):\n    return task.delay()\n\n\n"
                     "def outer(task):\n    return inner(task)\n",
                     "outer({t}).get(timeout=5)"),
    "bound_alias": ("send = {t}.delay\n", "send(1).get(timeout=5)"),
    "partial": ("from functools import partial\n\nsend = partial({t}.apply_async, queue='q')\n",
                "send((1,)).ready()"),
    "list": ("JOBS = [{o}, {t}]\n", "for job in JOBS:\n        job.delay().get()"),
    "dict_of_functions": ("def start():\n    return {t}.delay()\n\n\nHANDLERS = {{'x': start}}\n",
                          "HANDLERS['x']().state"),
    "id_round_trip": ("from celery.result import AsyncResult\n\n\n"
                      "def status(task_id):\n    return AsyncResult(task_id).state\n",
                      "status({t}.delay().id)"),
    "stored_id": ("from celery.result import AsyncResult\n\nSTORE = {{}}\n\n\n"
                  "def later(key):\n    return AsyncResult(key).get()\n",
                  "STORE['k'] = {t}.delay().id"),
    "chain_last": ("from celery import chain\n",
                   "chain({o}.s(1), {t}.s()).delay().get()"),
    "chain_list_chord": ("from celery import chain, group\n",
                         "chain([group({t}.s(1), {t}.s(2)), {o}.si()]).delay()"),
    "pipe_chord": ("from celery import group\n", "(group({t}.s(1)) | {o}.si()).delay()"),
    "class_attribute": ("class Service:\n    job = {t}\n\n    def go(self):\n"
                        "        return self.job.delay()\n",
                        "Service().go().get()"),
    "tuple_return": ("def submit():\n    return {o}.delay(), {t}.delay()\n",
                     "_first, second = submit()\n    second.get()"),
    "send_task": ("from gen.celery import app\n",
                  "app.send_task('gen.tasks.{tn}').get()"),
    "escape": ("import somewhere\n", "somewhere.keep({t}.delay())"),
}


def write_app(root, names, path=None, target=None, other=None):
    package = os.path.join(root, "gen")
    os.makedirs(package)
    files = {"__init__.py": "", "celery.py": APP}
    files["tasks.py"] = "from gen.celery import app\n" + "".join(
        "\n\n@app.task\ndef %s(x=None):\n    return x\n" % n for n in names)
    queue_all = "\n    ".join("%s.delay(1)" % n for n in names)
    module_code, body = "", "pass"
    if path is not None:
        module_code, body = PATHS[path]
        module_code = module_code.format(t=target, o=other, tn=target)
        body = body.format(t=target, o=other, tn=target)
    files["caller.py"] = "from gen.tasks import %s\n%s\n\n\ndef run():\n    %s\n    %s\n" % (
        ", ".join(names), module_code, queue_all, body)
    for name, text in files.items():
        with open(os.path.join(package, name), "w") as handle:
            handle.write(text)
    return root


names_strategy = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "omega"]),
                          min_size=2, max_size=4, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=names_strategy, path=st.sampled_from(sorted(PATHS)), data=st.data())
def test_injected_read_is_never_lost(names, path, data):
    target = data.draw(st.sampled_from(names), label="target")
    other = data.draw(st.sampled_from([n for n in names if n != target]), label="other")
    with tempfile.TemporaryDirectory() as clean, tempfile.TemporaryDirectory() as dirty:
        baseline = audit([write_app(clean, names)])
        assert [t["name"] for t in baseline["tasks"] if t["needs_result"]] == []
        result = audit([write_app(dirty, names, path, target, other)])
        needs = {t["name"]: t["needs_result"] for t in result["tasks"]}
        assert needs["gen.tasks." + target] is True, (path, textwrap.shorten(str(result), 400))


def test_every_path_is_drawn_and_read(tmp_path):
    """Each path on its own, so none is left to chance."""
    for index, path in enumerate(sorted(PATHS)):
        root = str(tmp_path / str(index))
        result = audit([write_app(root, ["alpha", "beta", "gamma"], path, "beta", "gamma")])
        needs = {t["name"]: t["needs_result"] for t in result["tasks"]}
        assert needs["gen.tasks.beta"] is True, path
        assert needs["gen.tasks.alpha"] is False, path
