# SPDX-License-Identifier: MIT
"""What the routing loop and the Redis link thread say to each other, as typed records.

Commands go to the link in lists (`RedisLink.submit`); the link runs each list as one
pipeline. A command the link could not run either waits for Redis (`retried`: it must
reach Redis eventually) or is answered at once with the result `failed()` makes. Results
come back on the link's `results` queue; the Router hands each to the part that owns it,
by type (`Router.on_redis`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from zeromesh.protocol import envelope, wire

ANSWER_LOST = "no answer from redis"
"""How a command's failure starts when the connection died after sending it: Redis may have run it."""

# -- results: link -> router -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Written:
    """A WriteJobs done: the elements as stored, or None and why not. `short` (a durable write
    stored on the primary but on fewer replicas than it needs) says how many did take it."""

    token: int
    elements: list[bytes] | None
    error: str
    short: str = ""


@dataclass(frozen=True, slots=True)
class UniqueWritten:
    """A UniqueJobs done: per job, '' (queued or scheduled now) or the id of the job that holds
    its key; or None and why not. `short` as in Written."""

    token: int
    firsts: list[str] | None
    error: str
    short: str = ""


@dataclass(frozen=True, slots=True)
class Fetched:
    """Up to `asked` jobs moved from the queue to our in-flight list: (element, decoded) pairs."""

    queue: str
    asked: int
    jobs: list[tuple[bytes, envelope.Element]]


@dataclass(frozen=True, slots=True)
class LinkState:
    """Redis reachable or not; sent on every change, and on every failed attempt while down."""

    up: bool
    message: str


@dataclass(frozen=True, slots=True)
class InflightUnsure:
    """Reconnected after losing the answer to a command that adds to our in-flight lists of these
    queues (a fetch, a durable write): what it moved there may be held by nobody. Round `round`
    of the check; the router answers with one CheckInflight per queue."""

    queues: list[str]
    round: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """Queues that exist in Redis (at connect): each may hold jobs for us."""

    queues: list[str]


@dataclass(frozen=True, slots=True)
class Released:
    """Due scheduled jobs this broker moved to their queues: {queue: ids} (for the trace log)."""

    jobs: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Depths:
    """Every known queue's Redis lengths: {queue: (pending, dead)}."""

    depths: dict[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Brokers:
    """Every broker in the registry, as its hash's fields (redis_registry.listing)."""

    brokers: list[dict]


@dataclass(frozen=True, slots=True)
class NameRefused:
    """Another live broker holds our name: this one must stop (redis_registry.NameTaken)."""

    message: str


@dataclass(frozen=True, slots=True)
class Paused:
    """The queues paused mesh-wide (zeromesh:paused), read every period."""

    queues: frozenset[str]


@dataclass(frozen=True, slots=True)
class RedisStats:
    """For metrics, each period: a PING's round trip, and each queue's scheduled jobs (ZCARD)."""

    rtt_ms: float
    scheduled: dict[str, int]


@dataclass(frozen=True, slots=True)
class AdminAnswer:
    """An AdminQuery's answer, or its (code, message) error."""

    token: int
    result: dict | None
    error: tuple[str, str] | None


# -- commands: router -> link ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriteJobs:
    """RPUSH jobs to `key`: a queue (spilled) or our in-flight list (durable). Answered by Written."""

    retried: ClassVar[bool] = False
    token: int
    key: str
    items: list[tuple[str, bytes, dict | None, str | None]]  # (id, body, headers, trace)
    raw: bool
    queue: str
    durable: bool = False  # confirmed only once enough replicas have it (WAIT)

    def failed(self, message: str) -> Written:
        return Written(self.token, None, message)


@dataclass(frozen=True, slots=True)
class ScheduleJobs:
    """Schedule jobs in Redis (schedule.lua), each for its due time; confirmed, like a durable
    write, once enough replicas have them. Answered by Written."""

    retried: ClassVar[bool] = False
    token: int
    queue: str
    items: list[tuple[str, bytes, dict | None, str | None, int]]  # (id, body, headers, trace, due ms)
    raw: bool

    def failed(self, message: str) -> Written:
        return Written(self.token, None, message)


@dataclass(frozen=True, slots=True)
class UniqueJobs:
    """Queue or schedule jobs that carry a unique key (unique.lua), one call each; confirmed like
    a durable write. Answered by UniqueWritten."""

    retried: ClassVar[bool] = False
    token: int
    queue: str
    items: list[tuple[str, bytes, dict | None, str | None, int | None, str, int]]
    # (id, body, headers, trace, due ms or None, unique key, TTL ms: 0 until done)
    raw: bool

    def failed(self, message: str) -> UniqueWritten:
        return UniqueWritten(self.token, None, message)


@dataclass(frozen=True, slots=True)
class ReleaseUnique:
    """Free unique keys whose jobs are done: (key, job id) pairs."""

    retried: ClassVar[bool] = True
    pairs: list[tuple[str, str]]

    def failed(self, message: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class FetchJobs:
    """Move up to `count` jobs from the queue to our in-flight list. Answered by Fetched."""

    retried: ClassVar[bool] = False
    queue: str
    count: int
    raw: bool

    def failed(self, message: str) -> Fetched:
        return Fetched(self.queue, self.count, [])


@dataclass(frozen=True, slots=True)
class AckJobs:
    """LREM acked jobs' elements from our in-flight list."""

    retried: ClassVar[bool] = True
    queue: str
    elements: list[bytes]

    def failed(self, message: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Move a job to zeromesh:dead:<queue>: `dead` is its envelope; `element` its in-flight copy, if any."""

    retried: ClassVar[bool] = True
    queue: str
    element: bytes | None
    dead: bytes

    def failed(self, message: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Requeue:
    """Put jobs back at the head of their queue, in order (the shutdown hand-back)."""

    retried: ClassVar[bool] = True
    queue: str
    elements: list[bytes]

    def failed(self, message: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """Append an invalidation event to the capped stream, for subscribers that missed it."""

    retried: ClassVar[bool] = True
    topic: str
    seq: int
    epoch: str
    body: bytes
    broker: str = ""

    def failed(self, message: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class AdminQuery:
    """An ADMIN op answered from Redis (dead letters, replay, purge, trace). Answered by AdminAnswer."""

    retried: ClassVar[bool] = False
    token: int
    op: str
    args: dict[str, Any]

    def failed(self, message: str) -> AdminAnswer:
        return AdminAnswer(self.token, None, (wire.E_UNAVAILABLE, message))


@dataclass(frozen=True, slots=True)
class SetPaused:
    """Pause (SADD) or resume (SREM) a queue mesh-wide."""

    retried: ClassVar[bool] = True
    queue: str
    paused: bool

    def failed(self, message: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class CheckInflight:
    """Answer to InflightUnsure: `keep` are the in-flight elements of the jobs the router holds
    (queued, leased, waiting to retry; acks sent before this); every other element in our
    in-flight list of the queue goes back to its head. A check of an older round is dropped."""

    retried: ClassVar[bool] = False  # a failed check is asked for again at the next connect
    queue: str
    keep: list[bytes]
    round: int

    def failed(self, message: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Stop:
    """Finish what was submitted, waiting for Redis until `deadline` (monotonic), then end the thread."""

    retried: ClassVar[bool] = False
    deadline: float

    def failed(self, message: str) -> None:
        return None


Command = (
    WriteJobs
    | ScheduleJobs
    | UniqueJobs
    | ReleaseUnique
    | FetchJobs
    | AckJobs
    | DeadLetter
    | Requeue
    | RecordEvent
    | AdminQuery
    | SetPaused
    | CheckInflight
    | Stop
)
Result = (
    Written
    | Fetched
    | LinkState
    | Backlog
    | Depths
    | Brokers
    | NameRefused
    | AdminAnswer
    | Paused
    | UniqueWritten
    | RedisStats
    | Released
    | InflightUnsure
)
