# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# The Ruby side of bench/polyglot_bench.py; the same roles, arguments and JSON lines as
# bench_py.py. Pushes go through Client#push_many with its defaults (window 5000, 250 jobs
# a message), as bench_py.py's do; --threads is accepted and unused, as there.
$LOAD_PATH.unshift(File.expand_path("../../clients/ruby/lib", __dir__))
require "json"
require "optparse"
require "zeromesh"

def clock
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def emit(fields)
  $stdout.puts(JSON.generate(fields))
  $stdout.flush
end

role = ARGV.shift
opts = { concurrency: 4, credit: 500, size: 100, threads: 16, callers: 8, seconds: 3.0, warmup: 0.5 }
OptionParser.new do |o|
  o.on("--queue Q") { |v| opts[:queue] = v }
  o.on("--service S") { |v| opts[:service] = v }
  o.on("--total N", Integer) { |v| opts[:total] = v }
  o.on("--mark N", Integer) { |v| opts[:mark] = v }
  o.on("--concurrency N", Integer) { |v| opts[:concurrency] = v }
  o.on("--credit N", Integer) { |v| opts[:credit] = v }
  o.on("--n N", Integer) { |v| opts[:n] = v }
  o.on("--warm N", Integer) { |v| opts[:warm] = v }
  o.on("--size N", Integer) { |v| opts[:size] = v }
  o.on("--threads N", Integer) { |v| opts[:threads] = v }
  o.on("--callers N", Integer) { |v| opts[:callers] = v }
  o.on("--seconds S", Float) { |v| opts[:seconds] = v }
  o.on("--warmup S", Float) { |v| opts[:warmup] = v }
end.parse!(ARGV)

case role
when "worker"
  worker = Zeromesh::Worker.new(concurrency: opts[:concurrency], credit: opts[:credit], label: "bench-rb")
  lock = Mutex.new
  handled = 0
  worker.handle(opts[:queue]) do |_job|
    n = lock.synchronize { handled += 1 }
    emit(event: "mark", handled: n, t: clock) if n == opts[:mark]
    emit(event: "done", handled: n, t: clock) if n == opts[:total]
    nil
  end
  worker.handle(opts[:service], &:body)
  worker.start
  abort("bench.rb worker: not registered within 10 s") unless worker.wait_ready(10)
  emit(event: "ready")
  $stdin.read # until the parent closes our stdin
  worker.stop(grace: 2)
when "push"
  client = Zeromesh::Client.new
  client.ping
  body = "x" * opts[:size]
  client.push_many(opts[:queue], Array.new(opts[:warm], body), timeout: 30)
  emit(event: "warm-pushed")
  $stdin.gets # "go": the worker has handled the warm-up jobs
  emit(event: "start", t: clock)
  ids = client.push_many(opts[:queue], Array.new(opts[:n], body), timeout: 60)
  emit(event: "confirmed", t: clock, n: ids.size, mode: "push_many (window 5000, 250 per message)")
  $stdin.read # alive until the parent has read our CPU time
  client.close
when "request"
  client = Zeromesh::Client.new
  client.ping
  body = "x" * opts[:size]
  start = clock + opts[:warmup]
  stop = start + opts[:seconds]
  emit(event: "window", start: start, end: stop)
  lats = Array.new(opts[:callers]) do
    Thread.new do
      mine = []
      loop do
        t0 = clock
        break if t0 >= stop

        client.request(opts[:service], body, timeout: 5)
        t1 = clock
        mine << (t1 - t0) if t0 >= start && t1 <= stop
      end
      mine
    end
  end.flat_map(&:value).sort
  emit(event: "result", calls: lats.size, window: opts[:seconds],
       p50_ms: lats.empty? ? nil : lats[lats.size / 2] * 1000, p99_ms: lats.empty? ? nil : lats[(lats.size * 0.99).to_i] * 1000)
  $stdin.read
  client.close
else
  abort("usage: bench.rb worker|push|request ...")
end
