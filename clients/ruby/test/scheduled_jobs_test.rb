# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# Jobs for later and for once, the queue controls and a handler's own retry
# delay, against a real broker on a real redis-server (scheduled jobs and
# unique keys live in Redis, SPEC.md 16.5 and 16.6) with a real Worker.
class ScheduledJobsTest < Minitest::Test
  include TestSupport

  # Without a handler's own delay a failed job of this queue comes back within about 50 ms.
  QUICK_RETRY = "quick-retry"
  CONFIG = <<~TOML
    [queues.#{QUICK_RETRY}]
    retry_base_s = 0.05
    retry_factor = 1.0
    retry_jitter = 0.0

    [[schedules]]
    name = "christmas-cards"
    cron = "0 8 25 12 *"
    timezone = "Europe/Paris"
    queue = "send"
    body = "xmas"
  TOML

  # One broker on Redis for this class, started on first use.
  def self.broker
    @broker ||= Broker.new(config_text: CONFIG, redis_url: TestSupport.redis_server.url).start.tap do |b|
      Minitest.after_run { b.stop }
    end
  end

  def setup
    @broker = self.class.broker
    @closers = []
    @client = Zeromesh::Client.new(endpoint: @broker.endpoint, pub_endpoint: @broker.pub_endpoint)
    @closers << -> { @client.close }
    @queue = "cards-#{SecureRandom.hex(3)}"
    @arrivals = {} # job id -> wall-clock time (Float seconds) its handler started
    @lock = Mutex.new
  end

  def teardown
    @closers.reverse_each(&:call)
  end

  def now_ms
    (Time.now.to_r * 1000).to_i
  end

  # A worker for queue that notes when each job arrives, then runs the block (if any) on it.
  def serve(queue = @queue, &then_do)
    worker = Zeromesh::Worker.new(endpoint: @broker.endpoint, concurrency: 2)
    worker.handle(queue) do |job|
      @lock.synchronize { @arrivals[job.id] ||= Time.now.to_f }
      then_do&.call(job)
    end
    worker.start
    assert worker.wait_ready(scaled(5)), "the worker registered"
    @closers << -> { worker.stop(grace: 1) }
    worker
  end

  def arrived
    @lock.synchronize { @arrivals.dup }
  end

  def wait_for_arrivals(ids, timeout = 5)
    wait_until(timeout, "jobs #{ids.inspect} to arrive") { (ids - arrived.keys).empty? }
    arrived
  end

  # Each scheduled job's due time, as the broker lists it.
  def due_ms_of(queue = @queue)
    @client.scheduled(queue).to_h { |item| [item["id"], item["due_ms"]] }
  end

  def test_a_delayed_push_arrives_not_before_its_time_and_soon_after
    serve
    pushed_ms = now_ms
    id = @client.push(@queue, "in a second", delay: 1.0)
    due = due_ms_of.fetch(id)
    assert_includes pushed_ms + 1000..now_ms + 1000, due, "due a second from the push"
    assert_equal "scheduled", @client.admin("trace", id: id)["state"]
    at = wait_for_arrivals([id])[id] * 1000
    assert_operator at, :>=, due, "not before its time"
    assert_operator at - due, :<, scaled(1000), "and within a second after it"
    assert_empty @client.scheduled(@queue)
  end

  def test_at_takes_a_time_in_any_zone
    serve
    at = Time.now.getlocal("-05:00") + 1.5
    id = @client.push(@queue, "at a time", at: at)
    assert_equal (at.to_r * 1000).to_i, due_ms_of.fetch(id)
    arrival = wait_for_arrivals([id])[id]
    assert_operator arrival, :>=, at.to_f, "not before #{at}"
    assert_operator arrival - at.to_f, :<, scaled(1.0)
  end

  def test_push_many_with_a_delay_schedules_every_job
    serve
    pushed_ms = now_ms
    ids = @client.push_many(@queue, %w[a b c], delay: 1.0)
    dues = due_ms_of
    assert_equal ids.sort, dues.keys.sort, "all three scheduled"
    ids.each { |id| assert_operator dues[id], :>=, pushed_ms + 1000 }
    got = wait_for_arrivals(ids)
    ids.each { |id| assert_operator got[id] * 1000, :>=, dues[id], "#{id} not before its time" }
  end

  def test_a_unique_push_returns_the_holder_and_queues_nothing_twice
    first = @client.push(@queue, "one", unique_key: "card:#{@queue}")
    again = @client.push(@queue, "two", unique_key: "card:#{@queue}")
    assert_equal first, again, "the second push names the job that holds the key"
    other = @client.push(@queue, "another card", unique_key: "card:#{@queue}:2")
    refute_equal first, other, "another key is another job"
    bodies = Queue.new
    serve { |job| bodies << [job.id, job.body] }
    wait_for_arrivals([first, other])
    sleep scaled(0.3) # long enough for a job queued twice to come too
    got = Array.new(bodies.size) { bodies.pop }
    assert_equal [[first, "one"], [other, "another card"]].sort, got.sort
  end

  def test_the_key_frees_once_the_job_is_done
    key = "card:#{@queue}"
    first = @client.push(@queue, "one", unique_key: key)
    serve
    wait_for_arrivals([first])
    wait_until(5, "the job to be acked") { @client.admin("trace", id: first)["state"] == "done" }
    # The key is released right after the ACK (one Redis write); until then a push names the holder.
    second = wait_until(5, "the key to be free") do
      id = @client.push(@queue, "two", unique_key: key)
      id unless id == first
    end
    wait_for_arrivals([second])
  end

  def test_a_unique_ttl_holds_the_key_that_long_whatever_the_job_does
    key = "card:#{@queue}"
    first = @client.push(@queue, "one", unique_key: key, unique_ttl: 1.0)
    held_until = Zeromesh::Clock.now + 1.0
    serve
    wait_for_arrivals([first])
    wait_until(5, "the job to be acked") { @client.admin("trace", id: first)["state"] == "done" }
    if Zeromesh::Clock.now < held_until - 0.2
      assert_equal first, @client.push(@queue, "two", unique_key: key), "done, but its TTL holds the key"
    end
    sleep [held_until - Zeromesh::Clock.now, 0].max
    second = wait_until(5, "the TTL to end") do
      id = @client.push(@queue, "three", unique_key: key)
      id unless id == first
    end
    wait_for_arrivals([second])
  end

  def test_pause_holds_and_resume_lets_go
    serve
    @client.pause(@queue)
    ids = @client.push_many(@queue, %w[a b])
    sleep scaled(0.7)
    assert_empty arrived, "a paused queue dispatches nothing"
    assert_equal true, @client.status.dig("queues", @queue, "paused")
    @client.resume(@queue)
    wait_for_arrivals(ids)
  end

  def test_purge_queue_counts_what_it_drops
    serve
    @client.pause(@queue)
    dropped = @client.push_many(@queue, %w[a b c d e])
    assert_equal 5, @client.purge_queue(@queue)
    assert_equal 0, @client.purge_queue(@queue), "nothing left to drop"
    @client.resume(@queue)
    kept = @client.push(@queue, "after")
    wait_for_arrivals([kept])
    sleep scaled(0.3)
    assert_empty dropped & arrived.keys, "purged jobs never run"
  end

  def test_scheduled_lists_and_cancel_stops_a_job
    serve
    soon = @client.push(@queue, "soon", delay: 1.0)
    later = @client.push(@queue, "later", delay: 60)
    items = @client.scheduled(@queue)
    assert_equal [soon, later], items.map { |i| i["id"] }, "earliest first"
    assert_equal [4, 5], items.map { |i| i["size"] }
    assert_equal [soon], @client.scheduled(@queue, limit: 1).map { |i| i["id"] }
    assert_nil @client.cancel(soon)
    @client.cancel(later, queue: @queue)
    assert_empty @client.scheduled(@queue)
    error = assert_raises(Zeromesh::RemoteError) { @client.cancel(soon) }
    assert_equal "not_found", error.code
    sleep scaled(1.5)
    assert_empty arrived, "a cancelled job never runs"
  end

  def test_schedules_lists_the_brokers_periodic_jobs
    schedule = @client.schedules.find { |s| s["name"] == "christmas-cards" }
    refute_nil schedule, "the broker's [[schedules]] entry"
    assert_equal ["0 8 25 12 *", "Europe/Paris", "send"], schedule.values_at("cron", "timezone", "queue")
    due = Time.at(schedule["next_ms"] / 1000r).getlocal("+01:00")
    assert_equal [12, 25, 8, 0], [due.month, due.day, due.hour, due.min], "08:00 in Paris on 25 December"
  end

  def test_a_handlers_retry_delay_is_honoured
    attempts = Queue.new # [attempt, wall time it started, error]
    serve(QUICK_RETRY) do |job|
      attempts << [job.attempt, Time.now.to_f, job.error]
      raise Zeromesh::Retry.new("busy", in: 1.0) if job.attempt == 1
    end
    @client.push(QUICK_RETRY, "card")
    first = wait_until(5, "the first attempt") { attempts.pop(true) rescue nil } # rubocop:disable Style/RescueModifier
    second = wait_until(5, "the second attempt") { attempts.pop(true) rescue nil } # rubocop:disable Style/RescueModifier
    assert_equal [1, 2], [first[0], second[0]]
    assert_equal "Zeromesh::Retry: busy", second[2]
    gap = second[1] - first[1]
    # The queue's own backoff would bring it back after about 50 ms.
    assert_operator gap, :>=, 1.0, "not before the handler's delay"
    assert_operator gap, :<, 1.0 + scaled(1.0)
  end

  def test_scheduling_needs_a_broker_with_redis
    plain = Zeromesh::Client.new(endpoint: TestSupport.broker.endpoint, pub_endpoint: TestSupport.broker.pub_endpoint)
    @closers << -> { plain.close }
    error = assert_raises(Zeromesh::RemoteError) { plain.push(@queue, "x", delay: 1) }
    assert_equal "unavailable", error.code
    error = assert_raises(Zeromesh::RemoteError) { plain.push(@queue, "x", unique_key: "k") }
    assert_equal "unavailable", error.code
  end
end
