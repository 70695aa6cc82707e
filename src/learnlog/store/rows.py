"""Mapping between table rows and domain values. One function each way, nothing else."""

from __future__ import annotations

from typing import Any

import orjson

from ..domain.assessment import Attempt, ItemResponse
from ..domain.certificates import Template
from ..domain.collection import EnrolmentProgress, Node, Structure
from ..domain.enrolment import CollectionRecord, Enrolment, IssuedCertificate
from ..domain.keys import SummaryKey
from ..domain.mastery import Criterion, ItemAttempt, Try
from ..domain.summary import Session, Summary


def dumps(value: Any) -> str | None:
    """JSON text for a column, None stays NULL."""
    return None if value is None else orjson.dumps(value).decode()


def loads(text: str | None) -> Any:
    """The value of a JSON column."""
    return None if text is None else orjson.loads(text)


def fragment(text: str | None) -> orjson.Fragment | None:
    """A JSON column's text to be written into an answer as it is (orjson), unparsed."""
    return None if text is None else orjson.Fragment(text)


def key_of(row: Any) -> SummaryKey:
    return SummaryKey(row["dataset"], row["user_id"], row["collection_key"], row["context_key"],
                      row["content_id"])


def key_columns(key: SummaryKey) -> dict[str, Any]:
    return {"dataset": key.dataset, "user_id": key.user_id, "collection_key": key.collection_key,
            "context_key": key.context_key, "content_id": key.content_id}


def _pair(at: int | None, sid: str | None) -> tuple[int, str] | None:
    return None if at is None or sid is None else (at, sid)


def summary_from_row(row: Any, key: SummaryKey | None = None) -> Summary:
    """A summary from its row (`key`: the row's key when the caller holds it already)."""
    return Summary(
        key=key_of(row) if key is None else key, status=row["status"], progress=row["progress"],
        time_spent=row["time_spent"], first_access=row["first_access"],
        last_access=row["last_access"], view_count=row["view_count"],
        completed_at=row["completed_at"], last_completed_at=row["last_completed_at"],
        progress_details=loads(row["progress_details"]), extra_fields=loads(row["extra_fields"]),
        details_from=_pair(row["details_at"], row["details_session"]),
        repeat_from=_pair(row["repeat_at"], row["repeat_session"]),
        frontier=tuple(((at, sid), p) for at, sid, p in loads(row["frontier"]) or ()),
        best_score=row["best_score"], best_max_score=row["best_max_score"],
        attempts_count=row["attempts_count"],
    )


def summary_to_row(s: Summary, open_session_id: str | None, rev: int, now: int) -> dict[str, Any]:
    return {
        **key_columns(s.key), "status": s.status, "progress": s.progress,
        "time_spent": s.time_spent, "first_access": s.first_access,
        "last_access": s.last_access, "view_count": s.view_count,
        "completed_at": s.completed_at, "last_completed_at": s.last_completed_at,
        "progress_details": dumps(s.progress_details), "extra_fields": dumps(s.extra_fields),
        "details_at": s.details_from[0] if s.details_from else None,
        "details_session": s.details_from[1] if s.details_from else None,
        "repeat_at": s.repeat_from[0] if s.repeat_from else None,
        "repeat_session": s.repeat_from[1] if s.repeat_from else None,
        "frontier": dumps([(at, sid, p) for (at, sid), p in s.frontier]),
        "best_score": s.best_score, "best_max_score": s.best_max_score,
        "attempts_count": s.attempts_count, "open_session_id": open_session_id,
        "rev": rev, "updated_at": now,
    }


def session_from_row(row: Any, key: SummaryKey | None = None) -> Session:
    """A session from its row (`key`: the row's key when the caller holds it already)."""
    return Session(
        session_id=row["session_id"], key=key_of(row) if key is None else key,
        instance_id=row["instance_id"],
        started_at=row["started_at"], ended_at=row["ended_at"], progress=row["progress"],
        time_spent=row["time_spent"], completed_at=row["completed_at"],
        repeat=bool(row["repeat"]), closed=bool(row["closed"]),
        progress_details=loads(row["progress_details"]), extra_fields=loads(row["extra_fields"]),
        kind=row["kind"], level=row["mastery_level"],
    )


def session_to_row(s: Session, partition: str, counter: int, now: int) -> dict[str, Any]:
    return {
        **key_columns(s.key), "session_id": s.session_id, "started_at": s.started_at,
        "ended_at": s.ended_at, "progress": s.progress, "time_spent": s.time_spent,
        "completed_at": s.completed_at, "repeat": s.repeat, "closed": s.closed,
        "progress_details": dumps(s.progress_details), "extra_fields": dumps(s.extra_fields),
        "partition": partition, "instance_id": s.instance_id, "counter": counter,
        "updated_at": now, "kind": s.kind, "mastery_level": s.level,
    }


def _response_to_json(r: ItemResponse) -> dict[str, Any]:
    return {"id": r.item_id, "ets": r.ets, "score": r.score, "max_score": r.max_score,
            "item": dict(r.item), "extra": dict(r.extra)}


def attempt_from_row(row: Any) -> Attempt:
    responses = tuple(
        ItemResponse(r["id"], r["ets"], r["score"], r["max_score"], r["item"], r["extra"])
        for r in loads(row["responses"])
    )
    return Attempt(key=key_of(row), attempt_id=row["attempt_id"],
                   total_score=row["total_score"], total_max_score=row["total_max_score"],
                   last_attempted_on=row["last_attempted_on"], created_on=row["created_on"],
                   updated_on=row["updated_at"], responses=responses)


def attempt_to_row(a: Attempt, partition: str, instance_id: str, counter: int) -> dict[str, Any]:
    return {
        **key_columns(a.key), "attempt_id": a.attempt_id, "total_score": a.total_score,
        "total_max_score": a.total_max_score, "grand_total": a.grand_total,
        "last_attempted_on": a.last_attempted_on, "created_on": a.created_on,
        "responses": dumps([_response_to_json(r) for r in a.responses]),
        "partition": partition, "instance_id": instance_id, "counter": counter,
        "updated_at": a.updated_on,
    }


def enrolment_from_row(row: Any) -> Enrolment:
    certs = tuple(IssuedCertificate(c["id"], c["name"], c["token"], c["issued_on"])
                  for c in loads(row["certificates"]))
    return Enrolment(
        dataset=row["dataset"], user_id=row["user_id"], collection_id=row["collection_id"],
        context_id=row["context_id"], enrolled_at=row["enrolled_at"], active=bool(row["active"]),
        figures=EnrolmentProgress(row["completed_count"], row["progress"], row["status"],
                                  row["completed_on"]),
        certificates=certs,
    )


def enrolment_fact(e: Enrolment) -> tuple[Any, ...]:
    """What of an enrolment is a fact (synced); its figures are a fold of summaries."""
    return (e.enrolled_at, e.active, e.certificates)


def enrolment_to_row(e: Enrolment, partition: str, instance_id: str, counter: int,
                     now: int) -> dict[str, Any]:
    return {
        "dataset": e.dataset, "user_id": e.user_id, "collection_id": e.collection_id,
        "context_id": e.context_id, "enrolled_at": e.enrolled_at, "active": e.active,
        "status": e.figures.status, "completed_count": e.figures.completed_count,
        "progress": e.figures.progress, "completed_on": e.figures.completed_on,
        "certificates": dumps([{"id": c.id, "name": c.name, "token": c.token,
                                "issued_on": c.issued_on} for c in e.certificates]),
        "partition": partition, "instance_id": instance_id, "counter": counter,
        "updated_at": now,
    }


def node_to_json(n: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"identifier": n.identifier, "type": n.type}
    if n.name is not None:
        out["name"] = n.name
    if n.kind is not None:
        out["kind"] = n.kind
    if n.optional:
        out["optional"] = True
    if n.children:
        out["children"] = [node_to_json(c) for c in n.children]
    return out


def _node_from_json(raw: Any) -> Node:
    return Node(raw["identifier"], raw["type"], raw.get("name"), raw.get("kind"),
                bool(raw.get("optional", False)),
                tuple(_node_from_json(c) for c in raw.get("children", ())))


def template_to_json(t: Template) -> dict[str, Any]:
    criteria: dict[str, Any] = {"status": t.status}
    if t.score_op is not None:
        criteria["score"] = {t.score_op: t.score_value}
    return {"name": t.name, "criteria": criteria}


def collection_from_row(row: Any) -> CollectionRecord:
    children = tuple(_node_from_json(c) for c in loads(row["structure"]))
    templates = tuple(
        Template(t["name"], t["criteria"]["status"],
                 *(next(iter(t["criteria"]["score"].items())) if "score" in t["criteria"]
                   else (None, None)))
        for t in loads(row["certificates"])
    )
    return CollectionRecord(row["dataset"], row["collection_id"], row["name"],
                            row["description"], row["logo"],
                            Structure(row["collection_id"], row["version"], children), templates)


def collection_to_row(c: CollectionRecord, partition: str, instance_id: str, counter: int,
                      now: int) -> dict[str, Any]:
    return {
        "dataset": c.dataset, "collection_id": c.collection_id, "version": c.structure.version,
        "name": c.name, "description": c.description, "logo": c.logo,
        "structure": dumps([node_to_json(n) for n in c.structure.children]),
        "certificates": dumps([template_to_json(t) for t in c.templates]),
        "leaf_count": c.structure.leaf_count, "required_count": len(c.structure.required),
        "partition": partition, "instance_id": instance_id, "counter": counter,
        "updated_at": now,
    }


def try_from_row(row: Any) -> Try:
    return Try(key=key_of(row), level=row["mastery_level"],
               criterion=Criterion.from_json(orjson.loads(row["criterion"])),
               started_at=row["started_at"], ended_at=row["ended_at"], time_spent=row["time_spent"],
               complete=bool(row["complete"]), completed_at=row["completed_at"],
               attempt_count=row["attempt_count"])


def try_to_row(t: Try, partition: str, instance_id: str, counter: int, now: int
               ) -> dict[str, Any]:
    return {**key_columns(t.key), "mastery_level": t.level,
            "criterion": dumps(t.criterion.as_json()), "started_at": t.started_at,
            "ended_at": t.ended_at, "time_spent": t.time_spent, "complete": t.complete,
            "completed_at": t.completed_at, "attempt_count": t.attempt_count,
            "partition": partition, "instance_id": instance_id,
            "counter": counter, "updated_at": now}


def item_attempt_from_row(row: Any) -> ItemAttempt:
    return ItemAttempt(
        attempt_id=row["attempt_id"], key=key_of(row), level=row["mastery_level"],
        session_id=row["session_id"], item=row["item"], correct=row["correct"],
        started_at=row["started_at"], ended_at=row["ended_at"], time_spent=row["time_spent"],
        answer=orjson.loads(row["answer"]), simple_answer=row["simple_answer"],
        complete=bool(row["complete"]), completed_at=row["completed_at"],
        hinted=bool(row["hinted"]), error=bool(row["error"]),
        history=tuple(orjson.loads(row["history"])), ordinal=row["ordinal"])


def item_attempt_to_row(a: ItemAttempt, partition: str, instance_id: str, counter: int,
                        now: int) -> dict[str, Any]:
    return {**key_columns(a.key), "attempt_id": a.attempt_id, "mastery_level": a.level,
            "session_id": a.session_id, "item": a.item, "correct": a.correct,
            "started_at": a.started_at, "ended_at": a.ended_at, "time_spent": a.time_spent,
            "answer": dumps(dict(a.answer)), "simple_answer": a.simple_answer,
            "complete": a.complete, "completed_at": a.completed_at, "hinted": a.hinted,
            "error": a.error, "history": dumps([dict(h) for h in a.history]),
            "ordinal": a.ordinal,
            "partition": partition, "instance_id": instance_id, "counter": counter,
            "updated_at": now}
