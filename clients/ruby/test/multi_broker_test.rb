# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# Several real brokers on loopback ports (standing in for machines), over one
# real redis-server: clients with endpoint lists fail over, workers serve
# every broker within their credit, subscribers hear every PUB.
class MultiBrokerTest < Minitest::Test
  include TestSupport

  FAILOVER_S = 1.5

  def setup
    @closers = []
    @brokers = []
    @queue = "mb-#{SecureRandom.hex(3)}"
    config = "[broker]\nrecovery_s = 2.0\n[queues.#{@queue}]\ndurable = true\n"
    redis = TestSupport.redis_server.url
    @brokers = Array.new(3) do |i|
      Broker.new(config_text: config, redis_url: redis, name: "b#{i}-#{SecureRandom.hex(2)}")
    end
    threads = @brokers.map { |b| Thread.new { b.start } }
    threads.each { |t| t.join(scaled(30)) or flunk("brokers did not start") }
    @endpoints = @brokers.map(&:endpoint).join(",")
    @pubs = @brokers.map(&:pub_endpoint).join(",")
  end

  def teardown
    @closers.reverse_each { |c| c.call rescue nil } # rubocop:disable Style/RescueModifier -- best-effort cleanup
    @brokers.each(&:stop)
  end

  # connect_timeout: a fresh client's first handshake on a loaded machine (the whole suite, CI)
  # can take past the default second; what these tests check is the move after a loss.
  def client(endpoint = @endpoints, **opts)
    opts = { connect_timeout: scaled(3) }.merge(opts)
    Zeromesh::Client.new(endpoint: endpoint, pub_endpoint: @pubs, failover_s: FAILOVER_S, **opts).tap do |c|
      @closers << -> { c.close }
    end
  end

  def worker(credit:, **handlers)
    w = Zeromesh::Worker.new(endpoint: @endpoints, concurrency: 2, credit: credit, label: "mb",
                             logger: Zeromesh.logger(progname: "worker", level: "WARN"))
    handlers.each { |name, fn| w.handle(name.to_s, fn) }
    w.start
    @closers << -> { w.stop(grace: 2) }
    w
  end

  # Wait until each caller (one pinned to each broker) gets an echo answered.
  def wait_registered(callers)
    callers.each do |c|
      wait_until(10, "the worker registered with #{c.endpoint}") do
        c.request("echo", "ping", timeout: 0.5) == "ping"
      rescue Zeromesh::NoRespondersError, Zeromesh::TimeoutError
        false
      end
    end
  end

  def test_a_worker_serves_every_broker_and_never_holds_more_than_its_credit
    credit = 5
    running = 0
    lock = Mutex.new
    w = worker(credit: credit, echo: lambda { |job|
      lock.synchronize { running += 1 }
      sleep 0.01
      lock.synchronize { running -= 1 }
      job.body
    })
    peak = 0
    sampling = true
    sampler = Thread.new do
      while sampling
        peak = [peak, lock.synchronize { running } + w.work.size].max
        sleep 0.002
      end
    end
    # A caller pinned to each broker: each can only be answered by a worker it holds.
    callers = @brokers.map { |b| client(b.endpoint) }
    wait_registered(callers)
    # 12 threads at once, more than the credit: the brokers queue what the worker may not hold.
    threads = callers.each_with_index.flat_map do |c, i|
      Array.new(4) { |t| Thread.new { Array.new(15) { |k| c.request("echo", "#{i}-#{t}-#{k}", timeout: scaled(20)) } } }
    end
    got = threads.flat_map(&:value)
    assert_equal 180, got.size
    assert_equal 180, got.uniq.size
    sampling = false
    sampler.join
    puts "\nworker of credit #{credit} over 3 brokers: at most #{peak} held at once"
    assert_operator peak, :<=, credit
  end

  def test_a_broker_sigkilled_mid_stream_loses_no_confirmed_push_and_requests_recover
    handled = Hash.new(0)
    lock = Mutex.new
    worker(credit: 8, @queue => ->(job) { lock.synchronize { handled[job.id] += 1 } },
                      echo: ->(job) { job.body })
    producer = client
    victim = @brokers.find { |b| b.endpoint == producer.endpoint }
    # A caller that starts on the same broker (each client picks one at random).
    caller = nil
    50.times do
      caller = client
      break if caller.endpoint == victim.endpoint
    end
    assert_equal victim.endpoint, caller.endpoint
    # The worker starts with all three brokers at once: the move after the kill
    # must find it registered wherever the caller lands.
    wait_registered(@brokers.map { |b| client(b.endpoint) })

    confirmed = []
    total = 400
    pusher = Thread.new do
      total.times do |i|
        confirmed << producer.push(@queue, "job #{i}", timeout: scaled(30))
        sleep 0.002
      end
    end
    wait_until(10, "some pushes confirmed") { confirmed.size >= total / 4 }
    victim.kill
    killed_at = Zeromesh::Clock.now
    recovered_at = nil
    deadline = killed_at + scaled(FAILOVER_S * 2 + 5)
    until recovered_at || Zeromesh::Clock.now >= deadline
      begin
        recovered_at = Zeromesh::Clock.now if caller.request("echo", "after", timeout: 1.0, idempotent: true) == "after"
      rescue Zeromesh::UnreachableError, Zeromesh::TimeoutError
        nil
      end
    end
    assert pusher.join(scaled(60)), "the producer hung"
    assert_equal total, confirmed.size
    assert_equal total, confirmed.uniq.size
    refute_equal victim.endpoint, producer.endpoint
    refute_nil recovered_at, "no request succeeded within #{FAILOVER_S * 2 + 5}s of the kill"

    wait_until(30, "every confirmed push handled") { lock.synchronize { confirmed.all? { |id| handled[id].positive? } } }
    duplicates = lock.synchronize { handled.values.sum { |n| n - 1 } }
    failover = recovered_at - killed_at
    puts format("\nbroker SIGKILLed: %d confirmed, %d handled, %d duplicate(s), first request after %.2fs",
                confirmed.size, lock.synchronize { handled.size }, duplicates, failover)
    assert_operator failover, :<=, FAILOVER_S + 2.0
  end

  def test_a_request_in_flight_on_a_lost_broker_fails_unless_idempotent
    released = false
    worker(credit: 4, slow: lambda { |job|
      deadline = Zeromesh::Clock.now + scaled(10)
      sleep 0.01 until released || Zeromesh::Clock.now >= deadline
      job.body
    })
    c = client
    victim = @brokers.find { |b| b.endpoint == c.endpoint }
    pending = Thread.new do
      # wait: the worker may not have registered with this broker yet (it starts with all three at once).
      c.request("slow", "x", timeout: scaled(15), wait: true)
    rescue Zeromesh::Error => e
      e
    end
    sleep 0.5 # the request is with the worker, through the victim
    victim.kill
    error = pending.value
    assert_kind_of Zeromesh::UnreachableError, error
    assert_equal "broker #{victim.endpoint} lost with the request in flight; not resent (not idempotent)", error.message

    idem = Thread.new { c.request("slow", "y", timeout: scaled(15), idempotent: true) }
    sleep 0.2
    released = true
    assert_equal "y", idem.value
  end

  def test_all_brokers_down_is_cannot_reach_any
    @brokers.each(&:kill)
    c = client(connect_timeout: 0.5)
    error = assert_raises(Zeromesh::UnreachableError) { c.push(@queue, "x", timeout: scaled(20)) }
    assert_equal "cannot reach any broker of #{@endpoints} (1 job(s) not confirmed)", error.message
  end

  def test_a_subscriber_hears_events_published_through_each_broker
    sub = client.subscribe("mb.")
    publishers = @brokers.map { |b| client(b.endpoint) }
    seen = {}
    wait_until(10, "an event through every broker") do
      publishers.each_with_index { |p, i| p.publish("mb.#{i}", "from #{i}") }
      while (event = sub.next(timeout: 0.05))
        seen[event.topic] = true
      end
      seen.size == 3
    end
    assert_equal %w[mb.0 mb.1 mb.2], seen.keys.sort
  end
end
