"""A course's units for the tracking-log statistics (SPEC §6): stored from an Open edX
Blocks API document (`learnlog logs structure`) or from a registered collection whose id
is the course's (SPEC §2.5), whichever came last. Units the newer structure lacks become
inactive: their statistics rows stay, and the stats API stops serving them.

Nothing here runs the analytics engines; `analytics.ingest` recomputes the statistics.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ..domain.tracking import Unit, course_id, is_course, places, units_of_tree
from ..store.schema import course_units
from ..store.sqlkit import chunks
from ..store.uow import BatchUnitOfWork
from .commands import Command
from .ports import ServiceContext
from .topics import COURSE_STRUCTURE, STRUCTURE_CHANGED


def store_units(conn: Connection, dataset: str, course: str, units: Sequence[Unit]
                ) -> tuple[int, int]:
    """Make `units` the course's units, in this order; held units they lack become
    inactive. Returns (units stored, units made inactive)."""
    now = int(time.time() * 1000)
    held = {r.unit_id for r in conn.execute(select(course_units.c.unit_id).where(
        course_units.c.dataset == dataset, course_units.c.course_id == course))}
    fresh = {u.unit_id for u in units}
    gone = sorted(held - fresh)
    conn.execute(delete(course_units).where(
        course_units.c.dataset == dataset, course_units.c.course_id == course,
        course_units.c.unit_id.in_(sorted(fresh & held))))
    if units:
        conn.execute(insert(course_units), [
            {"dataset": dataset, "course_id": course, "unit_id": u.unit_id,
             "chapter": u.chapter, "sequential": u.sequential, "position": u.position,
             "ordinal": i, "name": u.name, "active": True, "updated_at": now}
            for i, u in enumerate(units)])
    for part in chunks(gone, 500):
        conn.execute(course_units.update().where(
            course_units.c.dataset == dataset, course_units.c.course_id == course,
            course_units.c.unit_id.in_(list(part))).values(active=False, updated_at=now))
    return len(units), len(gone)


def places_of(conn: Connection, dataset: str, courses: Sequence[str]
              ) -> list[dict[str, str]]:
    """Per course, how the places its log names become unit ids (`domain.tracking.places`
    of its stored units, active or not)."""
    held: dict[str, list[tuple[Unit, bool]]] = {}
    for part in chunks(list(courses), 500):
        for r in conn.execute(select(course_units).where(
                course_units.c.dataset == dataset, course_units.c.course_id.in_(list(part))
        ).order_by(course_units.c.ordinal)):
            held.setdefault(r.course_id, []).append(
                (Unit(r.unit_id, r.chapter, r.sequential, r.position, r.name), r.active))
    return [{"course_id": course, "place": place, "unit_id": unit}
            for course, units in held.items() for place, unit in places(units).items()]


def structure_changed(uow: BatchUnitOfWork, dataset: str, collection_id: str,
                      once: bool = False) -> None:
    """Queue what follows a collection's new structure: its enrolments' refresh and, for
    a course collection, the import of its units."""
    payload = {"collectionId": collection_id}
    uow.emit(dataset, STRUCTURE_CHANGED, payload, once=once)
    if is_course(collection_id):
        uow.emit(dataset, COURSE_STRUCTURE, payload, once=once)


@dataclass(frozen=True, slots=True)
class ImportCollectionUnits(Command):
    """Store the units of a course collection's current structure (outbox, writer
    command). Returns the course id, or None when the collection is gone or not a
    course."""

    dataset: str
    collection_id: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> Any:
        record = uow.enrolments.collection(self.dataset, self.collection_id)
        course = course_id(self.collection_id)
        if record is None or course is None or not is_course(self.collection_id):
            return None
        store_units(uow.conn, self.dataset, course, units_of_tree(record.structure.children))
        return course
