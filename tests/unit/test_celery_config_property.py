"""Property: any generated config module rewrites to one that parses, holds the targets,
keeps every other binding, keeps BOM and newline style, and is a fixed point."""
from hypothesis import given, settings, strategies as st

from ansible_collections.celery_ops.lean_results.plugins.module_utils._celery_config import (
    plan_rewrite,
    same_value,
    written_name,
)

TARGETS = {
    "task_ignore_result": st.booleans(),
    "task_store_errors_even_if_ignored": st.booleans(),
    "result_extended": st.booleans(),
    "result_expires": st.one_of(st.integers(0, 10 ** 6), st.none()),
}
OTHER_SETTINGS = ["broker_url", "worker_concurrency", "task_serializer", "timezone"]
PLAIN_NAMES = ["FOO", "BAR_BAZ", "Limit"]
TASKS = ["t.a", "t.b", "t.c"]

literals = st.recursive(
    st.one_of(st.booleans(), st.none(), st.integers(-10 ** 9, 10 ** 9),
              st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text("abc", max_size=3), inner, max_size=3)),
    max_leaves=6,
)


def layout(name, text, form):
    """One statement binding ``name`` to the source ``text``, in one of several shapes."""
    if form == "comment":
        return ["%s = %s  # keep: %s" % (name, text, name)]
    if form == "parens":
        return ["%s = (" % name, "    %s  # inside" % text, ")"]
    if form == "backslash":
        return ["%s = \\" % name, "    %s" % text]
    if form == "annotated":
        return ["%s: object = %s" % (name, text)]
    if form == "branches":
        return ["if len('ab') == 2:", "    %s = %s" % (name, text), "else:", "    %s = %s" % (name, text)]
    return ["%s = %s" % (name, text)]


@st.composite
def config_modules(draw):
    style = draw(st.sampled_from(["celery", "django", "legacy"]))
    marker = {"django": ["INSTALLED_APPS = ['x']"], "legacy": ["CELERYD_CONCURRENCY = 2"], "celery": []}
    lines = list(marker[style]) if draw(st.booleans()) else []
    asked_style = style if not lines and style != "celery" else draw(st.sampled_from(["auto", style]))
    names = [written_name(s, style, "CELERY") for s in list(TARGETS) + OTHER_SETTINGS] + PLAIN_NAMES
    for _statement in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["bind", "bind", "bind", "comment", "blank", "pair", "multiline"]))
        if kind == "comment":
            lines.append("# " + draw(st.text("abc é\t#", max_size=10)))
        elif kind == "blank":
            lines.append(draw(st.sampled_from(["", "   "])))
        elif kind == "pair":
            first, second = draw(st.sampled_from(names)), draw(st.sampled_from(names))
            lines.append("%s = %r; %s = %r" % (first, draw(literals), second, draw(literals)))
        elif kind == "multiline":
            values = draw(st.lists(st.integers(0, 99), min_size=1, max_size=3))
            lines += ["%s = [" % draw(st.sampled_from(names))] + ["    %d," % v for v in values] + ["]"]
        else:
            form = draw(st.sampled_from(["plain", "comment", "parens", "backslash", "annotated", "branches"]))
            lines += layout(draw(st.sampled_from(names)), repr(draw(literals)), form)
    if draw(st.booleans()):
        annotations = draw(st.dictionaries(st.sampled_from(TASKS), st.dictionaries(
            st.sampled_from(["rate_limit", "ignore_result", "acks_late"]), st.booleans(), max_size=2), max_size=2))
        lines.append("%s = %r" % (written_name("task_annotations", style, "CELERY"), annotations))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines)
    if lines and draw(st.booleans()):
        text += newline
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    wanted = draw(st.dictionaries(st.sampled_from(sorted(TARGETS)), st.just(None), max_size=4))
    wanted = dict((key, draw(TARGETS[key])) for key in wanted)
    overrides = draw(st.dictionaries(st.sampled_from(TASKS), st.fixed_dictionaries(
        {"ignore_result": st.booleans()}), max_size=2))
    return style, asked_style, data, wanted, overrides


def bindings(data):
    namespace = {}
    exec(compile(data.decode("utf-8-sig"), "<config>", "exec"), namespace)
    namespace.pop("__builtins__", None)
    return namespace


@settings(max_examples=2000, deadline=None)
@given(config_modules())
def test_rewrite_properties(case):
    style, asked_style, data, wanted, overrides = case
    plan = plan_rewrite(data, wanted, overrides, style=asked_style)
    new = plan.new_bytes
    assert plan.style == style

    before, after = bindings(data), bindings(new)
    annotations = written_name("task_annotations", style, "CELERY")
    asked = set(written_name(s, style, "CELERY") for s in wanted) | ({annotations} if overrides else set())
    for setting, value in wanted.items():
        assert same_value(after[written_name(setting, style, "CELERY")], value)
    for task, options in overrides.items():
        assert after[annotations][task]["ignore_result"] is options["ignore_result"]
    if overrides and annotations in before:
        for task, options in before[annotations].items():
            for option, value in options.items():
                if task not in overrides or option != "ignore_result":
                    assert after[annotations][task][option] == value
    assert set(after) - asked == set(before) - asked
    for name in set(before) - asked:
        assert same_value(after[name], before[name]), name

    assert new.startswith(b"\xef\xbb\xbf") == data.startswith(b"\xef\xbb\xbf")
    if b"\r\n" in data:
        assert b"\n" not in new.replace(b"\r\n", b"")
    elif data:
        assert b"\r" not in new
    assert (new == data) == (not plan.changes)
    assert plan_rewrite(new, wanted, overrides, style=asked_style).new_bytes == new


@st.composite
def class_configs(draw):
    style = draw(st.sampled_from(["celery", "legacy"]))
    names = [written_name(s, style, "CELERY") for s in list(TARGETS) + OTHER_SETTINGS] + PLAIN_NAMES
    body = ['"""Config object."""']
    for _statement in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["bind", "bind", "comment", "blank", "multiline"]))
        if kind == "comment":
            body.append("# " + draw(st.text("abc é", max_size=8)))
        elif kind == "blank":
            body.append("")
        elif kind == "multiline":
            body += ["%s = {" % draw(st.sampled_from(names)), "  'k': 1,", "}"]
        else:
            form = draw(st.sampled_from(["plain", "comment", "parens", "backslash", "annotated", "branches"]))
            body += layout(draw(st.sampled_from(names)), repr(draw(literals)), form)
    lines = ["FOO = 1", "class Config:"] + ["    " + line if line else "" for line in body] + ["", "BAR_BAZ = 2"]
    return style, lines


@st.composite
def update_calls(draw):
    style = draw(st.sampled_from(["celery", "legacy"]))
    names = [written_name(s, style, "CELERY") for s in list(TARGETS) + OTHER_SETTINGS]
    lines = ["app = make_app()"]
    for _call in range(draw(st.integers(1, 2))):
        chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=4))
        if draw(st.booleans()):
            lines.append("app.conf.update(%s)" % ", ".join("%s=%r" % (n, draw(literals)) for n in chosen))
            continue
        lines.append("app.conf.update(")
        for index, name in enumerate(chosen):
            comma = "," if index < len(chosen) - 1 or draw(st.booleans()) else ""
            value = repr(draw(literals))
            shape = draw(st.sampled_from(["plain", "comment", "parens"]))
            if shape == "parens":
                lines += ["    %s=(" % name, "        %s" % value, "    )%s" % comma]
            else:
                lines.append("    %s=%s%s%s" % (name, value, comma, "  # note" if shape == "comment" else ""))
        lines.append(")")
    return style, lines


class _Conf(object):
    def update(self, **kwargs):
        self.__dict__.update(kwargs)


class _App(object):
    def __init__(self):
        self.conf = _Conf()


@st.composite
def object_configs(draw):
    kind = draw(st.sampled_from(["class", "call"]))
    style, lines = draw(class_configs() if kind == "class" else update_calls())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    data = (newline.join(lines) + newline).encode("utf-8")
    wanted = draw(st.dictionaries(st.sampled_from(sorted(TARGETS)), st.just(None), max_size=4))
    wanted = dict((key, draw(TARGETS[key])) for key in wanted)
    overrides = draw(st.dictionaries(st.sampled_from(TASKS), st.fixed_dictionaries(
        {"ignore_result": st.booleans()}), max_size=2))
    return kind, style, data, wanted, overrides


def object_bindings(kind, data):
    namespace = {"make_app": _App}
    exec(compile(data.decode("utf-8"), "<config>", "exec"), namespace)
    holder = namespace["Config"] if kind == "class" else namespace["app"].conf
    values = dict((k, v) for k, v in vars(holder).items() if not k.startswith("__"))
    module = dict((k, v) for k, v in namespace.items() if k in ("FOO", "BAR_BAZ"))
    return values, module


@settings(max_examples=2000, deadline=None)
@given(object_configs())
def test_rewrite_properties_class_and_update_call(case):
    kind, style, data, wanted, overrides = case
    chosen = "Config" if kind == "class" else None
    plan = plan_rewrite(data, wanted, overrides, style=style, object_name=chosen)
    new = plan.new_bytes
    assert plan.target == ("Config" if kind == "class" else "app.conf.update")
    (before, module_before), (after, module_after) = object_bindings(kind, data), object_bindings(kind, new)
    assert module_before == module_after
    annotations = written_name("task_annotations", style, "CELERY")
    asked = set(written_name(s, style, "CELERY") for s in wanted) | ({annotations} if overrides else set())
    for setting, value in wanted.items():
        assert same_value(after[written_name(setting, style, "CELERY")], value)
    for task, options in overrides.items():
        assert after[annotations][task]["ignore_result"] is options["ignore_result"]
    assert set(after) - asked == set(before) - asked
    for name in set(before) - asked:
        assert same_value(after[name], before[name]), name
    if b"\r\n" in data:
        assert b"\n" not in new.replace(b"\r\n", b"")
    assert (new == data) == (not plan.changes)
    assert plan_rewrite(new, wanted, overrides, style=style, object_name=chosen).new_bytes == new
