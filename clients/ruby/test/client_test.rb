# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# The Ruby client and worker against the real (Python) broker: every round
# trip here is Ruby on both ends, the broker only in between.
class ClientLiveTest < Minitest::Test
  include TestSupport

  def setup
    @broker = TestSupport.broker
    @client = Zeromesh::Client.new(endpoint: @broker.endpoint, pub_endpoint: @broker.pub_endpoint)
    @workers = []
    @name = "#{name.sub(/\Atest_/, "")}-#{SecureRandom.hex(3)}"
  end

  def teardown
    @workers.each { |w| w.stop(grace: scaled(2)) }
    @client.close
  end

  def start_worker(handlers, **options)
    worker = Zeromesh::Worker.new(endpoint: @broker.endpoint, heartbeat_s: 0.5, **options)
    handlers.each { |name, fn| worker.handle(name, fn) }
    @workers << worker.start
    # Otherwise a request could reach the broker before the worker's READY does.
    assert worker.wait_ready(scaled(5)), "worker not registered"
    worker
  end

  def test_ping_returns_the_epoch
    refute_empty @client.ping(timeout: scaled(5))
  end

  def test_push_is_handled_by_a_ruby_worker_and_acked
    jobs = Queue.new
    start_worker({ @name => ->(job) { jobs << job } })
    id = @client.push(@name, "cat.png", headers: { "content-type" => "image/png", size: 3 })
    job = wait_until(5, "the job") { jobs.empty? ? nil : jobs.pop }
    assert_equal [id, "cat.png", :job, 1, nil], [job.id, job.body, job.kind, job.attempt, job.error]
    assert_equal({ "content-type" => "image/png", "size" => 3 }, job.headers)
    assert_equal Encoding::BINARY, job.body.encoding
    wait_until(5, "the ACK") { %w[done unknown].include?(@client.admin("trace", id: id)["state"]) }
  end

  def test_a_failing_job_is_retried_with_the_error_then_dead_lettered
    attempts = Queue.new
    start_worker({ @name => lambda { |job|
      attempts << [job.attempt, job.error]
      raise ArgumentError, "bad image" if job.attempt == 1
      raise Zeromesh::DeadLetter, "give up" if job.attempt == 2
    } })
    id = @client.push(@name, "x")
    first = wait_until(5, "attempt 1") { attempts.empty? ? nil : attempts.pop }
    second = wait_until(5, "attempt 2") { attempts.empty? ? nil : attempts.pop }
    assert_equal [1, nil], first
    assert_equal [2, "ArgumentError: bad image"], second
    dead = wait_until(5, "the dead letter") { @client.admin("dead_letters", queue: @name)["items"]&.first }
    assert_equal id, dead["id"]
    assert_match(/DeadLetter: give up/, dead["error"])
  end

  def test_request_is_answered_by_a_ruby_service
    start_worker({ @name => ->(job) { Zeromesh::Reply.new("re:#{job.text}", { "n" => job.body.bytesize }) } })
    assert_equal "re:héllo".b, @client.request(@name, "héllo")
    reply = @client.request_full(@name, "abc", headers: { "accept" => "text/plain" })
    assert_equal ["re:abc", { "n" => 3 }], [reply.body, reply.headers]
    assert_equal Encoding::BINARY, @client.request(@name, "x").encoding
  end

  def test_requests_from_many_threads_get_their_own_answers
    start_worker({ @name => ->(job) { job.body * 2 } }, concurrency: 4)
    answers = Array.new(8) { |i| Thread.new { Array.new(10) { |n| @client.request(@name, "#{i}.#{n}") } } }.map(&:value)
    assert_equal(Array.new(8) { |i| Array.new(10) { |n| "#{i}.#{n}" * 2 } }, answers)
  end

  def test_a_raising_handler_is_a_remote_error_with_name_message_and_traceback
    start_worker({ @name => ->(_job) { Integer("nope") } })
    error = assert_raises(Zeromesh::RemoteError) { @client.request(@name, "x") }
    assert_equal "remote", error.code
    assert_equal "ArgumentError", error.name
    assert_match(/invalid value for Integer/, error.message)
    assert_match(/client_test\.rb/, error.remote_traceback)
  end

  def test_no_responders_at_once
    started = Zeromesh::Clock.now
    error = assert_raises(Zeromesh::NoRespondersError) { @client.request("nobody-#{@name}", "x", timeout: 5) }
    assert_equal "no_responders", error.code
    assert_operator Zeromesh::Clock.now - started, :<, scaled(2)
  end

  def test_a_slow_service_times_out_instead_of_hanging
    release = Queue.new
    start_worker({ @name => ->(_job) { release.pop } })
    started = Zeromesh::Clock.now
    error = assert_raises(Zeromesh::TimeoutError) { @client.request(@name, "x", timeout: 0.5) }
    assert_equal "timeout", error.code
    assert_operator Zeromesh::Clock.now - started, :<, scaled(3)
  ensure
    release&.close
  end

  def test_wait_queues_a_request_until_a_worker_registers
    answer = Thread.new { @client.request(@name, "late", timeout: scaled(5), wait: true) }
    sleep 0.3
    start_worker({ @name => ->(job) { job.body.upcase } })
    assert_equal "LATE", answer.value
  end

  def test_push_many_10000_jobs_are_each_handled_once_and_ids_come_in_order
    seen = Queue.new
    start_worker({ @name => ->(job) { seen << [job.id, job.body] } }, concurrency: 4, credit: 1000)
    count = 10_000
    ids = @client.push_many(@name, Array.new(count) { |i| "job-#{i}" })
    assert_equal count, ids.uniq.size
    wait_until(20, "every job handled and acked") do
      q = @client.status["queues"][@name] || {}
      q.values_at("acked", "depth", "in_flight") == [count, 0, 0]
    end
    handled = Array.new(seen.size) { seen.pop }
    assert_equal count, handled.size, "a job was handled twice"
    body_of = handled.to_h
    assert_equal ids.sort, body_of.keys.sort
    assert_equal Array.new(count) { |i| "job-#{i}" }, ids.map { |id| body_of[id] }, "ids in the order of the bodies"
  end

  def test_push_many_bodies_over_1_mib_in_one_message_arrive_whole
    bodies = Array.new(3) { |i| i.to_s * 400_000 } # 1.2 MB in one batch: sent as PUSH_BATCH
    got = Queue.new
    start_worker({ @name => ->(job) { got << [job.id, job.body] } })
    ids = @client.push_many(@name, bodies)
    wait_until(10, "the three jobs") { got.size == 3 }
    assert_equal ids.zip(bodies).sort, Array.new(3) { got.pop }.sort
  end

  def test_push_many_to_a_full_queue_raises_with_the_confirmed_ids
    small = TestSupport::Broker.new(config_text: "[queues.small]\nmax_depth = 20\n").start
    client = Zeromesh::Client.new(endpoint: small.endpoint)
    error = assert_raises(Zeromesh::QueueFullError) do
      client.push_many("small", Array.new(50) { |i| "b#{i}" }, batch: 10, window: 30)
    end
    assert_equal ["queue_full", 20], [error.code, error.accepted.size]
    assert_equal 20, client.status["queues"]["small"]["depth"]
    handled = Queue.new
    worker = Zeromesh::Worker.new(endpoint: small.endpoint, heartbeat_s: 0.5)
    worker.handle("small") { |job| handled << job.id }
    worker.start
    wait_until(10, "the queued jobs") { handled.size == 20 }
    assert_equal error.accepted.sort, Array.new(20) { handled.pop }.sort, "accepted names exactly the queued jobs"
  ensure
    worker&.stop(grace: scaled(2))
    client&.close
    small&.stop
  end

  def test_push_many_from_many_threads_at_once
    threads = Array.new(4) { |t| Thread.new { @client.push_many(@name, Array.new(500) { |i| "#{t}.#{i}" }, batch: 100) } }
    ids = threads.map { |thread| thread.join(scaled(10)) ? thread.value : flunk("push_many did not return") }
    assert_equal [500] * 4, ids.map(&:size)
    assert_equal 2000, ids.flatten.uniq.size
    assert_equal 2000, @client.status["queues"][@name]["depth"], "each thread's jobs confirmed to it, and queued once"
  end

  def test_push_many_of_nothing_is_nothing
    assert_equal [], @client.push_many(@name, [])
  end

  def test_python_cli_calls_a_ruby_service
    start_worker({ @name => ->(job) { "ruby says #{job.text}" } })
    out = IO.popen([TestSupport.python, "-m", "zeromesh", "request", "--endpoint", @broker.endpoint, @name, "hi"],
                   chdir: TestSupport.tmpdir, err: File::NULL, &:read)
    assert_equal "ruby says hi", out.strip
  end
end
