"""How many products a search may find, from the lexicon's weights, and so which tiers
PostgreSQL is better told to walk than left to guess (relevance.windowed).

The weights are upper bounds: a word's weight counts the texts holding it, a stem's the
texts of its words added up, and a clause matches at most what its terms do together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .search_syntax import Term

if TYPE_CHECKING:
    from .search_plan import SearchPlan

# A tier that may hold more matches than this is walked by id, not gathered from the text
# index: a gathered match cost about 7 walked rows at 1,000,000 products (6.4 µs, 0.85 µs),
# so beyond a tenth of the 20,000-id window (relevance.WINDOW) walking is the cheaper bet.
WALK_ABOVE = 2000


def at_most(terms: list[Term], held: dict[str, int]) -> int | None:
    """At most how many products hold one of the terms (a phrase: its rarest known word;
    None for a phrase of no known word, as the lexicon may not hold every word it has).

    held: the lexicon's words among the terms', with their weights (lexicon.known).
    """
    total = 0
    for term in terms:
        if term.is_word:
            total += held.get(term.words[0], 0)  # not in the lexicon: in no product
        elif known := [held[w] for w in term.words if w in held]:
            total += min(known)
        else:
            return None
    return total


def most(plan: SearchPlan, fuzzy: bool) -> int | None:
    """At most how many products match every clause (the fewest any clause matches)."""
    bounds = [c.most_fuzzy if fuzzy else c.most for c in plan.clauses]
    known = [bound for bound in bounds if bound is not None]
    return min(known) if known else None


def combines_words(plan: SearchPlan) -> bool:
    """Whether its words must meet: several clauses, or a phrase (PostgreSQL's planner
    multiplies their frequencies, as if they never went together)."""
    return len(plan.clauses) > 1 or any(
        not term.is_word for clause in plan.clauses for term in clause.exact
    )


def walked_tiers(plan: SearchPlan, relaxed: SearchPlan | None) -> frozenset[int]:
    """The tiers PostgreSQL would guess too small: their newest page is found by walking.

    A tier whose condition ANDs several text matches (several clauses, a phrase; tier 1
    with its body hint, tier 0 with "not tier 1") is estimated as if its words never went
    together: 203 rows for "mixer grinder" where 14,266 match at 1,000,000 products, and
    taking it for rare, the planner read all 14,266 for the 21 newest (78 ms). When the
    lexicon says the tier may hold more than WALK_ABOVE products, its newest page is found
    by walking the newest ids instead (relevance.windowed): at most WINDOW rows, 17 ms when
    none match, about a millisecond when many do. A single word is estimated as it is.
    """
    several = combines_words(plan)
    tiers = {3: (plan, False, several), 2: (plan, True, several), 1: (plan, plan.has_fuzzy, True)}
    if relaxed is not None:
        tiers[0] = (relaxed, relaxed.has_fuzzy, True)
    walked = set()
    for tier, (planned, fuzzy, combined) in tiers.items():
        bound = most(planned, fuzzy)
        if combined and bound is not None and bound > WALK_ABOVE:
            walked.add(tier)
    return frozenset(walked)
