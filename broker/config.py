# SPDX-License-Identifier: MIT
"""Broker configuration: defaults, the TOML file (`--config`), overrides from the CLI.

Example file (every key optional):

    [broker]
    heartbeat_s = 1.0
    shutdown_grace_s = 5.0
    curve_secret = "keys/broker.key_secret"   # CURVE on: this broker's key pair
    curve_clients = "keys/clients"             # and the directory of allowed clients' *.key

    [queue_defaults]          # queues first seen at run time
    max_depth = 100000

    [queues.emails]
    max_attempts = 3
    lease_s = 300

    [services.render]
    max_pending = 5000
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from typing import Any

from zeromesh.protocol import defaults, wire

from .schedules import Schedule, ScheduleError, parse_schedules


@dataclass(frozen=True)
class QueueConfig:
    max_depth: int = defaults.QUEUE_MAX_DEPTH
    max_attempts: int = defaults.QUEUE_MAX_ATTEMPTS
    lease_s: float = defaults.QUEUE_LEASE_S
    dead_letter_max: int = defaults.DEAD_LETTER_MAX
    durable: bool = False  # every job written to Redis before the push is confirmed
    raw: bool = False  # Redis elements are the body bytes alone (no envelope)
    max_per_second: float = 0.0  # jobs dispatched per second, mesh-wide (0: no limit)
    max_in_flight: int = 0  # jobs held by workers at once, mesh-wide (0: no limit)
    # A NACKed job waits base * factor^(attempt-1) seconds (capped, +-jitter) before its next attempt.
    retry_base_s: float = 1.0  # 0: retry at once
    retry_factor: float = 4.0
    retry_max_s: float = 600.0
    retry_jitter: float = 0.2  # a fraction of the delay, up or down


@dataclass(frozen=True)
class ServiceConfig:
    max_pending: int = defaults.SERVICE_MAX_PENDING
    max_attempts: int = defaults.SERVICE_MAX_ATTEMPTS


@dataclass(frozen=True)
class BrokerConfig:
    endpoint: str = defaults.BROKER_ENDPOINT
    pub_endpoint: str = defaults.PUB_ENDPOINT
    max_message: int = defaults.MAX_MESSAGE
    heartbeat_s: float = defaults.HEARTBEAT_S
    liveness: int = defaults.HEARTBEAT_LIVENESS
    shutdown_grace_s: float = 5.0
    trace_history: int = defaults.TRACE_HISTORY
    trace_keep: int = 10_000  # messages the trace log keeps (trace_events, SPEC 12.1); 0: no trace log
    trace_keep_s: float = 900.0  # and for at most this many seconds
    name: str = "main"  # Redis consumer @broker:<name> holds this broker's jobs (default_name)
    advertise: str = ""  # the endpoint others use, registered in Redis (default: the bound one)
    advertise_pub: str = ""  # the PUB endpoint others use (default: the bound one)
    redis_url: str = ""  # empty: no Redis (tests of the pure router only)
    recovery_s: float = 30.0  # a direct Redis consumer silent this long is dead
    min_replicas: int = -1  # replicas a durable write must reach (WAIT); -1: 1 if the primary has any
    redis_wait_ms: int = 500  # how long a durable write waits for them
    curve_secret: str = ""  # this broker's secret certificate: CURVE and ZAP on every socket
    curve_clients: str = ""  # directory of the allowed clients' public certificates (*.key)
    insecure: bool = False  # allow binding beyond loopback without CURVE
    metrics: str = ""  # HOST:PORT to serve Prometheus metrics on ("": off)
    queue_defaults: QueueConfig = QueueConfig()
    service_defaults: ServiceConfig = ServiceConfig()
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    services: dict[str, ServiceConfig] = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()  # periodic jobs ([[schedules]])

    def queue(self, name: str) -> QueueConfig:
        return self.queues.get(name, self.queue_defaults)

    def service(self, name: str) -> ServiceConfig:
        return self.services.get(name, self.service_defaults)


class ConfigError(ValueError):
    """The config file is unreadable or names an unknown or mistyped key."""


# The annotation of a config field (a string under `from __future__ import annotations`) -> what a value must be.
_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str, "bool": bool}


_ZERO_ALLOWED = {
    "min_replicas",
    "trace_keep",
    "max_per_second",
    "max_in_flight",
    "retry_base_s",
    "retry_jitter",
}  # 0: confirm durable writes without waiting for any replica

_LOOPBACK_HOSTS = {"localhost", "::1", "[::1]"}


def _is_local(endpoint: str) -> bool:
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    host = rest.rsplit(":", 1)[0]
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def default_name(endpoint: str, pub_endpoint: str, hostname: str) -> str:
    """`main` when every bound endpoint is loopback (or ipc/inproc): one machine, one broker by
    default; otherwise HOSTNAME-PORT (the ROUTER's port), unique per machine and port."""
    if _is_local(endpoint) and _is_local(pub_endpoint):
        return "main"
    port = endpoint.rsplit(":", 1)[-1] if endpoint.startswith("tcp://") else "0"
    return f"{hostname.split('.')[0]}-{port}"


def advertised(endpoint: str, hostname: str) -> str:
    """The endpoint others can use for one bound on every interface: this host's name in its place."""
    scheme, _, rest = endpoint.partition("://")
    host, colon, port = rest.rpartition(":")
    if scheme == "tcp" and colon and host in ("0.0.0.0", "*", "[::]", "::"):
        return f"tcp://{hostname}:{port}"
    return endpoint


def _build(cls: type, data: Any, where: str, base: Any = None) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in data.items():
        f = known.get(key)
        if f is None or f.type not in ("int", "float", "str", "bool"):
            raise ConfigError(f"{where}: unknown key '{key}'")
        typed = isinstance(value, _PYTHON_TYPES[f.type])  # not inline: mypy would narrow `value` to object
        if isinstance(value, bool) != (f.type == "bool") or not typed:
            raise ConfigError(f"{where}.{key} must be {f.type}, got {value!r}")
        if key in _ZERO_ALLOWED and value < 0:
            raise ConfigError(f"{where}.{key} must be 0 or more, got {value!r}")
        if f.type in ("int", "float") and value <= 0 and key not in _ZERO_ALLOWED:
            raise ConfigError(f"{where}.{key} must be positive, got {value!r}")
        values[key] = float(value) if f.type == "float" else value
    return replace(base if base is not None else cls(), **values)


def load_config(path: str | None = None, hostname: str = "localhost", **overrides: Any) -> BrokerConfig:
    """Defaults, then the TOML file at `path`, then non-None `overrides`; a name set by neither is
    default_name() of the endpoints and `hostname`."""
    config = BrokerConfig()
    named = overrides.get("name") is not None
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        unknown = set(data) - {"broker", "queue_defaults", "service_defaults", "queues", "services", "schedules"}
        if unknown:
            raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}")
        config = _build(BrokerConfig, data.get("broker", {}), "broker", config)
        named = named or "name" in data.get("broker", {})
        qdef = _build(QueueConfig, data.get("queue_defaults", {}), "queue_defaults")
        sdef = _build(ServiceConfig, data.get("service_defaults", {}), "service_defaults")
        queues = {name: _build(QueueConfig, t, f"queues.{name}", qdef) for name, t in data.get("queues", {}).items()}
        services = {
            name: _build(ServiceConfig, t, f"services.{name}", sdef) for name, t in data.get("services", {}).items()
        }
        try:
            schedules = parse_schedules(data.get("schedules", []))
        except ScheduleError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        config = replace(
            config, queue_defaults=qdef, service_defaults=sdef, queues=queues, services=services, schedules=schedules
        )
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if not named:
        config = replace(config, name=default_name(config.endpoint, config.pub_endpoint, hostname))
    config = replace(
        config,
        advertise=config.advertise or advertised(config.endpoint, hostname),
        advertise_pub=config.advertise_pub or advertised(config.pub_endpoint, hostname),
    )
    _check_security(config)
    if config.metrics and not _is_host_port(config.metrics):
        raise ConfigError(f"metrics must be HOST:PORT (like 127.0.0.1:9105), got {config.metrics!r}")
    if config.max_message < wire.MIN_BODY_LIMIT:
        # Clients batch bodies up to this size without knowing the broker's limit (SPEC section 5).
        raise ConfigError(
            f"the body limit (ZEROMESH_MAX_MESSAGE, broker.max_message) must be at least "
            f"{wire.MIN_BODY_LIMIT} bytes, got {config.max_message}"
        )
    return config


def _check_security(config: BrokerConfig) -> None:
    """CURVE needs both settings; leaving loopback without it must be deliberate."""
    if bool(config.curve_secret) != bool(config.curve_clients):
        missing = "curve_clients (--curve-clients DIR)" if config.curve_secret else "curve_secret (--curve-secret FILE)"
        raise ConfigError(f"CURVE needs the broker's secret key and the clients' key directory: {missing} is not set")
    if config.curve_secret or config.insecure:
        return
    exposed = [e for e in (config.endpoint, config.pub_endpoint) if not _is_local(e)]
    if exposed:
        raise ConfigError(
            f"refusing to bind {', '.join(exposed)} without CURVE: anyone who reaches it could push, call, "
            "read every event and purge dead letters. Give --curve-secret FILE --curve-clients DIR, "
            "or --insecure (broker.insecure = true) if this network is trusted"
        )


def _is_host_port(text: str) -> bool:
    host, colon, port = text.rpartition(":")
    return bool(colon and host and port.isdigit() and 0 < int(port) < 65536)
