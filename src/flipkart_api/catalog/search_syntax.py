"""What a search query asks for: web-search syntax read into clauses, on both backends.

`samsung "galaxy s24" -refurbished puma or adidas` reads as: every clause must match
(samsung; the phrase galaxy s24; puma or adidas), and nothing that has the excluded word
(refurbished). Words are split as the index splits them (search_words.py), so a hyphen or
an apostrophe inside a word (`wh-ch520`, `levi's`) joins its parts into a phrase, and
punctuation never turns into a substring match. A word that is a stop word is dropped, as
PostgreSQL's to_tsquery drops it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .search_words import STOPWORDS, normalise, words_of

MAX_CLAUSES = 8  # bounds the work one `q` can ask for
MAX_OPTIONS = 4  # alternatives joined with `or` in one clause
# A quoted phrase (the closing quote may be missing), or a run of anything but space/quote.
_TOKENS = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class Term:
    """One thing a clause can match: a word, or a phrase (words next to each other)."""

    words: tuple[str, ...]
    # The hyphenated word it was written as ("18-55"), for engines that split those
    # themselves (PostgreSQL indexes "18-55" as 18 and -55); "" otherwise.
    hyphenated: str = ""

    @property
    def is_word(self) -> bool:
        """A single word (which typos and prefixes may stand for)."""
        return len(self.words) == 1


@dataclass(frozen=True)
class Clause:
    """A part of the query that must match: any of its terms will do."""

    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Parsed:
    """A query: clauses that must all match, terms that must not, and the word being typed."""

    clauses: tuple[Clause, ...]
    excluded: tuple[Term, ...]
    # The query's last word when it stands alone (not quoted, not excluded): it may be
    # incomplete, so it also matches as a prefix.
    typing: str | None

    @property
    def empty(self) -> bool:
        """Nothing to look for (only stop words, punctuation or exclusions)."""
        return not self.clauses


_HYPHENATED = re.compile(r"^\w+(?:-\w+)+$")


def _term(text: str) -> Term | None:
    """A word or phrase of what was written; None if it is only stop words.

    A phrase keeps its stop words ("whispers of the river"): PostgreSQL counts them as gaps,
    FTS5 matches them.
    """
    words = tuple(words_of(text))
    if not any(w not in STOPWORDS for w in words):
        return None
    written = normalise(text)
    hyphenated = written if len(words) > 1 and _HYPHENATED.match(written) else ""
    return Term(words, hyphenated)


def parse(q: str) -> Parsed:
    """Read `q`: phrases in quotes, -exclusions, `or` between alternatives, plain words."""
    clauses: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False  # the previous token was `or`
    typing: str | None = None
    for match in _TOKENS.finditer(q):
        negated, phrase, bare = match.group(1), match.group(2), match.group(3)
        text = phrase if phrase is not None else bare
        if phrase is None and text.startswith("-") and len(text) > 1:
            negated, text = "-", text[1:]
        if phrase is None and not negated and text.lower() == "or":
            join_next = bool(clauses)
            continue
        term = _term(text)
        typing = term.words[0] if term and term.is_word and phrase is None and not negated else None
        if term is None:
            continue
        if negated:
            excluded.append(term)
        elif join_next and len(clauses[-1]) < MAX_OPTIONS:
            clauses[-1].append(term)
        elif len(clauses) < MAX_CLAUSES:
            clauses.append([term])
        join_next = False
    return Parsed(
        clauses=tuple(Clause(tuple(dict.fromkeys(terms))) for terms in clauses),
        excluded=tuple(dict.fromkeys(excluded))[:MAX_CLAUSES],
        typing=typing,
    )
