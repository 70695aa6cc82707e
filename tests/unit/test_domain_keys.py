"""Key resolution and context modes (SPEC §2.1; seed sunbird-viewer-service.md "Config Modes")."""

from __future__ import annotations

import pytest

from learnlog.domain.keys import (
    SHARED,
    ContextMode,
    SummaryKey,
    enrolment_context,
    partition_of,
    resolve_key,
    shared_partition,
)
from learnlog.domain.progress import COMPLETED, NOT_STARTED
from learnlog.domain.summary import Summary, close_session, fold, new_session

pytestmark = pytest.mark.unit

DS = "default"


def key(mode: ContextMode, content: str, collection: str | None = None,
        context: str | None = None, user: str = "u1", dataset: str = DS) -> SummaryKey:
    return resolve_key(mode, dataset=dataset, user_id=user, content_id=content,
                       collection_id=collection, context_id=context)


# --- the three mode tables of SPEC §2.1, every row -----------------------------------

def test_context_mode_values_are_the_setting_names() -> None:
    assert [m.value for m in ContextMode] == ["strict", "collection", "content"]
    assert ContextMode("strict") is ContextMode.STRICT


@pytest.mark.parametrize(
    ("collection", "context", "expected_collection_key", "expected_context_key"),
    [
        ("coll", "ctx", "coll", "ctx"),        # both named
        ("coll", None, "coll", "coll"),        # context falls back to the collection
        (None, "ctx", "cnt", "ctx"),           # collection falls back to the content
        (None, None, "cnt", "cnt"),            # organic consumption
    ],
)
def test_strict_mode_collection_or_content_and_context_or_collection_or_content(
    collection: str | None, context: str | None,
    expected_collection_key: str, expected_context_key: str,
) -> None:
    k = key(ContextMode.STRICT, "cnt", collection, context)
    assert (k.collection_key, k.context_key, k.content_id) == (
        expected_collection_key, expected_context_key, "cnt")


@pytest.mark.parametrize(
    ("collection", "context", "expected_collection_key"),
    [
        ("coll", "ctx", "coll"),
        ("coll", None, "coll"),
        (None, "ctx", "cnt"),
        (None, None, "cnt"),
    ],
)
def test_collection_mode_context_key_equals_collection_key(
    collection: str | None, context: str | None, expected_collection_key: str,
) -> None:
    k = key(ContextMode.COLLECTION, "cnt", collection, context)
    assert k.collection_key == expected_collection_key
    assert k.context_key == expected_collection_key
    assert k.content_id == "cnt"


@pytest.mark.parametrize(
    ("collection", "context"),
    [("coll", "ctx"), ("coll", None), (None, "ctx"), (None, None)],
)
def test_content_mode_keys_are_the_content(collection: str | None, context: str | None) -> None:
    k = key(ContextMode.CONTENT, "cnt", collection, context)
    assert (k.collection_key, k.context_key, k.content_id) == ("cnt", "cnt", "cnt")


def test_empty_string_ids_are_values_not_missing() -> None:
    # `is None`, not truthiness: an empty id is passed through as given.
    k = key(ContextMode.STRICT, "cnt", "", "")
    assert (k.collection_key, k.context_key) == ("", "")


def test_key_carries_dataset_and_user_and_scope() -> None:
    k = key(ContextMode.STRICT, "cnt", "coll", "ctx", user="alice", dataset="ds1")
    assert k == SummaryKey("ds1", "alice", "coll", "ctx", "cnt")
    assert k.scope == ("ds1", "alice", "coll", "ctx")
    assert k != key(ContextMode.STRICT, "cnt", "coll", "ctx", user="alice", dataset="ds2")
    assert k != key(ContextMode.STRICT, "cnt", "coll", "ctx", user="bob", dataset="ds1")


def test_summary_key_is_hashable_and_ordered() -> None:
    a = SummaryKey("d", "u", "c", "x", "a")
    b = SummaryKey("d", "u", "c", "x", "b")
    assert a < b
    assert {a: 1, b: 2}[SummaryKey("d", "u", "c", "x", "a")] == 1


def test_enrolment_context_defaults_to_collection() -> None:
    assert enrolment_context("coll", None) == "coll"
    assert enrolment_context("coll", "batch-1") == "batch-1"
    assert enrolment_context("coll", "") == ""


def test_partitions() -> None:
    assert partition_of("default", "alice") == "default:user:alice"
    assert SHARED == "shared"
    assert shared_partition("ds") == "ds:shared"


# --- seed "Config Modes": Rahul, class-1-maths, batch-1 -------------------------------

RAHUL = "Rahul"
COURSE = "class-1-maths"
SDA = "single-digit-addition"
DDA = "double-digit-addition"


def rahul(mode: ContextMode, content: str, collection: str | None = None,
          context: str | None = None) -> SummaryKey:
    return key(mode, content, collection, context, user=RAHUL)


def completed(k: SummaryKey) -> Summary:
    session = close_session(new_session("s-" + k.context_key + k.content_id, k, "i1", 1000, None),
                            2000)
    return fold(k, [session])


def status_in(db: dict[SummaryKey, Summary], k: SummaryKey) -> int:
    """What a read under key `k` shows: same key → same progress; unknown → not started."""
    return db[k].status if k in db else NOT_STARTED


def test_seed_strict_mode_db_rows() -> None:
    in_batch = rahul(ContextMode.STRICT, SDA, COURSE, "batch-1")
    organic = rahul(ContextMode.STRICT, DDA)
    assert (in_batch.user_id, in_batch.collection_key, in_batch.context_key,
            in_batch.content_id) == (RAHUL, COURSE, "batch-1", SDA)
    assert (organic.user_id, organic.collection_key, organic.context_key,
            organic.content_id) == (RAHUL, DDA, DDA, DDA)


def test_seed_strict_mode_actions() -> None:
    mode = ContextMode.STRICT
    db = {k: completed(k) for k in (rahul(mode, SDA, COURSE, "batch-1"), rahul(mode, DDA))}
    # opens SDA through the course while batch-1 is active → Complete
    assert status_in(db, rahul(mode, SDA, COURSE, "batch-1")) == COMPLETED
    # opens SDA after searching for it → Not Started
    assert status_in(db, rahul(mode, SDA)) == NOT_STARTED
    # batch-1 expired, rejoined batch-2 → Not Started
    assert status_in(db, rahul(mode, SDA, COURSE, "batch-2")) == NOT_STARTED
    # opens DDA through the course in batch-1 → Not Started
    assert status_in(db, rahul(mode, DDA, COURSE, "batch-1")) == NOT_STARTED
    # opens DDA after searching for it → Complete
    assert status_in(db, rahul(mode, DDA)) == COMPLETED


def test_seed_strict_mode_inverse_organic_completion_does_not_count_in_course() -> None:
    mode = ContextMode.STRICT
    db = {rahul(mode, SDA): completed(rahul(mode, SDA))}
    assert status_in(db, rahul(mode, SDA, COURSE)) == NOT_STARTED
    assert status_in(db, rahul(mode, SDA, COURSE, "batch-1")) == NOT_STARTED


def test_seed_content_mode_db_row() -> None:
    k = rahul(ContextMode.CONTENT, SDA, COURSE, "batch-1")
    assert (k.user_id, k.collection_key, k.context_key, k.content_id) == (RAHUL, SDA, SDA, SDA)


def test_seed_content_mode_actions_all_complete() -> None:
    mode = ContextMode.CONTENT
    done = rahul(mode, SDA, COURSE, "batch-1")
    db = {done: completed(done)}
    assert status_in(db, rahul(mode, SDA, COURSE, "batch-1")) == COMPLETED
    assert status_in(db, rahul(mode, SDA)) == COMPLETED
    assert status_in(db, rahul(mode, SDA, COURSE, "batch-2")) == COMPLETED
    assert status_in(db, rahul(mode, SDA, "class-2-maths", "batch-9")) == COMPLETED
    # a different content is still a different key
    assert status_in(db, rahul(mode, DDA, COURSE, "batch-1")) == NOT_STARTED


def test_seed_collection_mode_db_row() -> None:
    k = rahul(ContextMode.COLLECTION, SDA, COURSE, "batch-1")
    assert (k.user_id, k.collection_key, k.context_key, k.content_id) == (
        RAHUL, COURSE, COURSE, SDA)


def test_seed_collection_mode_actions() -> None:
    mode = ContextMode.COLLECTION
    done = rahul(mode, SDA, COURSE, "batch-1")
    db = {done: completed(done)}
    assert status_in(db, rahul(mode, SDA, COURSE, "batch-1")) == COMPLETED
    assert status_in(db, rahul(mode, SDA)) == NOT_STARTED
    assert status_in(db, rahul(mode, SDA, COURSE, "batch-2")) == COMPLETED
    assert status_in(db, rahul(mode, SDA, "class-2-maths")) == NOT_STARTED
    assert status_in(db, rahul(mode, SDA, COURSE, "program-abc")) == COMPLETED


def test_other_learners_never_share_a_key() -> None:
    for mode in ContextMode:
        assert rahul(mode, SDA, COURSE, "batch-1") != key(mode, SDA, COURSE, "batch-1",
                                                          user="Priya")


def test_the_learner_of_a_partition() -> None:
    from learnlog.domain.keys import learner_of

    assert learner_of("d", partition_of("d", "ana")) == "ana"
    assert learner_of("d", partition_of("d", "a:user:b")) == "a:user:b"
    assert learner_of("d", "d:shared") is None
    assert learner_of("d", "d:user:") is None  # no learner named
    assert learner_of("other", partition_of("d", "ana")) is None  # another dataset's
