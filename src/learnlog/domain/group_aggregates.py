"""Group activity aggregates (SPEC §2.7): one member's figures for an activity, and a
group's totals kept by adding and removing members' figures.

A member may be enrolled in an activity under several contexts; it counts once, with
its most advanced enrolment. A group's totals are sums over its learner members, so a
change to one member is applied as "minus the old figures, plus the new ones": the work
per change does not depend on the group's size. Sums are integers (score percents in
millionths), so applying changes in any order gives exactly the same totals as
recomputing from scratch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from .collection import EnrolmentProgress
from .progress import COMPLETED, IN_PROGRESS, NOT_STARTED
from .summary import Summary

MICRO = 1_000_000  # score percents are kept in millionths of a percent


@dataclass(frozen=True, slots=True)
class ContextFigures:
    """A member's standing in an activity under one context: its enrolment's figures (or
    what its consumption shows when it has no enrolment) and its assessment scores."""

    status: int = NOT_STARTED
    progress: int = 0  # integer percent (SPEC §2.5)
    completed_count: int = 0
    enrolled: bool = False  # an enrolment exists
    consumed: bool = False  # some content of the activity was consumed here
    score: float = 0.0  # Σ best scores over the activity's assessment contents
    max_score: float = 0.0  # Σ of their max scores

    @property
    def rank(self) -> tuple[int, int, int]:
        """How advanced this standing is: status, then progress, then completed count."""
        return (self.status, self.progress, self.completed_count)


@dataclass(frozen=True, slots=True)
class MemberFigures:
    """What one member adds to its group's totals for one activity."""

    enrolled: bool = False
    started: bool = False
    completed: bool = False
    progress: int = 0
    score_micro: int | None = None  # 100 * score / max, in millionths; None: no score

    @property
    def shown(self) -> dict[str, float]:
        """The member's own row: completedness, progress and score percent."""
        return {"status": COMPLETED if self.completed else
                IN_PROGRESS if self.started else NOT_STARTED,
                "progress": self.progress,
                "scorePercent": 0.0 if self.score_micro is None else self.score_micro / MICRO}


NOBODY = MemberFigures()


def most_advanced(contexts: Sequence[ContextFigures]) -> int | None:
    """Which standing counts for a member: the most advanced one among those enrolled or
    consumed (ties: the first given); None when there is none."""
    best: int | None = None
    for i, figures in enumerate(contexts):
        if (figures.enrolled or figures.consumed) and (
                best is None or figures.rank > contexts[best].rank):
            best = i
    return best


def member_figures(contexts: Sequence[ContextFigures]) -> MemberFigures:
    """A member's figures from its standings under every context of the activity: the most
    advanced one counts. Enrolled means an enrolment or any consumption; scored means a
    positive max score in that standing."""
    i = most_advanced(contexts)
    if i is None:
        return NOBODY
    best = contexts[i]
    score = (None if best.max_score <= 0 else
             int((Decimal(str(best.score)) * 100 * MICRO / Decimal(str(best.max_score)))
                 .to_integral_value(ROUND_HALF_UP)))
    return MemberFigures(enrolled=True, started=best.status >= IN_PROGRESS or best.consumed,
                         completed=best.status == COMPLETED, progress=best.progress,
                         score_micro=score)


@dataclass(frozen=True, slots=True)
class ContentFigures:
    """What a member did with one content of an activity (its summary)."""

    content_id: str
    time_spent: float
    best_score: float | None
    best_max_score: float | None
    attempts: int
    last_access: int | None


def enrolment_standing(figures: EnrolmentProgress, leaves: Iterable[Summary | None]
                       ) -> ContextFigures:
    """A learner's standing under one enrolment: its figures, and the best scores of the
    collection's contents (their summaries under that enrolment) that have a max score."""
    score = max_score = 0.0
    for summary in leaves:
        if summary is not None and summary.best_score is not None and summary.best_max_score:
            score += summary.best_score
            max_score += summary.best_max_score
    return ContextFigures(figures.status, figures.progress, figures.completed_count,
                          enrolled=True, consumed=figures.status > 0, score=score,
                          max_score=max_score)


def content_figures(summary: Summary) -> ContentFigures:
    """What a member's row shows of one content: its summary's time, scores, attempts."""
    return ContentFigures(summary.key.content_id, summary.time_spent, summary.best_score,
                          summary.best_max_score, summary.attempts_count, summary.last_access)


def member_row(contexts: Sequence[ContextFigures],
               contents: Sequence[Sequence[ContentFigures]]) -> list[tuple[str, float,
                                                                          int | None]]:
    """A member's own row for an activity (SPEC §2.7), as (metric, value, lastUpdatedOn):
    the figures of its most advanced standing — status, progress, completedCount,
    scorePercent, timeSpent — and, for each content it was assessed on there, score:<id>,
    max_score:<id> and attempts_count:<id>. `contents[i]` are the contents of standing i.
    A metric's time is the last access among the contents it is made of."""
    i = most_advanced(contexts)
    if i is None:
        return [(metric, 0, None) for metric in
                ("status", "progress", "completedCount", "scorePercent", "timeSpent")]
    best, done = contexts[i], contents[i]
    shown = member_figures(contexts).shown
    when = max((c.last_access for c in done if c.last_access is not None), default=None)
    row: list[tuple[str, float, int | None]] = [
        ("status", best.status, when), ("progress", best.progress, when),
        ("completedCount", best.completed_count, when),
        ("scorePercent", shown["scorePercent"], when),
        ("timeSpent", round(sum(c.time_spent for c in done), 6), when)]
    for c in done:
        if c.attempts:
            row += [(f"score:{c.content_id}", c.best_score or 0.0, c.last_access),
                    (f"max_score:{c.content_id}", c.best_max_score or 0.0, c.last_access),
                    (f"attempts_count:{c.content_id}", c.attempts, c.last_access)]
    return row


def single_content(status: int, score: float | None, max_score: float | None
                   ) -> ContextFigures:
    """A content (or quiz) activity is a collection of one required content (SPEC §2.5's
    formula): 100 % once it is completed, else 0 — so only its status moves it."""
    done = status == COMPLETED
    return ContextFigures(status, 100 if done else 0, 1 if done else 0, consumed=True,
                          score=score or 0.0, max_score=max_score or 0.0)


@dataclass(frozen=True, slots=True)
class Totals:
    """A group's sums for one activity over its learner members."""

    member_count: int = 0
    enrolled_count: int = 0
    started_count: int = 0
    completed_count: int = 0
    progress_sum: int = 0
    scored_count: int = 0
    score_micro_sum: int = 0

    def plus(self, member: MemberFigures, sign: int = 1) -> Totals:
        """The totals with a learner member's figures added (sign 1) or removed (-1)."""
        scored = member.score_micro is not None
        return replace(
            self,
            member_count=self.member_count + sign,
            enrolled_count=self.enrolled_count + sign * member.enrolled,
            started_count=self.started_count + sign * member.started,
            completed_count=self.completed_count + sign * member.completed,
            progress_sum=self.progress_sum + sign * (member.progress if member.enrolled else 0),
            scored_count=self.scored_count + sign * scored,
            score_micro_sum=self.score_micro_sum + sign * (member.score_micro or 0))

    def combined(self, other: Totals) -> Totals:
        """Two changes to the same totals as one."""
        return Totals(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def less(self, other: Totals) -> Totals:
        """The change that takes `other` to these totals."""
        return Totals(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def minus(self, member: MemberFigures) -> Totals:
        return self.plus(member, -1)

    def changed(self, old: MemberFigures, new: MemberFigures) -> Totals:
        """The totals after one member's figures changed from `old` to `new`."""
        return self.minus(old).plus(new)

    def metrics(self) -> dict[str, float]:
        """SPEC §2.7's group metrics; a percentage or mean over nobody is 0."""
        return {
            "memberCount": self.member_count,
            "enrolledCount": self.enrolled_count,
            "startedCount": self.started_count,
            "completedCount": self.completed_count,
            "completionPercentage": _ratio(100 * self.completed_count, self.enrolled_count),
            "avgProgress": _ratio(self.progress_sum, self.enrolled_count),
            "avgScorePercent": _ratio(self.score_micro_sum, self.scored_count * MICRO),
        }


    def moved(self) -> frozenset[str]:
        """For a change to the totals: the metrics one of whose inputs it changes (their
        lastUpdatedOn moves)."""
        inputs = {
            "memberCount": (self.member_count,),
            "enrolledCount": (self.enrolled_count,),
            "startedCount": (self.started_count,),
            "completedCount": (self.completed_count,),
            "completionPercentage": (self.completed_count, self.enrolled_count),
            "avgProgress": (self.progress_sum, self.enrolled_count),
            "avgScorePercent": (self.score_micro_sum, self.scored_count),
        }
        return frozenset(m for m, values in inputs.items() if any(values))


def totals_of(members: Iterable[MemberFigures]) -> Totals:
    """The totals recomputed from every learner member's figures (the fold)."""
    totals = Totals()
    for member in members:
        totals = totals.plus(member)
    return totals


def _ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator with 2 decimals (half up), 0 when the denominator is 0."""
    if denominator == 0:
        return 0.0
    return float((Decimal(numerator) / Decimal(denominator)).quantize(
        Decimal("0.01"), ROUND_HALF_UP))


METRICS = tuple(Totals().metrics())  # the group metrics, in the order they are shown
