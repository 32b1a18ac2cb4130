"""URL routing: the id converter every `<int:...>` uses, and route patterns for the fast path.

The cache front (cache_front.py) answers some GETs before Flask. It must accept exactly the
paths the route does, so its pattern is built here from the route's own rule and the app's
converters: rename the route, change its prefix or the id's range, and the fast path follows.
"""

from __future__ import annotations

import re

from flask import Flask
from werkzeug.routing import BaseConverter, Map

from .schemas import MAX_ID


def _up_to(limit: int) -> str:
    """A regex for the decimal numbers 1..limit written without leading zeros."""
    digits = str(limit)
    options = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"]  # every shorter number
    for i, digit in enumerate(digits):
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):  # same prefix, a smaller digit here, anything after
            rest = len(digits) - i - 1
            options.append(f"{digits[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


ID_PATTERN = _up_to(MAX_ID)


class IdConverter(BaseConverter):
    """`<int:...>` for BIGINT ids: 1..2^63-1, so an impossible id is a routing 404.

    The range lives in the regex, not in to_python: werkzeug turns a to_python rejection
    into a 405 when another method's rule shares the path (DELETE /products/0 said 405).
    """

    regex = ID_PATTERN
    part_isolating = True

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map)

    def to_python(self, value: str) -> int:
        """The id as an int (the regex already bounds it)."""
        return int(value)

    def to_url(self, value: int) -> str:
        """The id as it appears in a URL."""
        return str(int(value))


# <converter:name> in a rule; converters that take arguments are not used on fast paths.
_PLACEHOLDER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def route_template(url_map: Map, endpoint: str) -> str:
    """The rule string of `endpoint`'s one GET rule (raises LookupError if not exactly one)."""
    rules = [r for r in url_map.iter_rules(endpoint) if r.methods is None or "GET" in r.methods]
    if len(rules) != 1:
        raise LookupError(f"{endpoint}: expected one GET rule, found {len(rules)}")
    return rules[0].rule


def path_pattern(url_map: Map, endpoint: str) -> re.Pattern[str]:
    """A regex matching exactly the paths `endpoint`'s GET rule routes, one group per variable.

    Built from the rule string and the map's converters (their `regex`), so it cannot drift
    from what Flask routes. Raises LookupError when the endpoint has no single GET rule.
    """
    rule = route_template(url_map, endpoint)
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(rule):
        parts.append(re.escape(rule[position : match.start()]))
        converter = url_map.converters[match["converter"] or "default"]
        parts.append(f"(?P<{match['name']}>{converter.regex})")
        position = match.end()
    parts.append(re.escape(rule[position:]))
    return re.compile("".join(parts) + r"\Z")


def init_app(app: Flask) -> None:
    """Install the id converter for every `<int:...>` in the app's routes."""
    app.url_map.converters["int"] = IdConverter
