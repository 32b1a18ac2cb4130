"""The judged query set on both backends, as .ci/run's quick check of search quality.

bench/search_quality.py's evaluate() over 2,000 demo products (every judged query): the
targets of bench/results/search-quality-*.md must hold (nDCG@10 >= 0.85, zero results for
<= 1% of the queries with a relevant product, typo top-3 >= 90%), and no query may fail.
"""

from __future__ import annotations

import operator

import pytest
from bench import search_quality

QUICK_PRODUCTS = 2000
OPS = {">=": operator.ge, "<=": operator.le}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_judged_queries_meet_the_targets(backend: str) -> None:
    figures = search_quality.evaluate(backend, QUICK_PRODUCTS)
    assert figures["failures"] == []
    missed = [
        (name, value, op, bound, why)
        for name, value, op, bound, why in search_quality.targets(figures)
        if not OPS[op](value, bound)
    ]
    assert missed == [], missed
