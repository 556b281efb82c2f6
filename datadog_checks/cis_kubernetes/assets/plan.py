"""What `apply` does to each object, decided from what the organisation holds (pure: no API here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .desired import Desired

CREATE, UPDATE, UNCHANGED, CONFLICT = 'create', 'update', 'unchanged', 'conflict'


@dataclass(frozen=True)
class Existing:
    """An object of the organisation, as its kind's list endpoint shows it."""

    id: str
    name: str
    owned: bool  # made by this command (desired.owned)
    listed: dict  # the listing's JSON: the whole object, or a summary (dashboards)


@dataclass(frozen=True)
class Step:
    verb: str
    desired: Desired
    id: str | None = None
    detail: str = ''  # for an update, the fields that differ; for a conflict, why

    def line(self) -> str:
        where = f' (id {self.id})' if self.id is not None else ''
        detail = f': {self.detail}' if self.detail else ''
        return f'{self.verb:9} {self.desired.kind} "{self.desired.name}"{where}{detail}'


def contains(current, wanted) -> bool:
    """Whether `current` holds every value `wanted` sets: maps key by key (the API adds its own keys and defaults),
    lists item by item, anything else equal."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(k in current and _holds(k, current[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (
            isinstance(current, list)
            and len(current) == len(wanted)
            and all(contains(c, w) for c, w in zip(current, wanted, strict=True))
        )
    return current == wanted and isinstance(current, bool) == isinstance(wanted, bool)  # 1 is not True


def _holds(key: str, current, wanted) -> bool:
    if key == 'tags' and isinstance(current, list) and isinstance(wanted, list):  # a set, whatever order it comes in
        return sorted(map(str, current)) == sorted(map(str, wanted))
    return contains(current, wanted)


def differing_fields(current: dict, wanted: dict) -> list[str]:
    return [key for key, value in wanted.items() if not _holds(key, current.get(key), value)]


def step_for(desired: Desired, existing: list[Existing], full: Callable[[Existing], dict]) -> Step:
    """Create, update in place, leave alone, or refuse: an object of the same name that this command did not make
    is someone else's, and is never changed (nor a second one made beside it)."""
    same_name = [e for e in existing if e.name == desired.name]
    ours = [e for e in same_name if e.owned]
    others = [e for e in same_name if not e.owned]
    if others:
        ids = ', '.join(e.id for e in others)
        return Step(
            CONFLICT,
            desired,
            others[0].id,
            f'the organisation holds a {desired.kind} of this name that this command did not create (id {ids}); it '
            'is left alone: rename or delete it, then run again',
        )
    if len(ours) > 1:
        ids = ', '.join(e.id for e in ours)
        return Step(CONFLICT, desired, ours[0].id, f'several made by this command (ids {ids}): delete all but one')
    if not ours:
        return Step(CREATE, desired)
    (mine,) = ours
    fields = differing_fields(full(mine), desired.body)
    if not fields:
        return Step(UNCHANGED, desired, mine.id)
    return Step(UPDATE, desired, mine.id, ', '.join(fields))
