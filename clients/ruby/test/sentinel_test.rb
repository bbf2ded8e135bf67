# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require_relative "sentinel_support"
require "zeromesh/redis_queue"

# RedisQueue through a redis+sentinel:// URL against real processes: a primary, a replica and
# three sentinels. The primary is SIGKILLed while a producer pushes and a consumer works; the
# sentinels promote the replica and the same two RedisQueue objects carry on, without a restart.
class SentinelTest < Minitest::Test
  # After the sentinels agree on the new primary, the queue must work again within this.
  BACK_WITHIN_S = 5.0

  def setup
    @cluster = TestSupport::SentinelCluster.new.start
    @queues = []
  end

  def teardown
    @queues.each(&:close)
    if failures.any? || ENV["ZEROMESH_TEST_VERBOSE"]
      warn @cluster.logs.join("\n")
      warn @log&.string
    end
    @cluster.stop
  end

  def queue(**options)
    @log ||= StringIO.new
    logger = Logger.new(@log, progname: "sentinel-test")
    Zeromesh::RedisQueue.new(queue: "orders", redis_url: @cluster.url, logger: logger, **options)
                        .tap { |q| @queues << q }
  end

  def test_push_and_work_follow_a_failover_and_nothing_confirmed_is_lost
    producer = queue
    consumer = queue(consumer: "c1", heartbeat_s: 0.5)
    assert_equal "job-first", producer_push(producer, "job-first")
    confirmed = Queue.new # [body, monotonic time of its confirmation]
    handled = Queue.new   # [body, monotonic time]
    errors = Queue.new
    stop_pushing = false

    worker = Thread.new { consumer.work(timeout: 0.2) { |job| handled << [job.text, Zeromesh::Clock.now] } }
    pusher = Thread.new do
      i = 0
      until stop_pushing
        body = "job-#{i += 1}"
        begin
          producer.push(body)
          confirmed << [body, Zeromesh::Clock.now]
        rescue Zeromesh::Error => e
          errors << "#{body}: #{e.class}: #{e.message}"
        end
        sleep 0.01
      end
    end

    TestSupport.wait_until(10, "50 jobs confirmed before the kill") { confirmed.size >= 50 }
    primary = @cluster.primary_port
    @cluster.kill_primary
    killed_at = Zeromesh::Clock.now
    TestSupport.wait_until(15, "the sentinels promoting the replica", interval: 0.05) do
      @cluster.primary_by_sentinels == @cluster.replica_port
    end
    promoted_at = Zeromesh::Clock.now
    before = confirmed.size
    TestSupport.wait_until(BACK_WITHIN_S, "a push confirmed by the new primary") { confirmed.size >= before + 1 }
    TestSupport.wait_until(10, "50 more jobs confirmed after the failover") { confirmed.size >= before + 50 }
    stop_pushing = true
    assert pusher.join(TestSupport.scaled(20)), "the producer stops"

    pushed = drain(confirmed)
    bodies = ["job-first"] + pushed.map(&:first)
    TestSupport.wait_until(15, "every confirmed job handled", interval: 0.1) do
      (bodies - peek(handled).map(&:first)).empty?
    end
    consumer.stop
    assert worker.join(TestSupport.scaled(10)), "work returns after stop"
    seen = drain(handled)

    # Recovery: the first confirmation and the first handled job at least 0.5 s after the
    # kill (no primary takes writes then: the sentinels wait 1 s before calling it down).
    pushed_again = pushed.map(&:last).find { |t| t > killed_at + 0.5 }
    handled_again = seen.map(&:last).find { |t| t > killed_at + 0.5 }
    seen_bodies = seen.map(&:first)
    lost = bodies - seen_bodies
    duplicates = seen_bodies.size - seen_bodies.uniq.size
    puts format("\nsentinel failover (primary :%<old>d SIGKILLed, replica :%<new>d promoted): " \
                "promoted %<promote>.2fs after the kill; pushes back %<push>.2fs and handling back %<work>.2fs " \
                "after promotion; confirmed %<confirmed>d, handled %<handled>d, lost %<lost>d, " \
                "duplicates %<dups>d, push errors %<errors>d",
                old: primary, new: @cluster.replica_port, promote: promoted_at - killed_at,
                push: pushed_again - promoted_at, work: handled_again - promoted_at, confirmed: bodies.size,
                handled: seen_bodies.uniq.size, lost: lost.size, dups: duplicates, errors: errors.size)

    assert_empty lost, "confirmed jobs never handled"
    assert_empty drain(errors), "a push failed although Redis came back within retry_s"
    assert_operator pushed_again - promoted_at, :<=, TestSupport.scaled(BACK_WITHIN_S)
    assert_operator handled_again - promoted_at, :<=, TestSupport.scaled(BACK_WITHIN_S)
    assert_match(/Redis lost/, @log.string, "an outage is logged")
    assert_match(/Redis back after/, @log.string, "and its end")
    check = @cluster.connection(@cluster.replica_port)
    assert_equal [0, 0], [check.llen("zeromesh:queue:orders"), check.llen("zeromesh:inflight:orders:c1")],
                 "nothing left queued or in flight"
  ensure
    stop_pushing = true
    consumer&.stop
    check&.close
  end

  def test_a_push_waits_for_the_replica_and_says_when_it_is_not_there
    producer = queue(wait_ms: 200)
    producer.push("replicated")
    replica = @cluster.connection(@cluster.replica_port)
    assert_equal 1, replica.llen("zeromesh:queue:orders"), "confirmed only once the replica holds it (WAIT)"

    strict = queue(min_replicas: 2, wait_ms: 200) # more replicas than there are
    error = assert_raises(Zeromesh::UnavailableError) { strict.push("short") }
    assert_match(/stored on 1 of 2 replicas within 200 ms/, error.message)
    assert_equal "unavailable", error.code
    from_url = Zeromesh::RedisQueue.new(queue: "orders", redis_url: "#{@cluster.url}?min_replicas=2", wait_ms: 200)
    @queues << from_url
    assert_raises(Zeromesh::UnavailableError) { from_url.push("short") }
  ensure
    replica&.close
  end

  private

  def producer_push(queue, body)
    queue.push(body)
    body
  end

  def drain(queue)
    Array.new(queue.size) { queue.pop }
  end

  # The items of a Queue, left in it.
  def peek(queue)
    items = drain(queue)
    items.each { |item| queue << item }
    items
  end
end
