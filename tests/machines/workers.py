# SPDX-License-Identifier: MIT
"""The machine tests' workers in three languages, all with the same command line and record:

    WORKER ENDPOINTS RECORD LABEL SLEEP_S CONCURRENCY CREDIT NAME...

serves each NAME (the durable queue and the request service), and for every job or request appends
"start ID ATTEMPT", sleeps SLEEP_S, appends "done ID" to RECORD, one write per line so that a
SIGKILL loses no line written; a request's reply is its body. Python runs
tests/integration/worker_main.py (its own flags, same record); Ruby a program given with -e over
clients/ruby/lib; Java a class compiled once per run against the client the Maven build makes
(tests/conformance/crosslang.py builds it, offline first, bounded).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..conformance.crosslang import RUBY_DRIVER, java_command, ruby_command
from ..conftest import ROOT
from ..processes import scaled

LANGUAGES = ("python", "ruby", "java")
WORKER_MAIN = ROOT / "tests" / "integration" / "worker_main.py"
JAVA_CLASS = "MachineWorker"
JAVAC_TIMEOUT_S = 120.0

RUBY_WORKER = r"""
require "zeromesh"
endpoints, record, label, sleep_s, concurrency, credit, *names = ARGV
out = File.open(record, "a")
out.sync = true # one write(2) per line: a SIGKILL loses no line written
lock = Mutex.new
note = ->(line) { lock.synchronize { out.write("#{line}\n") } }
worker = Zeromesh::Worker.new(endpoint: endpoints, label: label,
                              concurrency: Integer(concurrency), credit: Integer(credit))
names.each do |name|
  worker.handle(name) do |job|
    note.call("start #{job.id} #{job.attempt}")
    sleep(Float(sleep_s))
    note.call("done #{job.id}")
    job.body
  end
end
worker.run
"""

JAVA_WORKER = r"""
import io.zeromesh.Worker;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/** The machine tests' Java worker: see tests/machines/workers.py for its arguments and record. */
public class MachineWorker {
    private static FileOutputStream out;

    /** One write(2) per line (FileOutputStream does not buffer): a SIGKILL loses no line written. */
    private static synchronized void note(String line) throws IOException {
        out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
    }

    public static void main(String[] args) throws Exception {
        out = new FileOutputStream(args[1], true);
        long sleepMs = Math.round(Double.parseDouble(args[3]) * 1000);
        Worker worker = Worker.builder()
            .endpoint(args[0])
            .label(args[2])
            .concurrency(Integer.parseInt(args[4]))
            .credit(Integer.parseInt(args[5]))
            .build();
        for (int i = 6; i < args.length; i++) {
            worker.handle(args[i], job -> {
                note("start " + job.id() + " " + job.attempt());
                Thread.sleep(sleepMs);
                note("done " + job.id());
                return job.body();
            });
        }
        worker.run();
    }
}
"""

# Fewer JIT threads and a serial collector: three JVMs start beside brokers on two cores.
JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:CICompilerCount=1", "-Xmx256m"]


class WorkerPrograms:
    """How to start a worker of each language; the Ruby check and the Java build happen once, on first use
    (a missing toolchain skips, which CI=true turns into a failure)."""

    def __init__(self, build_dir: Path) -> None:
        self.build_dir = build_dir
        self._ruby: list[str] | None = None
        self._java: list[str] | None = None

    def command(self, language: str, endpoints: str, record: Path, label: str, names: list[str], **kw) -> list[str]:
        sleep_s, concurrency, credit = kw.get("sleep_s", 0.02), kw.get("concurrency", 2), kw.get("credit", 6)
        if language == "python":
            cmd = [sys.executable, str(WORKER_MAIN), "--endpoint", endpoints, "--record", str(record)]
            cmd += ["--label", label, "--sleep", str(sleep_s), "--concurrency", str(concurrency)]
            cmd += ["--credit", str(credit)]
            for name in names:
                cmd += ["--queue", name]
            return cmd
        args = [endpoints, str(record), label, str(sleep_s), str(concurrency), str(credit), *names]
        if language == "ruby":
            return [*self.ruby(), *args]
        if language == "java":
            return [*self.java(), *args]
        raise ValueError(f"no worker program for {language!r} (known: {', '.join(LANGUAGES)})")

    def ruby(self) -> list[str]:
        if self._ruby is None:
            self._ruby = [ruby_command()[0], "-I", str(RUBY_DRIVER.parents[1] / "lib"), "-e", RUBY_WORKER, "--"]
        return self._ruby

    def java(self) -> list[str]:
        if self._java is None:
            java, cp_flag, classpath, _main = java_command()
            javac = shutil.which("javac") or str(Path(java).resolve().parent / "javac")
            self.build_dir.mkdir(parents=True, exist_ok=True)
            source = self.build_dir / f"{JAVA_CLASS}.java"
            source.write_text(JAVA_WORKER)
            cmd = [javac, "-cp", classpath, "-d", str(self.build_dir), str(source)]
            try:
                built = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(JAVAC_TIMEOUT_S))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"javac {JAVA_CLASS}.java took longer than {JAVAC_TIMEOUT_S}s") from None
            if built.returncode != 0:
                raise AssertionError(f"javac {JAVA_CLASS}.java: exit {built.returncode}\n{built.stderr}")
            self._java = [java, *JVM_FLAGS, cp_flag, f"{self.build_dir}:{classpath}", JAVA_CLASS]
        return self._java


__all__ = ["LANGUAGES", "WorkerPrograms"]
