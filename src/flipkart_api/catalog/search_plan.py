"""From a parsed query to what each clause may match: words, typos, a prefix, categories.

A clause's exact terms are what was written (and "256gb" as "256 gb"), with its synonyms;
its fuzzy terms are the lexicon's nearest words to a word the lexicon does not hold (a
typo) and, for the word being typed, every word it starts. A clause also matches every
product of a category whose name holds its word (by stem: "mobile" is the Mobiles
category, "tv" through its synonym the Televisions category), with the sub-categories.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import lexicon
from .models import Category
from .search_bounds import at_most
from .search_syntax import Clause, Parsed, Term
from .search_words import stem, synonyms, words_of

TYPO_CHOICES = 3  # nearest lexicon words that stand for one misspelt word
MIN_PREFIX = 2  # a shorter word being typed is matched as written only
COMPLETIONS = 10  # the most used lexicon words a word being typed stands for
_NUMBER_UNIT = re.compile(r"^(\d+)([a-z]+)$")  # 256gb, 1tb, 500w


@dataclass(frozen=True)
class ClausePlan:
    """What one clause may match; the `fuzzy_` parts rank below the exact ones."""

    exact: tuple[Term, ...]
    fuzzy: tuple[Term, ...] = ()
    prefix: str | None = None
    exact_categories: frozenset[int] = frozenset()
    fuzzy_categories: frozenset[int] = frozenset()
    unknown: bool = False  # nothing in the catalog can match it (no word, category, typo)
    guessed: bool = False  # only typo corrections of its words can match it
    # At most how many products its words match as written, and with the fuzzy terms too
    # (from the lexicon's weights); None: not known (a category, a phrase of unknown words).
    most: int | None = None
    most_fuzzy: int | None = None

    @property
    def has_fuzzy(self) -> bool:
        """Whether typos, completions or a category named by them widen this clause."""
        return bool(self.fuzzy or self.fuzzy_categories)


@dataclass(frozen=True)
class SearchPlan:
    """Every clause must match; no excluded term may."""

    clauses: tuple[ClausePlan, ...]
    excluded: tuple[Term, ...] = ()

    @property
    def has_fuzzy(self) -> bool:
        """Whether any clause is widened (so the lower tiers are worth asking for)."""
        return any(clause.has_fuzzy for clause in self.clauses)

    def relaxed(self) -> SearchPlan | None:
        """The plan less one clause, for what matches all but one word (None: one clause).

        The clause dropped is the last that nothing can match, else the last that only a
        typo correction matches ("cell phone": cell, read as "well"), else the last one, as
        Meilisearch's "last" matching strategy drops words from the end.
        """
        if len(self.clauses) < 2:
            return None
        weakest = (
            [i for i, clause in enumerate(self.clauses) if clause.unknown]
            or [i for i, clause in enumerate(self.clauses) if clause.guessed]
            or [len(self.clauses) - 1]
        )
        drop = weakest[-1]
        kept = self.clauses[:drop] + self.clauses[drop + 1 :]
        return SearchPlan(kept, self.excluded)


@dataclass(frozen=True)
class CategoryWords:
    """Each category's name stems and its sub-tree, read once per search."""

    stems: dict[int, frozenset[str]]
    subtree: dict[int, frozenset[int]]
    prefixes: dict[int, tuple[str, ...]]  # the name's words, for the word being typed

    @classmethod
    def load(cls, sess: Session) -> CategoryWords:
        """Read the (small) category table; the words are worked out once per tree."""
        rows = tuple(
            (cid, parent, name) for cid, parent, name in sess.execute(_CATEGORY_ROWS).all()
        )
        return _category_words(rows)

    @classmethod
    def of(cls, rows: tuple[tuple[int, int | None, str], ...]) -> CategoryWords:
        """From (id, parent id, name) rows."""
        children: dict[int | None, list[int]] = {}
        for category_id, parent_id, _ in rows:
            children.setdefault(parent_id, []).append(category_id)

        def below(root: int) -> frozenset[int]:
            found, frontier = [root], [root]
            while frontier:
                frontier = [kid for parent in frontier for kid in children.get(parent, [])]
                found.extend(frontier)
            return frozenset(found)

        return cls(
            stems={cid: frozenset(stem(w) for w in words_of(name)) for cid, _, name in rows},
            subtree={cid: below(cid) for cid, _, _ in rows},
            prefixes={cid: tuple(words_of(name)) for cid, _, name in rows},
        )

    def named_by(self, terms: Iterable[Term]) -> frozenset[int]:
        """Categories (and their sub-trees) whose name holds every word of one of the terms."""
        found: set[int] = set()
        for term in terms:
            wanted = {stem(w) for w in term.words}
            for category_id, stems in self.stems.items():
                if wanted <= stems:
                    found |= self.subtree[category_id]
        return frozenset(found)

    def started_by(self, prefix: str) -> frozenset[int]:
        """Categories with a name word that starts with `prefix` (at least 3 letters)."""
        if len(prefix) < 3:
            return frozenset()
        found: set[int] = set()
        for category_id, words in self.prefixes.items():
            if any(w.startswith(prefix) and w != prefix for w in words):
                found |= self.subtree[category_id]
        return frozenset(found)


_CATEGORY_ROWS = select(Category.id, Category.parent_id, Category.name).order_by(Category.id)


@functools.lru_cache(maxsize=4)
def _category_words(rows: tuple[tuple[int, int | None, str], ...]) -> CategoryWords:
    """CategoryWords of this exact tree: keyed by its rows, so a changed tree is a new one."""
    return CategoryWords.of(rows)


def _exact_terms(term: Term) -> list[Term]:
    """The term, "256gb" also as "256 gb", and a single word's synonyms."""
    terms = [term]
    if term.is_word:
        word = term.words[0]
        if split := _NUMBER_UNIT.match(word):
            terms.append(Term(split.groups()))
        terms.extend(Term(other) for other in synonyms(word))
    return terms


def _joins(parsed: Parsed) -> dict[int, list[Term]]:
    """Two words next to each other as one, with its synonyms ("cell phone": cellphone, so
    phone, mobile...), by the first one's clause, as Meilisearch concatenates query words."""
    pairs = enumerate(zip(parsed.clauses, parsed.clauses[1:], strict=False))
    return {
        n: _exact_terms(Term((a.terms[0].words[0] + b.terms[0].words[0],)))
        for n, (a, b) in pairs
        if len(a.terms) == len(b.terms) == 1 and a.terms[0].is_word and b.terms[0].is_word
    }


def plan(sess: Session, parsed: Parsed, categories: CategoryWords) -> SearchPlan:
    """Look the query's words up in the lexicon and the category names."""
    written = [[t for term in c.terms for t in _exact_terms(term)] for c in parsed.clauses]
    joins = _joins(parsed)
    words = [w for terms in [*written, *joins.values()] for t in terms for w in t.words]
    held = lexicon.known(sess, words)
    for first, terms in joins.items():  # (a AND b) OR ab: ab in both clauses
        if terms[0].words[0] in held or len(terms) > 1:  # the catalog's, or with synonyms, "256 gb"
            for position in (first, first + 1):
                written[position] += [t for t in terms if t not in written[position]]
    clauses = []
    for position, clause in enumerate(parsed.clauses):
        exact = written[position]
        prefix = _typed(parsed, clause, last=position == len(parsed.clauses) - 1)
        # as written, something can match it: a known word, a phrase, a synonym
        written_known = len(exact) > 1 or any(
            not t.is_word or t.words[0] in held for t in clause.terms
        )
        fuzzy: list[Term] = []
        fuzzy_most = 0  # the products the fuzzy terms add, at most
        completions = _completions(sess, prefix) if prefix else []
        completes = bool(completions)
        for term in clause.terms:
            word = term.words[0]
            if not term.is_word or word in held:
                continue
            if word == prefix and completes:
                continue  # a word being typed that starts real words is not misspelt (yet)
            near = lexicon.neighbours(sess, word, lexicon.typo_budget(word))
            near = [n for n in near if n.distance == near[0].distance][:TYPO_CHOICES]
            near = [n for n in near if Term((n.term,)) not in exact]
            fuzzy.extend(Term((n.term,)) for n in near)
            fuzzy_most += sum(n.weight for n in near)
        # a completion with an exact term's stem matches nothing new ("speakers")
        stems = {stem(t.words[0]) for t in exact if t.is_word}
        completing = [(w, n) for w, n in completions if stem(w) not in stems]
        fuzzy.extend(Term((word,)) for word, _ in completing)
        fuzzy_most += sum(n for _, n in completing)
        exact_categories = categories.named_by(exact)
        fuzzy_categories = categories.named_by(fuzzy)
        if prefix:
            fuzzy_categories |= categories.started_by(prefix)
        most = at_most(exact, held) if not exact_categories else None
        clauses.append(
            ClausePlan(
                exact=tuple(dict.fromkeys(exact)),
                fuzzy=tuple(dict.fromkeys(fuzzy)),
                prefix=prefix,
                exact_categories=exact_categories,
                fuzzy_categories=fuzzy_categories - exact_categories,
                unknown=not (fuzzy or completes or exact_categories or fuzzy_categories)
                and not written_known,
                guessed=bool(fuzzy) and not (completes or exact_categories) and not written_known,
                most=most,
                most_fuzzy=most + fuzzy_most if most is not None and not fuzzy_categories else None,
            )
        )
    return SearchPlan(tuple(clauses), parsed.excluded)


def _completions(sess: Session, prefix: str) -> list[tuple[str, int]]:
    """The lexicon's most used words that `prefix` starts (not itself), with their weights.

    Matched as words, stemmed as the products' words were (the engines' own prefix match
    stems the prefix first: "edgy", stem "edgi", missed "Edgyphone"; it also scans every
    indexed word the prefix starts).
    """
    return [(w, n) for w, n in lexicon.starting_with(sess, prefix, COMPLETIONS + 1) if w != prefix][
        :COMPLETIONS
    ]


def _typed(parsed: Parsed, clause: Clause, *, last: bool) -> str | None:
    """The word being typed, when it is this (last) clause's and long enough to complete."""
    word = parsed.typing
    if not last or word is None or len(word) < MIN_PREFIX:
        return None
    return word if Term((word,)) in clause.terms else None
