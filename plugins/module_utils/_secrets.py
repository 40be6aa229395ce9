# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every secret the collection handles, and the one place that masks them.

Secrets reach us three ways: as module options (``login_password``, ``sentinel_password``),
inside URLs in Celery settings (``redis://:pw@host``, ``amqp://user:pw@host``), and as lines of a
redis.conf (``requirepass``, ``masterauth``, ``user ... >pw``). Anything that leaves a module
(messages, diffs, ``changes``, state and report files) goes through one of the functions below.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

MASK = "********"

# Module options that hold a secret; never returned, recorded or logged.
SECRET_OPTIONS = ("login_password", "sentinel_password")

# scheme://[user]:password@ - the password is everything after the first ':' of the userinfo.
# The userinfo cannot hold '/', '@' or whitespace, so the match stays inside one URL.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*:)(?P<password>[^@\s'\"/]+)(?=@)")
# redis.conf directives whose argument is a secret, and ACL rules' >password / #hash parts.
# A diff line may start with "+", "-" or a space.
_CONF_SECRET_LINE = re.compile(r"(?im)^(?P<head>[ \t+\-]*(?:requirepass|masterauth)\s+)(?P<secret>\S.*?)\s*$")
_ACL_PASSWORD = re.compile(r"(?P<head>(?:^|\s)[>#])(?P<secret>\S+)")


def mask_url_passwords(text):
    """``text`` with the password of every URL replaced by the mask (user and host stay)."""
    if not text:
        return text
    return _URL_PASSWORD.sub(lambda match: match.group("head") + MASK, text)


def mask_redis_conf(text):
    """``text`` (redis.conf content or a diff of it) with requirepass/masterauth and ACL passwords masked."""
    if not text:
        return text
    text = _CONF_SECRET_LINE.sub(lambda match: match.group("head") + MASK, text)
    lines = []
    for line in text.splitlines(True):
        if re.match(r"^[\s+\-]*user\s", line):
            line = _ACL_PASSWORD.sub(lambda match: match.group("head") + MASK, line)
        lines.append(line)
    return "".join(lines)


def mask_values(text, secrets):
    """``text`` with every non-empty value of ``secrets`` replaced by the mask."""
    if not text:
        return text
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def secret_values(params):
    """The secret option values present in a module's ``params``."""
    return [params[name] for name in SECRET_OPTIONS if params.get(name)]


def mask_all(text, params=None):
    """Every kind of mask at once: option values, URL passwords and redis.conf secrets."""
    text = mask_values(text, secret_values(params or {}))
    return mask_redis_conf(mask_url_passwords(text))


def without_secret_options(params):
    """A copy of ``params`` without the secret options (for state files and reports)."""
    return dict((key, value) for key, value in params.items() if key not in SECRET_OPTIONS)


__all__ = [
    "MASK", "SECRET_OPTIONS", "mask_url_passwords", "mask_redis_conf", "mask_values", "secret_values",
    "mask_all", "without_secret_options",
]
