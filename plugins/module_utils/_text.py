# -*- coding: utf-8 -*-
# Copyright: celery_ops.lean_results contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one bytes-to-text helper of the Redis-facing module_utils.

redis-py returns bytes unless ``decode_responses`` is set, and the connection helpers leave it
unset (key names are bytes and may not be UTF-8). What reaches a result or a message is text.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


def as_text(value):
    """``value`` as str when it is bytes (undecodable bytes replaced); anything else unchanged.

    None stays None and numbers stay numbers, so a missing INFO field is still told apart.
    """
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


__all__ = ["as_text"]
