# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"
require "stringio"

# Worker lifetime against a real broker: signals, a broker restart, and a
# producer that outlives a broker outage.
class WorkerLiveTest < Minitest::Test
  include TestSupport

  LIB = File.expand_path("../lib", __dir__)

  def setup
    @closers = []
  end

  def teardown
    @closers.reverse_each(&:call)
  end

  def client_for(broker)
    Zeromesh::Client.new(endpoint: broker.endpoint, pub_endpoint: broker.pub_endpoint).tap { |c| @closers << -> { c.close } }
  end

  # Queue bodies before any worker is there, so their first deliveries go out
  # together, then serve them with a default worker: each arrives as its own
  # first-attempt job and is acked. The worker's debug log.
  def deliver_queued(prefix, bodies)
    broker = TestSupport.broker
    client = client_for(broker)
    queue = "#{prefix}-#{SecureRandom.hex(3)}"
    ids = bodies.map { |body| client.push(queue, body) }
    log = StringIO.new
    jobs = Queue.new
    worker = Zeromesh::Worker.new(endpoint: broker.endpoint, logger: Logger.new(log, level: Logger::DEBUG))
    worker.handle(queue) { |job| jobs << job }
    worker.start
    @closers << -> { worker.stop(grace: 1) }
    wait_until(10, "every job") { jobs.size == ids.size }
    got = Array.new(ids.size) { jobs.pop }.to_h { |job| [job.id, job] }
    assert_equal ids.sort, got.keys.sort
    ids.zip(bodies).each do |id, body|
      job = got[id]
      assert_equal [:job, queue, body, 1, id, nil, {}], [job.kind, job.name, job.body, job.attempt, job.trace, job.error, job.headers]
      assert job.lease_s&.positive?
    end
    wait_until(10, "the last job to be acked") { client.admin("trace", id: ids.last)["state"] == "done" }
    log.string
  end

  def test_run_stops_gracefully_on_sigterm
    broker = TestSupport.broker
    client = client_for(broker)
    service = "sig-#{SecureRandom.hex(3)}"
    script = <<~RUBY
      require "zeromesh"
      worker = Zeromesh::Worker.new(endpoint: ARGV[0])
      worker.handle(ARGV[1]) { |job| sleep 0.3; "done " + job.text }
      worker.run(grace: 5)
      puts "stopped cleanly"
    RUBY
    out_r, out_w = IO.pipe
    pid = Process.spawn(RbConfig.ruby, "-I", LIB, "-e", script, broker.endpoint, service, out: out_w, err: out_w)
    out_w.close
    @closers << -> { TestSupport.reap(pid, 1) && nil }
    wait_until(10, "the worker to serve") do
      client.request(service, "ping", timeout: 1, wait: true) == "done ping"
    rescue Zeromesh::TimeoutError
      false
    end
    # A request in flight when the signal comes is still answered.
    answer = Thread.new { client.request(service, "last", timeout: 5) }
    sleep 0.1
    Process.kill("TERM", pid)
    assert_equal "done last", answer.value
    status = TestSupport.reap(pid, 10)
    output = out_r.read
    assert status&.success?, "worker exited with #{status.inspect}:\n#{output}"
    assert_match(/stopped cleanly/, output)
  end

  # The block of #run is where a program says it runs: a SIGTERM right after that line
  # must already mean a graceful stop (with the default action, exit hung behind the I/O thread).
  def test_a_sigterm_sent_from_the_run_block_stops_gracefully
    broker = TestSupport.broker
    script = <<~'RUBY'
      require "zeromesh"
      worker = Zeromesh::Worker.new(endpoint: ARGV[0])
      worker.handle("sig-block") { |job| job.text }
      worker.run(grace: 2) do |running|
        puts "block #{running.equal?(worker)}"
        Process.kill("TERM", Process.pid)
      end
      puts "stopped cleanly"
    RUBY
    out_r, out_w = IO.pipe
    pid = Process.spawn(RbConfig.ruby, "-I", LIB, "-e", script, broker.endpoint, out: out_w, err: out_w)
    out_w.close
    @closers << -> { TestSupport.reap(pid, 1) && nil }
    status = TestSupport.reap(pid, scaled(15))
    output = out_r.read
    assert status&.success?, "worker exited with #{status.inspect}:\n#{output}"
    assert_match(/block true\n(.|\n)*stopped cleanly/, output)
  end

  # A script that ends, or dies of SIGTERM's default action, with a worker still running
  # exits at once (it hung: the context's finalizer waited for sockets of killed threads).
  def test_a_process_exits_with_a_worker_still_running
    broker = TestSupport.broker
    script = <<~'RUBY'
      require "zeromesh"
      worker = Zeromesh::Worker.new(endpoint: ARGV[0], logger: Zeromesh.logger($stdout))
      worker.handle("exit-running") { |job| job.text }
      worker.start
      worker.wait_ready(5) or abort "not ready"
      puts "ready"
      Process.kill("TERM", Process.pid) if ARGV[1] == "term"
      sleep 1 if ARGV[1] == "term"
    RUBY
    %w[end term].each do |how|
      out_r, out_w = IO.pipe
      pid = Process.spawn(RbConfig.ruby, "-I", LIB, "-e", script, broker.endpoint, how, out: out_w, err: out_w)
      out_w.close
      @closers << -> { TestSupport.reap(pid, 1) && nil }
      status = TestSupport.reap(pid, scaled(10))
      output = out_r.read
      refute_nil status, "#{how}: the process did not exit:\n#{output}"
      if how == "term"
        assert_equal Signal.list["TERM"], status.termsig, "#{how}: #{status.inspect}\n#{output}"
      else
        assert_equal 0, status.exitstatus, "#{how}: #{status.inspect}\n#{output}"
      end
      assert_match(/ready\n(.|\n)*stopping it now/, output)
    end
  end

  def test_worker_registers_again_after_a_broker_restart
    broker = Broker.new.start
    @closers << -> { broker.stop }
    client = client_for(broker)
    name = "restart-#{SecureRandom.hex(3)}"
    worker = Zeromesh::Worker.new(endpoint: broker.endpoint, heartbeat_s: 0.3)
    worker.handle(name) { |job| "v:#{job.text}" }
    worker.start
    @closers << -> { worker.stop(grace: 1) }
    assert worker.wait_ready(scaled(5))
    epoch = client.ping
    assert_equal "v:1", client.request(name, "1")

    broker.stop
    broker.start
    refute_equal epoch, client.ping(timeout: scaled(5))
    # The new broker knows no workers until ours says READY again.
    assert_equal "v:2", client.request(name, "2", timeout: scaled(8), wait: true)
  end

  def test_push_waits_out_a_broker_that_is_not_up_yet
    broker = Broker.new
    # connect_timeout: nil, so the push waits its whole timeout for a broker still starting.
    client = Zeromesh::Client.new(endpoint: broker.endpoint, connect_timeout: nil).tap { |c| @closers << -> { c.close } }
    queue = "late-#{SecureRandom.hex(3)}"
    pushed = Thread.new { client.push(queue, "patience", timeout: scaled(15)) }
    sleep 0.5
    broker.start
    @closers << -> { broker.stop }
    id = pushed.value
    jobs = Queue.new
    worker = Zeromesh::Worker.new(endpoint: broker.endpoint)
    worker.handle(queue) { |job| jobs << job }
    worker.start
    @closers << -> { worker.stop(grace: 1) }
    job = wait_until(5, "the job") { jobs.empty? ? nil : jobs.pop }
    assert_equal [id, "patience"], [job.id, job.body]
  end

  def test_a_batch_worker_gets_queued_jobs_as_job_packed
    bodies = Array.new(30) { |i| "job #{i}" }
    log = deliver_queued("packed", bodies)
    assert_match(/JOB_PACKED of \d+ job/, log, "the broker packs first deliveries for a worker that takes JOB_PACKED")
    refute_match(/JOB_BATCH of/, log)
  end

  def test_bodies_past_one_packed_frame_come_as_job_batch
    # Two bodies over half a MiB each do not fit one 1 MiB packed frame.
    bodies = Array.new(2) { |i| i.to_s * ((Zeromesh::Wire::MAX_PACKED_BYTES / 2) + 1) }
    log = deliver_queued("big", bodies)
    assert_match(/JOB_BATCH of 2 job/, log, "the broker falls back to JOB_BATCH past 1 MiB")
    refute_match(/JOB_PACKED of/, log)
  end

  def test_push_to_a_missing_broker_times_out
    client = Zeromesh::Client.new(endpoint: "tcp://127.0.0.1:#{TestSupport.free_port}")
    @closers << -> { client.close }
    started = Zeromesh::Clock.now
    assert_raises(Zeromesh::TimeoutError) { client.push("q", "x", timeout: 0.5) }
    assert_operator Zeromesh::Clock.now - started, :<, scaled(2)
  end
end
