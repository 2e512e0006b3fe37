"""Evaluation step, data split: which labelled dev examples may tune the checker, which are locked away.

The rule is fixed here, in code, before any choice about the checker was made (issue 15), so that
the locked part measures the checker on data no feature, weight, regularisation strength or
threshold was chosen on:

- examples are grouped by their context (SHA-256 of the text): answers to the same source stay
  on one side, as near-duplicates would otherwise leak from tuning into the locked figures;
- within each slice (``source_dataset``) the groups are ordered by SHA-256 of ``SEED`` and the
  group key, and taken in that order into the locked part until it holds at least half of the
  slice's examples; the rest is the tuning part.

Nothing random and nothing read from ``meta`` (provenance only): the same file always splits the
same way, on any machine. Tuning and locked groups never overlap (``tests/test_checker_split.py``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

SEED = "persona-agent/issue-15/2026-11-29"
LOCKED_SHARE = 0.5  # share of each slice's examples held out


def group_key(row: Mapping[str, Any]) -> str:
    """Grouping key of a labelled row: SHA-256 of its context (a list of passages is joined)."""
    context = row["context"]
    text = context if isinstance(context, str) else "\n\n".join(context)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rank(group: str) -> str:
    return hashlib.sha256(f"{SEED}\x00{group}".encode()).hexdigest()


def split_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``{id: "tuning" | "locked"}`` for every row (rows need ``id``, ``context``, ``source_dataset``).

    Raises ValueError on a duplicate id (the split would be ambiguous).
    """
    ids = [str(r["id"]) for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"duplicate example id {dup!r}: ids must be unique to split the data")
    by_slice: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_slice[str(r.get("source_dataset") or "all")][group_key(r)].append(str(r["id"]))
    part: dict[str, str] = {}
    for groups in by_slice.values():
        total = sum(len(v) for v in groups.values())
        locked = 0
        for g in sorted(groups, key=_rank):
            side = "locked" if locked < LOCKED_SHARE * total else "tuning"
            if side == "locked":
                locked += len(groups[g])
            for i in groups[g]:
                part[i] = side
    return part
