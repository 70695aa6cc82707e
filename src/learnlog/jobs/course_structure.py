"""The outbox handler for a course collection's new structure (SPEC §6 "Course
structure"): its units become the course's units for the tracking-log statistics, which
are then recomputed from the events already ingested. Delivered at least once: a second
delivery stores the same units and recomputes the same figures."""

from __future__ import annotations

from typing import Any

from ..service.course_units import ImportCollectionUnits
from .context import Jobs


def course_structure(jobs: Jobs, dataset: str, payload: Any) -> None:
    course = jobs.writer.run_sync(ImportCollectionUnits(dataset, str(payload["collectionId"])))
    if course is not None and jobs.recompute is not None:
        jobs.recompute(dataset, [course])
