# SPDX-License-Identifier: MIT
"""The broker's Redis I/O, in its own thread so the routing loop never blocks on it.

The routing loop hands over lists of commands (`submit`); this thread runs
each batch as one pipeline, puts results on `results` and rings a doorbell
(an inproc PUSH the loop polls) when there is something to read. Commands and
results are the records of `redis_records` (WriteJobs -> Written, FetchJobs ->
Fetched, AdminQuery -> AdminAnswer; AckJobs, DeadLetter, Requeue and RecordEvent
are retried until Redis takes them); the link also reports LinkState, Backlog
and Depths on its own. Each command type has a pair of steps here (`STEPS`):
one queues its Redis calls into the pipeline, the other digests their results. Its life
as a Redis consumer (recovery, beats, leaving) is in `redis_upkeep`; ADMIN ops over Redis
are in `redis_admin`, and its entry in the registry of brokers in `redis_registry`.

The link does not make its Redis client: `connect(url, socket_connect_timeout=...,
socket_timeout=...)` does (the CLI passes it in: a plain URL or, with Sentinel, a client that
follows the primary). Durable writes are confirmed only once `WAIT` says enough replicas have them.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import random
import threading
import time
from collections.abc import Callable

import redis
import zmq
from redis.commands.core import Script

from zeromesh.protocol import redis_keys as keys
from zeromesh.protocol.errors import ProtocolError
from zeromesh.protocol.redis_url import redact

from . import redis_registry, redis_scripts, redis_upkeep
from .redis_link_timed import TimedWork
from .redis_periodic import PeriodicTicks
from .redis_records import (
    ANSWER_LOST,
    AckJobs,
    Backlog,
    CheckInflight,
    Command,
    DeadLetter,
    LinkState,
    NameRefused,
    Requeue,
    Result,
    ScheduleJobs,
    Stop,
    UniqueJobs,
    WriteJobs,
)
from .redis_registry import NameTaken, Registration
from .redis_steps import STEPS, CommandSteps

log = logging.getLogger("zeromesh.broker.redis")

_PERIOD_S = 1.0  # depths, heartbeat of our consumer name, dead-consumer recovery
_DUE_S = 0.02  # how often scheduled jobs are looked at: due ones reach their queue within this
_TICK_S = 0.05  # how often periodic schedules are looked at
_BACKOFF_BASE_S = 0.1
_BACKOFF_CAP_S = 5.0
_MAX_RETRY_BACKLOG = 1_000_000
_SOCKET_TIMEOUT_S = 10.0

Connect = Callable[..., redis.Redis]
"""connect(url, *, socket_connect_timeout: float, socket_timeout: float) -> redis.Redis"""


class RedisLink(CommandSteps, TimedWork):
    def __init__(
        self,
        ctx: zmq.Context,
        url: str,
        doorbell: str,
        registration: Registration,
        *,
        connect: Connect,
        recovery_s: float = 30.0,
        connect_timeout_s: float = 2.0,
        queue_policy: Callable[[str], tuple[bool, int]] = lambda name: (False, 0),
        min_replicas: int = -1,
        wait_ms: int = 500,
        periodic: PeriodicTicks | None = None,
    ) -> None:
        self.ctx = ctx
        self.url = url
        self.doorbell = doorbell
        self.registration = registration
        self.connect = connect
        self.consumer = keys.broker_consumer(registration.name)
        self.min_replicas = min_replicas  # -1: 1 when the primary has replicas at connect time, else 0
        self.wait_ms = wait_ms
        self.wait_replicas = 0  # what durable writes wait for, decided at each connect
        self.short_writes = 0  # durable writes stored on fewer replicas than that
        self.refused = ""  # another live broker holds our name: we touch Redis no more
        self._claimed = False
        self._beating: set[str] = set()  # queues whose consumer set has our beat since we connected
        self.recovery_s = recovery_s
        self.queue_policy = queue_policy  # queue name -> (raw, max_attempts), for dead consumers' jobs
        self.connect_timeout_s = connect_timeout_s
        self.inbox: queue_mod.SimpleQueue[list[Command]] = queue_mod.SimpleQueue()
        self.results: queue_mod.SimpleQueue[Result] = queue_mod.SimpleQueue()
        self.up = False
        self.known_queues: set[str] = set()
        self.retry: list[Command] = []  # commands that must reach Redis eventually
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zeromesh-redis", daemon=True)
        self._raw_ids = 0
        self._raw_prefix = f"raw-{random.getrandbits(64):016x}"
        self._written: dict[int, list[bytes]] = {}
        self.periodic = periodic  # [[schedules]]: None when there are none
        self.scheduled_queues: set[str] = set()  # queues with scheduled jobs (ours, and SMEMBERS each period)
        self._redis: redis.Redis | None = None
        self._recovered = False  # our in-flight lists of a previous run: moved back once, at the first connect
        self._down_since: float | None = None
        self._down_logged = 0.0
        self.handed_back = 0  # jobs the shutdown hand-back wrote to Redis
        self._lost: set[str] = set()  # queues whose in-flight list a command with a lost answer may have grown
        self._unsure: dict[str, tuple[int, list[bytes]]] = {}  # queue -> (check round, elements added since)
        self._check_round = 0
        self.taken_back = 0  # jobs those checks moved back to their queue

    # -- called from the routing loop ----------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, commands: list[Command]) -> None:
        self._idle.clear()
        self.inbox.put(commands)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what was submitted, waiting up to `timeout` for Redis if it is down, then end the thread."""
        self.inbox.put([Stop(time.monotonic() + timeout)])
        self._thread.join(timeout + 2.0)
        self._stop.set()
        self._thread.join(1.0)

    def unsaved(self) -> dict[str, int]:
        """After stop(): what never reached Redis, by kind (jobs to hand back, dead letters, acks)."""
        left: dict[str, int] = {}
        for cmd in self.retry:
            if isinstance(cmd, Requeue):
                left["jobs"] = left.get("jobs", 0) + len(cmd.elements)
            elif isinstance(cmd, DeadLetter):
                left["dead_letters"] = left.get("dead_letters", 0) + 1
            elif isinstance(cmd, AckJobs):
                left["acks"] = left.get("acks", 0) + len(cmd.elements)
        return left

    # -- the thread ----------------------------------------------------------

    def _run(self) -> None:
        bell = self.ctx.socket(zmq.PUSH)
        bell.setsockopt(zmq.LINGER, 0)
        bell.connect(self.doorbell)
        self._bell = bell
        backoff = _BACKOFF_BASE_S
        next_try = 0.0
        next_period = 0.0
        next_due = 0.0
        next_tick = 0.0
        stop_by: float | None = None
        try:
            while not self._stop.is_set():
                batch: list[Command] = []
                try:
                    batch.extend(self.inbox.get(timeout=_DUE_S if self.scheduled_queues else 0.05))
                    while True:
                        batch.extend(self.inbox.get_nowait())
                except queue_mod.Empty:
                    pass
                stops = [cmd for cmd in batch if type(cmd) is Stop]
                if stops:
                    stop_by = stops[-1].deadline
                    backoff = min(backoff, 0.2)  # stopping: look for Redis often until the deadline
                    batch = [cmd for cmd in batch if type(cmd) is not Stop]
                now = time.monotonic()
                if not self.up and not self.refused and now >= next_try:
                    if self._connect():
                        backoff = _BACKOFF_BASE_S
                        next_period = 0.0
                    else:
                        next_try = now + backoff * (0.5 + random.random())  # jitter: brokers must not stampede
                        backoff = min(backoff * 2, _BACKOFF_CAP_S if stop_by is None else 0.2)
                if self.up and self.retry:
                    batch = self.retry + batch
                    self.retry = []
                if batch:
                    try:
                        self._execute(batch)
                    except Exception:  # a bug here must not silently end Redis I/O for good
                        log.exception("redis link: unexpected error; failing %d command(s)", len(batch))
                        for cmd in batch:
                            self._fail(cmd, "internal error in the broker's redis link")
                if self.up and now >= next_period:
                    next_period = now + _PERIOD_S
                    self._periodic()
                if self.up and self.scheduled_queues and now >= next_due:
                    next_due = now + _DUE_S
                    self._move_due()
                if self.up and self.periodic is not None and self.periodic.next and now >= next_tick:
                    next_tick = now + _TICK_S
                    self._fire_periodic()
                if stop_by is not None and (self.refused or not self.retry or time.monotonic() >= stop_by):
                    if self.up and not self.retry:
                        redis_upkeep.leave_consumer_sets(self._client, self.consumer, sorted(self.known_queues))
                    if self.up and self._claimed:
                        redis_registry.leave(self._client, self.registration)
                    break
                if self.inbox.empty():
                    self._idle.set()
        finally:
            bell.close(linger=0)
            if self._redis is not None:
                self._redis.close()

    def _post(self, result: Result) -> None:
        self.results.put(result)
        try:
            self._bell.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass  # the loop has unread rings already: it will drain every result

    @property
    def _client(self) -> redis.Redis:
        """The Redis client, made at the first connect; only used while up."""
        if self._redis is None:
            raise RuntimeError("the redis link has not connected yet")
        return self._redis

    def _connect(self) -> bool:
        try:
            if self._redis is None:
                self._redis = self.connect(
                    self.url, socket_connect_timeout=self.connect_timeout_s, socket_timeout=_SOCKET_TIMEOUT_S
                )
                self._fetch = self._redis.register_script(keys.FETCH)
                self._recover = self._redis.register_script(keys.RECOVER)
                self._ack_many = self._redis.register_script(keys.ACK_MANY)
                self._recover_dead = self._redis.register_script(keys.RECOVER_DEAD)
                self._schedule = self._redis.register_script(keys.SCHEDULE)
                self._due = self._redis.register_script(keys.DUE)
                self._unique = self._redis.register_script(keys.UNIQUE)
                self._tick = self._redis.register_script(keys.TICK)
                self._release_unique = self._redis.register_script(keys.RELEASE_UNIQUE)
                self._take_back = self._redis.register_script(keys.TAKE_BACK)
                self._move_if_held = self._redis.register_script(keys.FAIL)
                self._dead_once = self._redis.register_script(keys.DEAD_ONCE)
            self._redis.ping()
            self._load_scripts()
            self._beating = set()
            # The name first: our in-flight lists are the name's, and must not be taken from a live holder.
            redis_registry.claim(self._redis, self.registration, starting=not self._claimed)
            self._claimed = True
            self._decide_wait()
            if not self._recovered:
                redis_upkeep.recover_own(self._redis, self._recover, self.consumer)
                self._recovered = True
                if self.periodic is not None:
                    fed = self.periodic.start(self._redis, self._tick)
                    if fed:
                        self._post(Backlog(sorted(set(fed))))
            self._announce_backlog()
        except NameTaken as exc:
            self._refuse(str(exc))
            return False
        except (redis.RedisError, OSError) as exc:
            self._set_up(False, str(exc))
            return False
        self._set_up(True, "connected")
        self._report_lost()
        return True

    def _load_scripts(self) -> None:
        """Every script registered above into Redis's cache: the pipelines call them by sha."""
        redis_scripts.load(self._client, [v for v in vars(self).values() if isinstance(v, Script)])

    def _refuse(self, message: str) -> None:
        self.refused = message  # the server logs it as it stops
        self.up = False
        self._post(NameRefused(message))

    def _set_up(self, up: bool, message: str) -> None:
        now = time.monotonic()
        if up and not self.up:
            if self._down_since is not None:
                log.warning("redis back after %.1fs: %s", now - self._down_since, redact(self.url))
            else:
                log.info("redis up: %s", redact(self.url))
            self._down_since = None
        elif not up:
            if self._down_since is None:
                self._down_since = now
                self._down_logged = now
                log.warning(
                    "redis %s (%s): %s; pushes to durable queues are refused (unavailable) and other "
                    "jobs stay in memory until it is back",
                    "down" if self.up else "unreachable",
                    redact(self.url),
                    message,
                )
            elif now - self._down_logged >= 30.0:
                self._down_logged = now
                log.warning(
                    "redis still unreachable after %.0fs (%s): %s",
                    now - self._down_since,
                    redact(self.url),
                    message,
                )
        changed = up != self.up
        self.up = up
        if changed or not up:
            self._post(LinkState(up, message))

    def _announce_backlog(self) -> None:
        """Every queue in Redis may hold jobs for us: the router fetches from each."""
        backlog = redis_upkeep.queues_in_redis(self._client)
        self.known_queues.update(backlog)
        self._post(Backlog(backlog))

    def _execute(self, batch: list[Command]) -> None:
        if not self.up:
            for cmd in batch:
                self._fail(cmd, "redis is unavailable")
            return
        pipe = self._client.pipeline(transaction=False)
        plan: list[tuple[Command, int]] = []  # (command, how many pipeline results it owns)
        for cmd in batch:
            try:
                plan.append((cmd, STEPS[type(cmd)][0](self, pipe, cmd)))
            except ProtocolError as exc:
                self._fail(cmd, exc.message)
        if not plan:
            return
        waits = self.wait_replicas > 0 and any(
            (type(cmd) is WriteJobs and cmd.durable) or type(cmd) in (ScheduleJobs, UniqueJobs) for cmd, _ in plan
        )
        if waits:  # one WAIT covers every write before it on this connection
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_ms)
        try:
            results = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._set_up(False, str(exc))
            self._lost_answers(cmd for cmd, _ in plan)
            for cmd, _ in plan:
                self._fail(cmd, f"{ANSWER_LOST} (connection lost: {exc})")
            return
        self._acked_by = 0
        if waits:
            acked = results.pop()
            self._acked_by = acked if isinstance(acked, int) else 0
        pos = 0
        scripts_gone = False  # Redis lost its script cache (SCRIPT FLUSH) under the same connection
        for cmd, count in plan:
            part = results[pos : pos + count]
            pos += count
            error = next((r for r in part if isinstance(r, Exception)), None)
            if error is not None:
                log.warning("redis %s failed: %s", type(cmd).__name__, error)
                if isinstance(error, redis.exceptions.NoScriptError):
                    scripts_gone = True
                self._fail(cmd, str(error))
                continue
            done = STEPS[type(cmd)][1]
            if done is not None:
                done(self, cmd, part)
        if scripts_gone:
            try:
                self._load_scripts()  # what failed is retried, or asked again, with them back
                log.warning("redis had lost this broker's Lua scripts (SCRIPT FLUSH?): loaded them again")
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self._set_up(False, str(exc))  # loaded at the reconnect

    def _fail(self, cmd: Command, message: str) -> None:
        if type(cmd) is CheckInflight:
            self._lost.add(cmd.queue)  # asked for again at the next connect
            return
        if cmd.retried:
            if len(self.retry) < _MAX_RETRY_BACKLOG:
                self.retry.append(cmd)
            return
        if type(cmd) is WriteJobs:
            self._written.pop(cmd.token, None)
        result = cmd.failed(message)
        if result is not None:
            self._post(result)
