"""What to ask instead when a query finds nothing: it respelt, or shortened from the end."""

from __future__ import annotations

from sqlalchemy.orm import Session

from . import lexicon
from .search_syntax import Parsed, Term, parse


def respelt(sess: Session, q: str) -> str | None:
    """`q` with each word the lexicon lacks replaced by its nearest word, one edit further
    than searching forgives (for "did you mean"); None when there is nothing to respell."""
    parsed = parse(q)
    single = [t.words[0] for c in parsed.clauses for t in c.terms if t.is_word]
    held = lexicon.known(sess, single)
    changed = False
    clauses = []
    for clause in parsed.clauses:
        options = []
        for term in clause.terms:
            word = term.words[0]
            if term.is_word and word not in held:
                # one edit more than search forgives, from 6 letters ("labtob": laptop)
                budget = lexicon.typo_budget(word) + (len(word) >= 6)
                if near := lexicon.neighbours(sess, word, budget):
                    word, changed = near[0].term, True
                options.append(word)
            else:
                options.append(_written(term))
        clauses.append(" or ".join(options))
    if not changed:
        return None
    return _query(clauses, parsed)


def shortened(q: str) -> list[str]:
    """`q` less its last clause, then less the last two, ... down to its first clause."""
    parsed = parse(q)
    written = [" or ".join(_written(t) for t in clause.terms) for clause in parsed.clauses]
    return [_query(written[:n], parsed) for n in range(len(written) - 1, 0, -1)]


def _query(clauses: list[str], parsed: Parsed) -> str:
    return " ".join(clauses + [f"-{_written(t)}" for t in parsed.excluded])


def _written(term: Term) -> str:
    """A term as it would be typed: a word, or a phrase in quotes."""
    if term.is_word:
        return term.words[0]
    return term.hyphenated or '"' + " ".join(term.words) + '"'
