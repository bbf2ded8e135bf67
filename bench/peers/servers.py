# SPDX-License-Identifier: MIT
"""The peers' servers on loopback, each started on free ports and always stopped.

NatsServer: the nats-server binary that `make bench-peers` builds, with no config file.

RabbitNode: Debian's rabbitmq-server started as its own Erlang node, never the system
service: a node name of its own, AMQP, distribution and epmd ports picked free, its
mnesia, logs, config, enabled-plugins file (empty: no management plugin) and HOME (so
the Erlang cookie it creates is private too) under a temp dir. The start script runs in a
session of its own; stop() SIGTERMs it (the script then runs `rabbitmqctl stop`, which
finds the cookie through the same HOME), kills the session if that takes too long, and
stops the private epmd, which Erlang starts as a daemon outside the session.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import BenchError, _die_with_parent, free_port


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen, timeout: float, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after `timeout` (the whole process group when `group`)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    if group:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:
        proc.kill()
    proc.wait(5)


class NatsServer:
    """nats-server on 127.0.0.1 and a free port; its log goes to a temp file, kept if it did not start."""

    def __init__(self, binary: str) -> None:
        if not os.access(binary, os.X_OK):
            raise BenchError(f"nats-server not found at {binary} (make bench-peers builds it)")
        self.binary = binary
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._log = tempfile.NamedTemporaryFile(prefix="zeromesh-bench-nats-", suffix=".log", delete=False)
        self.failed = False

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        for _ in range(3):  # a free port can be taken between our probe and the server's bind
            self.port = free_port()
            cmd = [self.binary, "--addr", "127.0.0.1", "--port", str(self.port)]
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _listening(self.port):
                    return self
                time.sleep(0.05)
            _stop(self.proc, 5)
        self.failed = True
        raise BenchError(f"nats-server did not start; see {self._log.name}")

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().removeprefix("nats-server: ")

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc, 5)
        self._log.close()
        if not self.failed:  # keep the log only when something went wrong
            os.unlink(self._log.name)


class RabbitNode:
    """A private RabbitMQ node on loopback; `port` is its AMQP port (user guest, allowed on loopback only)."""

    def __init__(self, script: str) -> None:
        if not os.access(script, os.X_OK):
            raise BenchError(f"{script} not found: install Debian's rabbitmq-server (make bench-peers does, as root)")
        self.epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        self.script = script
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.dir = tempfile.mkdtemp(prefix="zeromesh-bench-rabbit-")
        self.env: dict[str, str] = {}
        self.failed = False

    def start(self, timeout: float = 60.0) -> RabbitNode:
        self.port, dist, epmd = free_port(), free_port(), free_port()
        home = os.path.join(self.dir, "home")
        for sub in ("home", "mnesia", "log"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        config = os.path.join(self.dir, "rabbitmq.conf")
        with open(config, "w") as f:
            f.write(f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users.guest = true\n")
        plugins = os.path.join(self.dir, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[].\n")
        self.env = {
            **os.environ,
            "HOME": home,
            "RABBITMQ_NODENAME": f"zeromesh-bench-{os.getpid()}@localhost",
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(epmd),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_CONFIG_FILE": config,
            "RABBITMQ_ENABLED_PLUGINS_FILE": plugins,
            "RABBITMQ_PID_FILE": os.path.join(self.dir, "rabbit.pid"),
            # Schedulers that sleep instead of busy-waiting: RabbitMQ's advice for shared CPUs. On
            # 2 cores shared with the clients (and other programs) the spinning takes their time.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+sbwt none +sbwtdcpu none +sbwtdio none",
        }
        log = open(os.path.join(self.dir, "server.out"), "wb")
        self.proc = subprocess.Popen(
            [self.script],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _listening(self.port) and self._amqp_ok():
                return self
            time.sleep(0.25)
        self.failed = True
        raise BenchError(f"RabbitMQ node did not start within {timeout:g}s; see {self.dir}/server.out and log/")

    def _amqp_ok(self) -> bool:
        import pika

        try:
            pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.port)).close()
            return True
        except Exception:
            return False

    def version(self) -> str:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc, 30, group=True)
        if self.env:
            subprocess.run(
                [self.epmd, "-kill"], env=self.env, capture_output=True, timeout=10
            )  # ours: ERL_EPMD_PORT is private
        if self.failed:
            print(f"RabbitMQ's files kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
