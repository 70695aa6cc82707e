"""Redis write-through cache of learners' content status maps (SPEC §7).

One hash per (dataset, user, collection key, context key); field = content id, value =
"<rev>|<json of the summary's read fields>". Writes go through after commit with a Lua
script that keeps a field only if its revision is newer, so two processes (or a late
back-fill) can never put an older value over a newer one. Redis is never the source of
truth: every error turns the cache off for a short while and reads go to the database;
keys a failed write could not update are deleted before the cache is used again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import redis

from ..domain.keys import SummaryKey

log = logging.getLogger(__name__)

_SET_IF_NEWER = """
for i = 1, #ARGV, 3 do
  local field, rev, value = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local held = redis.call('HGET', KEYS[1], field)
  local held_rev = -1
  if held then held_rev = tonumber(string.match(held, '^(-?%d+)|')) or -1 end
  if rev > held_rev then redis.call('HSET', KEYS[1], field, rev .. '|' .. value) end
end
redis.call('EXPIRE', KEYS[1], tonumber(KEYS[2]))
return 1
"""

_SEP = "\x1f"
RETRY_AFTER = 2.0
TTL = 24 * 3600


class StatusCache:
    """The optional cache; every method is safe to call when Redis is down."""

    def __init__(self, url: str, prefix: str, retry_after: float = RETRY_AFTER) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix
        self._script = self._client.register_script(_SET_IF_NEWER)
        self._down_until = 0.0
        self._retry_after = retry_after
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.errors = 0

    def hash_key(self, scope: tuple[str, str, str, str]) -> str:
        return self._prefix + "s:" + _SEP.join(scope)

    def _usable(self) -> bool:
        if time.monotonic() < self._down_until:
            return False
        if self._dirty:
            with self._lock:
                dirty, self._dirty = self._dirty, set()
            try:
                self._client.delete(*dirty)
            except redis.RedisError:
                with self._lock:
                    self._dirty |= dirty
                self._trip()
                return False
        return True

    def _trip(self) -> None:
        self.errors += 1
        self._down_until = time.monotonic() + self._retry_after

    def get_many(self, keys: list[SummaryKey]) -> dict[SummaryKey, dict[str, Any]] | None:
        """Cached read fields of these summaries; None when any is missing or on error."""
        if not keys or not self._usable():
            return None
        by_scope: dict[str, list[SummaryKey]] = {}
        for k in keys:
            by_scope.setdefault(self.hash_key(k.scope), []).append(k)
        try:
            pipe = self._client.pipeline(transaction=False)
            for hk, ks in by_scope.items():
                pipe.hmget(hk, [k.content_id for k in ks])
            replies = pipe.execute()
        except redis.RedisError:
            self._trip()
            return None
        found: dict[SummaryKey, dict[str, Any]] = {}
        for ks, values in zip(by_scope.values(), replies, strict=True):
            for k, raw in zip(ks, values, strict=True):
                if raw is None:
                    self.misses += 1
                    return None
                body = raw.split(b"|", 1)[1]
                found[k] = orjson.loads(body)
        self.hits += 1
        return found

    def put_many(self, entries: Iterable[tuple[SummaryKey, int, Mapping[str, Any] | None]]
                 ) -> None:
        """Write summaries through (rev-guarded); a None value deletes the field."""
        by_scope: dict[str, list[tuple[str, int, Mapping[str, Any] | None]]] = {}
        for k, rev, value in entries:
            by_scope.setdefault(self.hash_key(k.scope), []).append((k.content_id, rev, value))
        if not by_scope:
            return
        if not self._usable():
            with self._lock:
                self._dirty |= set(by_scope)
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for hk, items in by_scope.items():
                deletions = [c for c, _, v in items if v is None]
                if deletions:
                    pipe.hdel(hk, *deletions)
                args: list[Any] = []
                for content_id, rev, value in items:
                    if value is not None:
                        args += [content_id, rev, orjson.dumps(value)]
                if args:
                    self._script(keys=[hk, str(TTL)], args=args, client=pipe)
            pipe.execute()
        except redis.RedisError:
            with self._lock:
                self._dirty |= set(by_scope)
            self._trip()

    def drop_scopes(self, scopes: Iterable[tuple[str, str, str, str]]) -> None:
        """Forget whole status maps (erasure)."""
        keys = {self.hash_key(s) for s in scopes}
        if not keys:
            return
        try:
            self._client.delete(*keys)
        except redis.RedisError:
            with self._lock:
                self._dirty |= keys
            self._trip()

    def close(self) -> None:
        self._client.close()
