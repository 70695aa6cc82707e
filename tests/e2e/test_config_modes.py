"""The "Config Modes" tables of seeds/sunbird-viewer-service.md, one test per row, over HTTP.

Each mode runs in its own real server process. Every test uses its own learner, acts out
the table's setup ("Rahul completes … ") and then opens the content as the row says; the
row's "Progress" column is what view/read answers: Complete = status 2 and progress 100,
Not Started = status 0 and progress 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Api, ServerProcess

MATHS, MATHS_2 = "class-1-maths", "class-2-maths"
SINGLE, DOUBLE = "single-digit-addition", "double-digit-addition"
_ids = itertools.count()


def _server(mode: str, tmp: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(f"sqlite:///{tmp / f'{mode}.db'}",
                           {"LEARNLOG_CONTEXT_MODE": mode}, tmp)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    for server in _server("strict", tmp_path_factory.mktemp("strict")):
        yield server.api()


@pytest.fixture(scope="module")
def content_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    for server in _server("content", tmp_path_factory.mktemp("content")):
        yield server.api()


@pytest.fixture(scope="module")
def collection_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    for server in _server("collection", tmp_path_factory.mktemp("collection")):
        yield server.api()


def rahul() -> str:
    return f"rahul-{next(_ids)}"


def complete(api: Api, user: str, content: str, collection: str | None = None,
             context: str | None = None) -> None:
    api.start(user, content, collection, context)
    api.end(user, content, collection, context)


def assert_complete(api: Api, user: str, content: str, collection: str | None = None,
                    context: str | None = None) -> None:
    row = api.one(user, content, collection, context)
    assert (row["status"], row["progress"]) == (2, 100), row


def assert_not_started(api: Api, user: str, content: str, collection: str | None = None,
                       context: str | None = None) -> None:
    row = api.one(user, content, collection, context)
    assert (row["status"], row["progress"]) == (0, 0), row


# --- Strict Context Mode ---------------------------------------------------------------
# Setup: Rahul completes single-digit-addition in batch-1 of class-1-maths, and
# double-digit-addition organically.

def strict_setup(api: Api) -> str:
    user = rahul()
    complete(api, user, SINGLE, MATHS, "batch-1")
    complete(api, user, DOUBLE)
    return user


def test_strict_single_in_course_batch_1_is_complete(strict: Api) -> None:
    assert_complete(strict, strict_setup(strict), SINGLE, MATHS, "batch-1")


def test_strict_single_found_by_search_is_not_started(strict: Api) -> None:
    assert_not_started(strict, strict_setup(strict), SINGLE)


def test_strict_single_in_batch_2_is_not_started(strict: Api) -> None:
    assert_not_started(strict, strict_setup(strict), SINGLE, MATHS, "batch-2")


def test_strict_inverse_organic_completion_does_not_count_in_course(strict: Api) -> None:
    user = rahul()
    complete(strict, user, SINGLE)
    assert_not_started(strict, user, SINGLE, MATHS, "batch-1")


def test_strict_double_in_course_batch_1_is_not_started(strict: Api) -> None:
    assert_not_started(strict, strict_setup(strict), DOUBLE, MATHS, "batch-1")


def test_strict_double_found_by_search_is_complete(strict: Api) -> None:
    assert_complete(strict, strict_setup(strict), DOUBLE)


# --- Content Mode ----------------------------------------------------------------------
# Setup: Rahul completes single-digit-addition in batch-1 of class-1-maths.

def content_setup(api: Api) -> str:
    user = rahul()
    complete(api, user, SINGLE, MATHS, "batch-1")
    return user


def test_content_single_in_course_batch_1_is_complete(content_mode: Api) -> None:
    assert_complete(content_mode, content_setup(content_mode), SINGLE, MATHS, "batch-1")


def test_content_single_found_by_search_is_complete(content_mode: Api) -> None:
    assert_complete(content_mode, content_setup(content_mode), SINGLE)


def test_content_single_in_batch_2_is_complete(content_mode: Api) -> None:
    assert_complete(content_mode, content_setup(content_mode), SINGLE, MATHS, "batch-2")


def test_content_single_in_another_collection_is_complete(content_mode: Api) -> None:
    assert_complete(content_mode, content_setup(content_mode), SINGLE, MATHS_2, "batch-1")


# --- Collection Mode -------------------------------------------------------------------
# Setup: Rahul completes single-digit-addition in batch-1 of class-1-maths.

def collection_setup(api: Api) -> str:
    user = rahul()
    complete(api, user, SINGLE, MATHS, "batch-1")
    return user


def test_collection_single_in_course_batch_1_is_complete(collection_mode: Api) -> None:
    api = collection_mode
    assert_complete(api, collection_setup(api), SINGLE, MATHS, "batch-1")


def test_collection_single_found_by_search_is_not_started(collection_mode: Api) -> None:
    api = collection_mode
    assert_not_started(api, collection_setup(api), SINGLE)


def test_collection_single_in_batch_2_is_complete(collection_mode: Api) -> None:
    api = collection_mode
    assert_complete(api, collection_setup(api), SINGLE, MATHS, "batch-2")


def test_collection_single_in_another_collection_is_not_started(
        collection_mode: Api) -> None:
    api = collection_mode
    assert_not_started(api, collection_setup(api), SINGLE, MATHS_2, "batch-1")


def test_collection_single_in_a_program_context_is_complete(collection_mode: Api) -> None:
    api = collection_mode
    assert_complete(api, collection_setup(api), SINGLE, MATHS, "program-abc")
