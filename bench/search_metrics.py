"""Ranking metrics for the search-quality bench: nDCG@10, recall@10, and their summary.

Pure functions over graded judgments (sku -> grade 1-3, from search_judgments.materialize)
and the SKUs a search returned, best first.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

K = 10


def _dcg(grades: Sequence[int]) -> float:
    """Discounted cumulative gain of grades in rank order (gain 2^grade - 1, log2 discount)."""
    return sum((2.0**g - 1) / math.log2(rank + 2) for rank, g in enumerate(grades[:K]))


def _unique(skus: Sequence[str]) -> list[str]:
    """The SKUs in order with repeats dropped: a product shown twice counts once."""
    return list(dict.fromkeys(skus))


def ndcg(judged: Mapping[str, int], returned: Sequence[str], k: int = K) -> float | None:
    """nDCG@k against the ideal ranking of every judged product; None when none is relevant."""
    ideal = _dcg(sorted(judged.values(), reverse=True)[:k])
    if ideal == 0:
        return None
    return _dcg([judged.get(sku, 0) for sku in _unique(returned)[:k]]) / ideal


def recall(judged: Mapping[str, int], returned: Sequence[str], k: int = K) -> float | None:
    """Share of the grade >= 2 products in the first k, of min(k, how many there are)."""
    wanted = {sku for sku, g in judged.items() if g >= 2}
    if not wanted:
        return None
    return len(wanted.intersection(_unique(returned)[:k])) / min(k, len(wanted))


def top3_exact(judged: Mapping[str, int], returned: Sequence[str]) -> bool:
    """True when a grade-3 product is among the first three returned."""
    return any(judged.get(sku) == 3 for sku in _unique(returned)[:3])


def score(
    query: Mapping[str, Any], judged: Mapping[str, int], returned: Sequence[str]
) -> dict[str, Any]:
    """One query's figures: nDCG@10, recall@10, results, and for typos the top-3 test."""
    row: dict[str, Any] = {
        "q": query["q"],
        "kind": query["kind"],
        "relevant_in_catalog": len(judged),
        "exact_in_catalog": sum(g == 3 for g in judged.values()),
        "results": len(returned),
        "ndcg": _round(ndcg(judged, returned)),
        "recall": _round(recall(judged, returned)),
    }
    if query["kind"] == "typo" and 3 in judged.values():
        row["typo_top3"] = top3_exact(judged, returned)
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _mean(values: list[float]) -> float | None:
    return _round(statistics.fmean(values)) if values else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The backend's figures from its per-query rows (failed queries count as no results)."""
    answerable = [r for r in rows if r["relevant_in_catalog"]]
    typos = [r for r in rows if "typo_top3" in r]
    kinds = sorted({r["kind"] for r in rows})
    zero = [r["q"] for r in answerable if r["results"] == 0]
    return {
        "queries": len(rows),
        "answerable": len(answerable),
        "ndcg": _mean([r["ndcg"] for r in answerable]),
        "recall": _mean([r["recall"] for r in rows if r["recall"] is not None]),
        "zero_result_rate": round(len(zero) / len(answerable), 4) if answerable else None,
        "zero_result_queries": zero,
        "typo_top3_rate": round(sum(r["typo_top3"] for r in typos) / len(typos), 4)
        if typos
        else None,
        "typo_queries": len(typos),
        "ndcg_by_kind": {
            kind: _mean([r["ndcg"] for r in answerable if r["kind"] == kind])
            for kind in kinds
            if kind != "nonsense"
        },
        "queries_by_kind": {kind: sum(r["kind"] == kind for r in rows) for kind in kinds},
        "nonsense_results": {r["q"]: r["results"] for r in rows if r["kind"] == "nonsense"},
        "failures": [
            {"q": r["q"], "status": r["status"], "error": r.get("error", "")}
            for r in rows
            if r.get("status")
        ],
    }
