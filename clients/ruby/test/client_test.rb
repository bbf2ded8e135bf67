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

  def test_python_cli_calls_a_ruby_service
    start_worker({ @name => ->(job) { "ruby says #{job.text}" } })
    out = IO.popen([TestSupport.python, "-m", "zeromesh", "request", "--endpoint", @broker.endpoint, @name, "hi"],
                   chdir: TestSupport.tmpdir, err: File::NULL, &:read)
    assert_equal "ruby says hi", out.strip
  end
end
