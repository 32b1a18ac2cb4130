"""The search-quality report in Markdown: targets, figures per backend and kind, worst queries."""

from __future__ import annotations

from typing import Any

SHOWN = 3  # results of a worst query named in the table (the JSON has all ten)
SHARE = "{:.1%}"


def _num(value: float | None, style: str = "{:.3f}") -> str:
    return "-" if value is None else style.format(value)


def _cell(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _came_back(row: dict[str, Any]) -> str:
    if row.get("status"):
        return f"HTTP {row['status']}"
    if not row["top"]:
        return "nothing"
    shown = "; ".join(f"{sku} {name}" for sku, name in row["top"][:SHOWN])
    more = len(row["top"]) - SHOWN
    return _cell(shown + (f"; +{more} more" if more > 0 else ""))


def _wanted(row: dict[str, Any]) -> str:
    sku, name, grade = row["wanted_example"]
    return _cell(f"{sku} {name} (grade {grade}; {row['relevant_in_catalog']} judged)")


def _worst(name: str, b: dict[str, Any]) -> list[str]:
    return [
        "",
        f"### {name}: the {len(b['worst'])} lowest nDCG@10",
        "",
        "| query | kind | nDCG@10 | recall@10 | came back (first results) | wanted, e.g. |",
        "|---|---|---|---|---|---|",
        *(
            f"| `{_cell(r['q'])}` | {r['kind']} | {_num(r['ndcg'])} | {_num(r['recall'])} "
            f"| {_came_back(r)} | {_wanted(r)} |"
            for r in b["worst"]
        ),
    ]


def _failures(backends: dict[str, Any]) -> list[str]:
    """Every non-200 answer (it counts as no results), when there is one."""
    failed = [(n, f) for n, b in backends.items() for f in b["failures"]]
    if not failed:
        return []
    return [
        "",
        "Failed queries (non-200; counted as no results):",
        "",
        *(f"- {n}: `{_cell(f['q'])}` HTTP {f['status']}: {_cell(f['error'])}" for n, f in failed),
    ]


def markdown(figures: dict[str, Any], targets: list[tuple[dict[str, Any], str]]) -> list[str]:
    """The whole report; `targets` are report._target rows with their missed-by text."""
    backends: dict[str, Any] = figures["backends"]
    names = list(backends)
    head = " | ".join(names)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(figures["queries_by_kind"].items()))

    def row(label: str, key: str, style: str = "{:.3f}") -> str:
        return f"| {label} | " + " | ".join(_num(backends[n][key], style) for n in names) + " |"

    nonsense = sorted(backends[names[0]]["nonsense_results"])
    return [
        f"# Search quality ({figures['mode']}, {figures['products']:,} products, "
        f"{figures['queries']} judged queries, revision {figures['revision']}, "
        f"{figures['cpus']} CPUs, {figures['wall_s']:.0f} s)",
        "",
        "`GET /api/v1/products?q=...&limit=10` through Flask's test client, graded against "
        "bench/search_judgments.json (rules over the generator's brand, category and name "
        "words; 3 exact, 2 close, 1 related). nDCG@10: gain 2^grade - 1, ideal from every "
        "judged product in the catalog. Recall@10: grade >= 2 products in the first 10, of "
        f"min(10, how many). Queries by kind: {kinds}.",
        "",
        "| target | measured | bound | met | missed by, and why |",
        "|---|---|---|---|---|",
        *(
            f"| {r['target']} | {r['value']} | {r['bound']} | {'yes' if r['met'] else '**no**'} "
            f"| {_cell(why)} |"
            for r, why in targets
        ),
        "",
        "## Per backend",
        "",
        f"| measure | {head} |",
        "|---|" + "---|" * len(names),
        row("nDCG@10 (queries with a relevant product)", "ndcg"),
        row("recall@10 (queries with grade >= 2 products)", "recall"),
        row("zero results (queries with a relevant product)", "zero_result_rate", SHARE),
        row("queries with a relevant product at nDCG@10 0", "ndcg_zero", "{:d}"),
        row("typo queries: grade 3 in the top 3", "typo_top3_rate", SHARE),
        "| failed queries (non-200) | "
        + " | ".join(str(len(backends[n]["failures"])) for n in names)
        + " |",
        row("median ms per query (in process)", "median_ms", "{:.1f}"),
        *_failures(backends),
        "",
        "## nDCG@10 by kind",
        "",
        f"| kind | queries | {head} |",
        "|---|---|" + "---|" * len(names),
        *(
            f"| {kind} | {figures['queries_by_kind'][kind]} | "
            + " | ".join(_num(backends[n]["ndcg_by_kind"].get(kind)) for n in names)
            + " |"
            for kind in sorted(backends[names[0]]["ndcg_by_kind"])
        ),
        "",
        "## Nonsense queries: results returned (nothing is relevant)",
        "",
        f"| query | {head} |",
        "|---|" + "---|" * len(names),
        *(
            f"| `{_cell(q)}` | "
            + " | ".join(str(backends[n]["nonsense_results"][q]) for n in names)
            + " |"
            for q in nonsense
        ),
        "",
        "## The worst queries",
        *(line for n in names for line in _worst(n, backends[n])),
    ]
