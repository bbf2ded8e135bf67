# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

# What a client promises at its edges, against real brokers: closing delivers
# what was sent; an unreachable broker is said so within connect_timeout,
# while a slow one keeps the caller's whole deadline; a failed push_many
# names the jobs to send again.
class DeliveryTest < Minitest::Test
  include TestSupport

  LIB = File.expand_path("../lib", __dir__)

  def setup
    @closers = []
    @name = "#{name.sub(/\Atest_/, "")[0, 40]}-#{SecureRandom.hex(3)}"
  end

  def teardown
    @closers.reverse_each(&:call)
  end

  def client_for(broker, **options)
    Zeromesh::Client.new(endpoint: broker.endpoint, pub_endpoint: broker.pub_endpoint, **options)
                    .tap { |c| @closers << -> { c.close } }
  end

  # -- close delivers what was sent --------------------------------------------

  def test_a_process_that_publishes_and_exits_at_once_delivers_every_event
    broker = TestSupport.broker
    client = client_for(broker)
    sub = client.subscribe(@name)
    # The subscription is in place once a probe published after it comes back.
    wait_until(10, "a probe event") do
      client.publish("#{@name}.probe", "p")
      event = sub.next(timeout: 0.1)
      event && event.topic == "#{@name}.probe"
    end
    script = <<~RUBY
      require "zeromesh"
      client = Zeromesh::Client.new(endpoint: ARGV[0])
      100.times { |i| client.publish(ARGV[1], i.to_s) }
      client.close
    RUBY
    pid = Process.spawn(RbConfig.ruby, "-I", LIB, "-e", script, broker.endpoint, "#{@name}.ev")
    status = TestSupport.reap(pid, 15)
    assert status&.success?, "the publisher exited with #{status.inspect}"
    got = []
    deadline = Zeromesh::Clock.now + scaled(5)
    while got.size < 100 && (event = sub.next(timeout: [deadline - Zeromesh::Clock.now, 0].max))
      got << event.body if event.topic == "#{@name}.ev"
    end
    assert_equal Array.new(100) { |i| i.to_s }, got, "every event published before close, in order"
  end

  def test_linger_and_connect_timeout_must_be_seconds
    assert_raises(ArgumentError) { Zeromesh::Client.new(linger: -1) }
    assert_raises(ArgumentError) { Zeromesh::Client.new(connect_timeout: "1") }
  end

  # -- an unreachable broker ---------------------------------------------------

  def test_every_waiting_call_says_unreachable_within_about_connect_timeout
    endpoint = "tcp://127.0.0.1:#{TestSupport.free_port}" # freed just now: nothing listens there
    client = Zeromesh::Client.new(endpoint: endpoint, connect_timeout: 0.5)
    @closers << -> { client.close }
    calls = {
      "push" => -> { client.push("q", "x", timeout: 10) },
      "push_many" => -> { client.push_many("q", %w[a b c], timeout: 10) },
      "request" => -> { client.request("s", "x", timeout: 10) },
      "admin status" => -> { client.status },
      "ping" => -> { client.ping(timeout: 10) }
    }
    calls.each do |what, call|
      started = Zeromesh::Clock.now
      error = assert_raises(Zeromesh::UnreachableError, what) { call.call }
      took = Zeromesh::Clock.now - started
      assert_operator took, :>=, 0.45, "#{what} waited its connect_timeout"
      assert_operator took, :<, scaled(2), "#{what} gave up near connect_timeout, not at its deadline"
      assert error.message.start_with?("cannot reach the broker at #{endpoint}"), error.message
      assert_equal "unreachable", error.code
    end
  end

  def test_pushes_that_cannot_reach_the_broker_say_how_many_are_unconfirmed
    endpoint = "tcp://127.0.0.1:#{TestSupport.free_port}"
    client = Zeromesh::Client.new(endpoint: endpoint, connect_timeout: 0.3)
    @closers << -> { client.close }
    one = assert_raises(Zeromesh::UnreachableError) { client.push("q", "x") }
    assert_match(/\(1 job\(s\) not confirmed\)\z/, one.message)
    many = assert_raises(Zeromesh::UnreachableError) { client.push_many("q", %w[a b c]) }
    assert_match(/\(3 job\(s\) not confirmed\)\z/, many.message)
    assert_equal [[], %w[a b c]], [many.accepted, many.unconfirmed.map(&:last)]
  end

  def test_a_slow_service_keeps_the_whole_deadline
    broker = TestSupport.broker
    client = client_for(broker, connect_timeout: 0.3)
    release = Queue.new
    worker = Zeromesh::Worker.new(endpoint: broker.endpoint, heartbeat_s: 0.5)
    worker.handle(@name) { |_job| release.pop }
    worker.start
    @closers << -> { worker.stop(grace: 1) }
    @closers << -> { release.close }
    assert worker.wait_ready(scaled(5))
    started = Zeromesh::Clock.now
    assert_raises(Zeromesh::TimeoutError) { client.request(@name, "x", timeout: 1.5) }
    assert_operator Zeromesh::Clock.now - started, :>=, 1.5
  end

  def test_a_frozen_broker_still_connected_keeps_the_whole_deadline
    broker = TestSupport::Broker.new.start
    @closers << -> { broker.stop }
    client = client_for(broker, connect_timeout: 0.3)
    client.ping
    Process.kill("STOP", broker.pid)
    begin
      started = Zeromesh::Clock.now
      assert_raises(Zeromesh::TimeoutError) { client.ping(timeout: 1.5) }
      assert_operator Zeromesh::Clock.now - started, :>=, 1.5
    ensure
      Process.kill("CONT", broker.pid)
    end
  end

  # A link that was live gets RECONNECT_GRACE_S (a restart takes a second or two) before
  # the call gives up, whatever connect_timeout says.
  def test_a_broker_killed_mid_call_is_unreachable_after_the_reconnect_grace
    broker = TestSupport::Broker.new.start
    @closers << -> { broker.stop }
    client = client_for(broker, connect_timeout: 0.5)
    client.ping
    Process.kill("KILL", broker.pid)
    TestSupport.reap(broker.pid, 5)
    started = Zeromesh::Clock.now
    assert_raises(Zeromesh::UnreachableError) { client.request("s", "x", timeout: 10) }
    took = Zeromesh::Clock.now - started
    assert_operator took, :>=, Zeromesh::LinkMonitor::RECONNECT_GRACE_S - 0.1
    assert_operator took, :<, Zeromesh::LinkMonitor::RECONNECT_GRACE_S + scaled(2)
  end

  # -- push_many names what it did not deliver -----------------------------------

  def test_push_many_refused_part_way_carries_the_unconfirmed_jobs_in_order
    small = TestSupport::Broker.new(config_text: "[queues.small]\nmax_depth = 20\n").start
    @closers << -> { small.stop }
    client = client_for(small)
    bodies = Array.new(50) { |i| "b#{i}" }
    error = assert_raises(Zeromesh::QueueFullError) { client.push_many("small", bodies, batch: 10, window: 30) }
    assert_equal 20, error.accepted.size
    assert_equal 30, error.unconfirmed.size
    unconfirmed_ids = error.unconfirmed.map(&:first)
    assert_empty unconfirmed_ids & error.accepted
    assert_equal error.unconfirmed.sort_by { |_, body| body[1..].to_i }, error.unconfirmed, "in the order of bodies"
    # The queued bodies and the unconfirmed ones are all the bodies, each once.
    handled = Queue.new
    worker = Zeromesh::Worker.new(endpoint: small.endpoint, heartbeat_s: 0.5)
    worker.handle("small") { |job| handled << [job.id, job.body] }
    worker.start
    @closers << -> { worker.stop(grace: 1) }
    wait_until(10, "the queued jobs") { handled.size == 20 }
    queued = Array.new(20) { handled.pop }
    assert_equal error.accepted.sort, queued.map(&:first).sort
    assert_equal bodies.sort, (queued.map(&:last) + error.unconfirmed.map(&:last)).sort
    # Sending the unconfirmed ones again (once there is room) queues them.
    wait_until(10, "the queue to drain") { client.status["queues"]["small"]["depth"].zero? }
    again = client.push_many("small", error.unconfirmed.first(20).map(&:last))
    assert_equal 20, again.size
  end
end
