"""Redis write-through cache of learners' content status maps (SPEC §7; decisions 0003, 0016).

Redis is never the source of truth, and any number of processes share it, each with its
own idea of whether Redis is working. An answer from Redis must still be at least as new
as every write acknowledged before the read began, whatever Redis or the network did. Four
rules give that:

* **Epochs.** The database holds the cache epoch (`meta` row `cache_epoch`: number, floor,
  since). Redis holds the epoch it serves under (key `epoch`) and a *lease* on it (key
  `lease`, expiring at an absolute time). A read serves a value only when the epoch is
  even (active), the lease is of that epoch, and the value was stored under it. Reads get
  all of that in one pipelined round trip, and never touch the database.
* **A write-through that fails suspends the epoch** (odd number, in the database) before
  the write is acknowledged, then publishes the suspension to Redis; if Redis cannot be
  reached it waits until every lease granted before the suspension has run out. A lease is
  granted only by a process that read an active epoch from the database, until that read's
  time plus `lease` seconds, so no process can serve anything older than the failed write
  once it is acknowledged. A later database read by a process that reaches Redis resumes
  with a new even epoch, under which nothing older is trusted.
* **Lost Redis data starts a new epoch.** An epoch key that is gone (restart, flush) is
  claimed by one reader, which advances the database epoch and publishes the new one. Each
  new epoch carries a *floor*: the next fact counter at that moment. A write-through whose
  revision is below the floor of the epoch it lands in was committed before that epoch
  began and may be late, so it is kept only as evidence (its revision), never served.
* **Back-fills prove they are not late.** A read that missed keeps what it saw (the epoch
  key, each hash's stamp); it then reads the database epoch *before* the rows. The
  back-fill is stored only if Redis still serves that epoch (or an older one it may
  replace) and no write-through touched the hash since the read looked (every write-through
  sets a new stamp). Revisions still order values: a field never goes back to an older one.

Hash layout: one hash per (dataset, user, collection key, context key); field = content id,
value "<rev>|<epoch>|<json of the summary's read fields>", or "<rev>|-|" (a revision whose
value is not vouched for), or "~" (erased: answered from the database until a back-fill
that read after the erasure stores the new row). Field "\\x00s" is the hash's stamp.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from ..domain.keys import SummaryKey
from .schema import meta
from .uow import COUNTER_KEY

log = logging.getLogger(__name__)

EPOCH_ROW = "cache_epoch"  # the `meta` row of the cache epoch
RETRY_AFTER = 2.0  # seconds the cache stays off in a process after a Redis error
LEASE = 2.0  # seconds a database read of the epoch lets Redis serve under it
CLOCK_MARGIN = 0.25  # seconds of clock difference tolerated between hosts and Redis
TTL = 24 * 3600  # seconds a learner's hash lives after its last write
CLAIM_MS = 10_000  # how long a claim on a lost epoch holds if its claimant dies
STAMP = "\x00s"  # the hash field of its stamp (ids have no control characters)
_SEP = "\x1f"

# Shared by the scripts. Numbers are compared with tonumber and written back as the strings
# they came in (Lua would print a large number in exponent form).
_LUA = """
local function epoch_of(raw)
  if not raw then return nil end
  return tonumber(string.match(raw, '^(%d+) '))
end
local function rev_of(held)
  if not held then return -1 end
  return tonumber(string.match(held, '^(%d+)|')) or -1
end
local function grant(lease_key, e, deadline)
  local held = redis.call('GET', lease_key)
  if held then
    local he, hd = string.match(held, '^(%d+) (%d+)$')
    if he == e and tonumber(hd) >= tonumber(deadline) then return end
  end
  redis.call('SET', lease_key, e .. ' ' .. deadline)
  redis.call('PEXPIREAT', lease_key, deadline)
end
-- Serve under epoch e (read from the database) if Redis holds e or an older one (then e
-- replaces it); never when it holds none (lost: only a claim publishes then) or a newer one.
local function adopt(epoch_key, lease_key, e, floor, deadline)
  local cur = epoch_of(redis.call('GET', epoch_key))
  if cur == nil or cur > tonumber(e) then return 0 end
  if cur < tonumber(e) then redis.call('SET', epoch_key, e .. ' ' .. floor) end
  if tonumber(e) % 2 == 0 and deadline ~= '' then grant(lease_key, e, deadline) end
  return 1
end
"""

# KEYS: epoch, lease, seq, hash… ARGV: ttl, renew epoch, floor, deadline ('' = no renewal),
# then per hash: n, then n times (content id, rev, json; '' json = erased).
# Returns 0 when Redis holds no epoch (lost: the caller claims it), else 1.
_WRITE = _LUA + """
if ARGV[2] ~= '' then adopt(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4]) end
local raw = redis.call('GET', KEYS[1])
local e = raw and string.match(raw, '^(%d+) ')
local floor = nil
if e and tonumber(e) % 2 == 0 then floor = tonumber(string.match(raw, '^%d+ (%d+)')) end
local now = redis.call('TIME')
local i = 5
for h = 4, #KEYS do
  local hk, n = KEYS[h], tonumber(ARGV[i])
  i = i + 1
  local seq = redis.call('INCR', KEYS[3])
  redis.call('HSET', hk, '\\0s', now[1] .. '.' .. now[2] .. '.' .. seq)
  for _ = 1, n do
    local field, rev, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    if value == '' then
      redis.call('HSET', hk, field, '~')
    else
      local held = redis.call('HGET', hk, field)
      if held ~= '~' and tonumber(rev) > rev_of(held) then
        if floor and tonumber(rev) >= floor then
          redis.call('HSET', hk, field, rev .. '|' .. e .. '|' .. value)
        else
          redis.call('HSET', hk, field, rev .. '|-|')
        end
      end
    end
  end
  redis.call('EXPIRE', hk, ARGV[1])
end
if e then return 1 end
return 0
"""

# KEYS: epoch, lease, hash… ARGV: epoch, floor, deadline, ttl, then per hash: the stamp the
# lookup saw ('' = none), n, then n times (content id, rev, json). Returns 1 when stored.
_FILL = _LUA + """
if adopt(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]) == 0 then return 0 end
local i = 5
for h = 3, #KEYS do
  local hk, seen, n = KEYS[h], ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  if (redis.call('HGET', hk, '\\0s') or '') == seen then
    for _ = 1, n do
      local field, rev, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
      i = i + 3
      local held = redis.call('HGET', hk, field)
      local r = tonumber(rev)
      if (held == '~' and r > 0) or (held ~= '~' and r >= rev_of(held)) then
        redis.call('HSET', hk, field, rev .. '|' .. ARGV[1] .. '|' .. value)
      end
    end
    redis.call('EXPIRE', hk, ARGV[4])
  else
    i = i + 3 * n
  end
end
return 1
"""

# KEYS: epoch. ARGV: the suspended epoch, its floor. 1 when Redis can serve nothing from
# before it any more: it holds it or a newer one, or none (a later claim starts from the
# database as it is now); 0 while another process's claim may still publish an older one.
_SUSPEND = _LUA + """
local raw = redis.call('GET', KEYS[1])
if not raw then return 1 end
local cur = epoch_of(raw)
if cur == nil then return 0 end
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2]) end
return 1
"""

# KEYS: epoch. ARGV: claim, ms. Returns what the epoch key holds afterwards.
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""

# KEYS: epoch, lease. ARGV: claim, epoch, floor, deadline. 1 when published.
_PUBLISH = _LUA + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. ARGV[3])
grant(KEYS[2], ARGV[2], ARGV[4])
return 1
"""


@dataclass(frozen=True)
class Epoch:
    """The database's cache epoch: even = active, odd = suspended; `floor` = the first
    revision trusted under it; `since_ms` = when it was set."""

    number: int = 0
    floor: int = 0
    since_ms: int = 0

    @property
    def active(self) -> bool:
        return self.number % 2 == 0

    @classmethod
    def parse(cls, value: str | None) -> Epoch:
        if not value:
            return cls()
        number, floor, since = value.split()
        return cls(int(number), int(floor), int(since))

    def __str__(self) -> str:
        return f"{self.number} {self.floor} {self.since_ms}"


@dataclass(frozen=True)
class Seen:
    """What a lookup saw of Redis, for the back-fill that may follow it."""

    epoch: bytes | None  # the epoch key
    stamps: tuple[tuple[str, bytes | None], ...]  # (hash key, its stamp)


@dataclass(frozen=True)
class Lookup:
    """The outcome of one cache read: `found` holds every key's read fields when Redis
    could serve them all, else it is None and `seen` (None when Redis was not asked) lets
    `StatusCache.ticket` decide whether the database read may back-fill."""

    found: dict[SummaryKey, dict[str, Any]] | None
    seen: Seen | None = None


@dataclass(frozen=True)
class Ticket:
    """Leave to back-fill what is read from the database after it was issued."""

    epoch: Epoch
    deadline_ms: int
    seen: Seen


def _read_epoch(conn: Connection) -> Epoch:
    """The database's cache epoch (the initial one when none was stored yet)."""
    return Epoch.parse(conn.execute(select(meta.c.value).where(meta.c.key == EPOCH_ROW))
                       .scalar())


def _next_counter(conn: Connection) -> int:
    """A revision above every one handed out so far (the floor of a new epoch)."""
    if conn.dialect.name == "postgresql":
        last, called = conn.execute(text("SELECT last_value, is_called FROM fact_counter")
                                    ).one()
        return int(last) + 1 if called else int(last)
    value = conn.execute(select(meta.c.value).where(meta.c.key == COUNTER_KEY)).scalar()
    return int(value or 0) + 1


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class StatusCache:
    """The optional cache; every method is safe to call when Redis is down.

    `engine` is the database's writer engine: the cache changes its epoch there (rarely:
    after a Redis failure or data loss) and reads it when renewing its lease after writes.
    """

    def __init__(self, url: str, prefix: str, engine: Engine, retry_after: float = RETRY_AFTER,
                 lease: float = LEASE) -> None:
        # One retry, at once and for connection errors only: a pooled connection to a
        # Redis that restarted fails once, and should not turn the cache off for that.
        self._url = url
        self._client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))
        self._async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis] | None = None
        self._engine = engine
        self._prefix = prefix
        self._epoch_key, self._lease_key = prefix + "epoch", prefix + "lease"
        self._seq_key = prefix + "seq"
        self._write = self._client.register_script(_WRITE)
        self._fill = self._client.register_script(_FILL)
        self._suspend_script = self._client.register_script(_SUSPEND)
        self._claim = self._client.register_script(_CLAIM)
        self._publish = self._client.register_script(_PUBLISH)
        self._retry_after = retry_after
        self._lease = lease
        self._down_until = 0.0  # monotonic: no Redis for this process until then
        self._renew_at = 0.0  # monotonic: when the writer next renews the lease
        self._lock = threading.Lock()
        self._suspension = (-1, 0.0)  # an odd epoch seen, and until when its leases may run
        self.hits = 0
        self.misses = 0
        self.errors = 0

    def hash_key(self, scope: tuple[str, str, str, str]) -> str:
        return self._prefix + "s:" + _SEP.join(scope)

    # -- reads --------------------------------------------------------------------------
    def get_many(self, keys: Sequence[SummaryKey]) -> Lookup:
        """The read fields of these summaries, if Redis can serve them all: one round trip
        (none while this process leaves Redis alone after an error)."""
        if not keys or not self._usable():
            return Lookup(None)
        groups = self._groups(keys)
        try:
            pipe = self._client.pipeline(transaction=False)
            self._queue_lookup(pipe, groups)
            replies = pipe.execute()
        except redis.RedisError:
            self._trip()
            return Lookup(None)
        return self._judge(groups, replies)

    async def get_many_async(self, keys: Sequence[SummaryKey]) -> Lookup:
        """`get_many` on the running event loop (redis.asyncio; no thread hop). Call
        `aclose` from the same loop before it ends."""
        if not keys or not self._usable():
            return Lookup(None)
        groups = self._groups(keys)
        try:
            pipe = self._async_client().pipeline(transaction=False)
            self._queue_lookup(pipe, groups)
            replies = await pipe.execute()
        except redis.RedisError:
            self._trip()
            return Lookup(None)
        return self._judge(groups, replies)

    def ticket(self, conn: Connection, lookup: Lookup) -> Ticket | None:
        """Call after a lookup missed and *before* reading the rows to back-fill, on the
        connection that reads them: reads the database's epoch (one small query) and
        says whether, and under which epoch, `backfill` may store those rows."""
        if lookup.seen is None or lookup.found is not None:
            return None
        read_at = time.time()
        value = conn.execute(select(meta.c.value).where(meta.c.key == EPOCH_ROW)).scalar()
        return self.ticket_for(lookup, value, read_at)

    def ticket_for(self, lookup: Lookup, epoch: str | None, read_at: float) -> Ticket | None:
        """`ticket`'s decision, given the epoch row's value (None when none was stored),
        read before the rows; `read_at` = `time.time()` before that query. Rarely (after a
        failure, or when Redis lost its data) this resumes the epoch or starts a new one:
        a write transaction of its own and a Redis round trip, blocking."""
        seen = lookup.seen
        if seen is None or lookup.found is not None:
            return None
        current = Epoch.parse(epoch)
        if seen.epoch is None:  # Redis lost its data (or never had any): a new epoch
            self._recover()
            return None
        if seen.epoch.startswith(b"?"):  # another process is starting one
            return None
        if not current.active:
            if _now_ms() - current.since_ms < self._retry_after * 1000:
                return None  # leave the process whose write failed time to come back
            read_at = time.time()
            try:
                current = self._change(self._resume(current))
            except SQLAlchemyError:
                log.exception("cache epoch not resumed")
                return None
            if not current.active:
                return None
        return Ticket(current, int((read_at + self._lease) * 1000), seen)

    def backfill(self, ticket: Ticket, entries: Iterable[tuple[SummaryKey, int,
                                                                 Mapping[str, Any]]]) -> None:
        """Store rows read after `ticket` was issued: (key, revision, read fields), a
        revision 0 for a summary that does not exist ({})."""
        stamps = dict(ticket.seen.stamps)
        groups: dict[str, list[tuple[str, int, Mapping[str, Any]]]] = {}
        for k, rev, value in entries:
            groups.setdefault(self.hash_key(k.scope), []).append((k.content_id, rev, value))
        args: list[Any] = [ticket.epoch.number, ticket.epoch.floor, ticket.deadline_ms, TTL]
        for hk, items in groups.items():
            args += [stamps.get(hk) or b"", len(items)]
            for content_id, rev, value in items:
                args += [content_id, rev, orjson.dumps(value)]
        try:
            if self._fill(keys=[self._epoch_key, self._lease_key, *groups], args=args):
                self._renewed()
        except redis.RedisError:
            self._trip()

    # -- writes -------------------------------------------------------------------------
    def write_through(self, entries: Iterable[tuple[SummaryKey, int, Mapping[str, Any] | None]]
                      ) -> None:
        """After a commit, before its requests are answered: store the batch's summaries
        (key, revision, read fields; None = erased). When Redis cannot take them, make
        sure no process serves an older value once this returns (see the module text)."""
        groups: dict[str, list[tuple[str, int, Mapping[str, Any] | None]]] = {}
        for k, rev, value in entries:
            groups.setdefault(self.hash_key(k.scope), []).append((k.content_id, rev, value))
        if not groups:
            return
        epoch: Epoch | None = None
        if not self._usable():
            epoch = self._db_epoch()
            if not epoch.active:  # suspended already (Redis is not asked, it failed lately)
                self._suspended(epoch, ask_redis=False)
                return
            # Resumed by another process since this one left Redis: try it again.
        renew: tuple[Epoch, int] | None = None
        if time.monotonic() >= self._renew_at:
            started = time.time()
            epoch = epoch or self._db_epoch()
            renew = (epoch, int((started + self._lease) * 1000)) if epoch.active else None
        args: list[Any] = [TTL, *((renew[0].number, renew[0].floor, renew[1]) if renew
                                  else ("", "", ""))]
        for items in groups.values():
            args.append(len(items))
            for content_id, rev, value in items:
                args += [content_id, rev, b"" if value is None else orjson.dumps(value)]
        try:
            held = self._write(keys=[self._epoch_key, self._lease_key, self._seq_key,
                                     *groups], args=args)
        except redis.RedisError:
            self._trip()
            self._suspend()
            return
        if renew is not None:
            self._renewed()
        if not held:
            self._recover()

    # -- epochs -------------------------------------------------------------------------
    def _suspend(self) -> None:
        """A write-through failed after its commit: suspend the epoch (database), then
        publish that or wait out the leases, before the write is acknowledged."""
        def suspend(cur: Epoch, _: Connection) -> Epoch | None:
            return Epoch(cur.number + 1, cur.floor, _now_ms()) if cur.active else None

        for attempt in range(3):
            try:
                self._suspended(self._change(suspend))
                return
            except SQLAlchemyError:
                if attempt == 2:
                    log.exception("cache epoch not suspended after a failed write-through; "
                                  "Redis may serve values older than the last batch")
                    return
                time.sleep(0.05)

    def _suspended(self, epoch: Epoch, *, ask_redis: bool = True) -> None:
        """The epoch is suspended: once this returns, Redis serves nothing from before."""
        with self._lock:
            if self._suspension[0] != epoch.number:  # first seen here: leases granted before
                self._suspension = (epoch.number, time.time() + self._lease + CLOCK_MARGIN)
            until = self._suspension[1]
        if time.time() >= until:
            return
        if ask_redis:
            try:  # published, nothing older is served (unless a claim is in flight)
                if self._suspend_script(keys=[self._epoch_key],
                                        args=[epoch.number, epoch.floor]):
                    return
            except redis.RedisError:
                self._trip()
        time.sleep(max(0.0, until - time.time()))

    def _resume(self, suspended: Epoch) -> Callable[[Epoch, Connection], Epoch | None]:
        def change(cur: Epoch, conn: Connection) -> Epoch | None:
            if cur != suspended:
                return None
            return Epoch(cur.number + 1, _next_counter(conn), _now_ms())
        return change

    def _recover(self) -> None:
        """Redis holds no epoch: claim the right to start one, advance the database's,
        publish it."""
        claim = "? " + uuid.uuid4().hex
        try:
            if self._claim(keys=[self._epoch_key], args=[claim, CLAIM_MS]) != claim.encode():
                return
            started = time.time()
            epoch = self._change(lambda cur, conn: Epoch(
                cur.number + (2 if cur.active else 1), _next_counter(conn), _now_ms()))
            if self._publish(keys=[self._epoch_key, self._lease_key], args=[
                    claim, epoch.number, epoch.floor, int((started + self._lease) * 1000)]):
                self._renewed()
        except redis.RedisError:
            self._trip()
        except SQLAlchemyError:
            log.exception("cache epoch not advanced; Redis stays unused until it is")

    def _change(self, change: Callable[[Epoch, Connection], Epoch | None]) -> Epoch:
        """Apply `change` to the database's epoch in one transaction (None = keep it);
        returns the epoch in force afterwards."""
        insert = sqlite_insert if self._engine.dialect.name == "sqlite" else pg_insert
        with self._engine.begin() as conn:
            conn.execute(insert(meta).values(key=EPOCH_ROW, value=str(Epoch()))
                         .on_conflict_do_nothing())
            query = select(meta.c.value).where(meta.c.key == EPOCH_ROW)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            current = Epoch.parse(conn.execute(query).scalar_one())
            new = change(current, conn)
            if new is None:
                return current
            conn.execute(update(meta).where(meta.c.key == EPOCH_ROW).values(value=str(new)))
            return new

    def _db_epoch(self) -> Epoch:
        with self._engine.connect() as conn:
            return _read_epoch(conn)

    # -- plumbing -------------------------------------------------------------------------
    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _trip(self) -> None:
        self.errors += 1
        self._down_until = time.monotonic() + self._retry_after

    def _renewed(self) -> None:
        self._renew_at = time.monotonic() + self._lease / 3

    def _groups(self, keys: Sequence[SummaryKey]) -> dict[str, list[SummaryKey]]:
        groups: dict[str, list[SummaryKey]] = {}
        for k in keys:
            groups.setdefault(self.hash_key(k.scope), []).append(k)
        return groups

    def _queue_lookup(self, pipe: Any, groups: dict[str, list[SummaryKey]]) -> None:
        pipe.mget(self._epoch_key, self._lease_key)
        for hk, ks in groups.items():
            pipe.hmget(hk, [STAMP, *(k.content_id for k in ks)])

    def _judge(self, groups: dict[str, list[SummaryKey]], replies: list[Any]) -> Lookup:
        (epoch_raw, lease_raw), hashes = replies[0], replies[1:]
        seen = Seen(epoch_raw, tuple((hk, values[0]) for hk, values in
                                     zip(groups, hashes, strict=True)))
        number = epoch_raw.split(b" ", 1)[0] if epoch_raw else b""
        if (not number.isdigit() or int(number) % 2 or lease_raw is None
                or lease_raw.split(b" ", 1)[0] != number):
            self.misses += 1
            return Lookup(None, seen)
        found: dict[SummaryKey, dict[str, Any]] = {}
        for ks, values in zip(groups.values(), hashes, strict=True):
            for k, raw in zip(ks, values[1:], strict=True):
                parts: list[bytes] = raw.split(b"|", 2) if raw else []
                if len(parts) != 3 or parts[1] != number:
                    self.misses += 1
                    return Lookup(None, seen)
                found[k] = orjson.loads(parts[2])
        self.hits += 1
        return Lookup(found, seen)

    def _async_client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, redis.asyncio.Redis.from_url(
                self._url, socket_timeout=0.5, socket_connect_timeout=0.5,
                retry=AsyncRetry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))))
        return self._async[1]

    async def aclose(self) -> None:
        """Close the asyncio client (from the event loop that used it)."""
        if self._async is not None:
            client, self._async = self._async[1], None
            await client.aclose()

    def close(self) -> None:
        self._client.close()
