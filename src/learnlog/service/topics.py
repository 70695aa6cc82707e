"""The outbox topics: the names of the work a use case queues with `uow.emit` (committed
with its batch) and `jobs/outbox.py` hands to a handler, each with its payload.

Every topic is named here once; emitters and the processor use these names, never the
string, so a topic cannot be queued under one spelling and handled under another.
"""

from __future__ import annotations

# A collection's structure changed ({"collectionId"}): its enrolments are refreshed.
STRUCTURE_CHANGED = "structure.changed"
# A course collection's structure changed ({"collectionId"}): its units are imported and
# its tracking-log statistics recomputed.
COURSE_STRUCTURE = "course.structure"
# A learner's group figures may have moved ({"userId"}): they are recomputed.
GROUP_MEMBER = "group.member"
# An export was requested ({"exportId"}): its file is written.
EXPORT_REQUESTED = "export.requested"
