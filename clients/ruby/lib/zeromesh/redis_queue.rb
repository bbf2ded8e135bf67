# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "digest"
require "redis"
require "socket"
require_relative "clock"
require_relative "defaults"
require_relative "errors"
require_relative "ids"
require_relative "latch"
require_relative "messages"
require_relative "redis_envelope"
require_relative "redis_url"

module Zeromesh
  # Produce to and consume from a zeromesh queue directly in Redis, without
  # the broker (SPEC.md section 16, "Redis data layout"):
  #
  #   zeromesh:queue:Q          pending jobs; producers RPUSH, consumers take from the left
  #   zeromesh:inflight:Q:C     what consumer C holds (BLMOVE queue -> here LEFT RIGHT; LREM when done)
  #   zeromesh:consumers:Q      sorted set: consumer -> unix time of its last heartbeat
  #   zeromesh:dead:Q           dead letters, envelopes with error and attempt set
  #
  #   q = Zeromesh::RedisQueue.new(queue: "thumbs")
  #   q.push("cat.png")
  #   q.work { |job| make_thumbnail(job.body) }   # until q.stop (safe from a trap handler)
  #
  # Redis under Sentinel (redis_url "redis+sentinel://...", see RedisURL): each connection asks
  # the sentinels for the primary whenever it (re)connects. While there is none (the primary died
  # and no replica is promoted yet) commands fail with Redis::BaseConnectionError; #push tries
  # again until retry_s has passed and #work rides through the outage, so one process follows a
  # failover without a restart. A push is confirmed once WAIT says enough replicas hold it.
  class RedisQueue
    PREFIX = "zeromesh:"

    # Where the Lua scripts of SPEC.md 16.3 are read from, first found first: the one copy,
    # protocol/redis/, when this file runs from the zeromesh repository; else the copy an
    # installed gem carries, which `rake build` puts in lib/zeromesh/redis/ (see README).
    SCRIPT_DIRS = [File.expand_path("../../../../protocol/redis", __dir__), File.expand_path("redis", __dir__)].freeze

    # Wall-clock milliseconds since the epoch: a dead letter's dead_ms.
    def self.now_ms
      Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)
    end

    # The text of <name>.lua, exactly as in the file.
    def self.script(name)
      file = SCRIPT_DIRS.map { |dir| File.join(dir, "#{name}.lua") }.find { |path| File.file?(path) }
      raise LoadError, "zeromesh: #{name}.lua is in none of #{SCRIPT_DIRS.join(", ")}" unless file

      File.binread(file).force_encoding(Encoding::UTF_8).freeze
    end

    # One dead consumer's jobs back to the queue head, or to the dead letters, each a failed attempt.
    RECOVER_DEAD = script("recover_dead")
    # LREM one element from an in-flight list and, only if it was there, RPUSH its replacement.
    FAIL = script("fail")
    # Everything in an in-flight list back to the queue head, oldest first.
    RECOVER = script("recover")

    # Raw elements carry no attempt count, so this consumer counts failures of
    # identical elements itself, remembering at most this many.
    RAW_ATTEMPTS_REMEMBERED = 10_000

    # One job taken from Redis. attempt is which delivery this is, from 1.
    Job = Struct.new(:id, :body, :headers, :attempt, :error, :trace, :queue, :element, keyword_init: true) do
      def text
        body.dup.force_encoding(Encoding::UTF_8)
      end
    end

    # What #recover did: jobs put back on the queue, and jobs dead-lettered.
    Recovery = Struct.new(:requeued, :dead_lettered) do
      def total
        requeued + dead_lettered
      end
      alias_method :to_i, :total
    end

    attr_reader :queue, :consumer, :max_attempts

    # redis_url: "redis://host:port/db", "unix:///path/redis.sock" or
    # "redis+sentinel://host:port,host:port/service" (RedisURL; ArgumentError when malformed).
    # raw: elements are the body bytes alone (a queue declared raw).
    # min_replicas: replicas a push must reach (WAIT, up to wait_ms); nil: the URL's
    # min_replicas option, else 1 when the primary has connected replicas, else 0.
    # retry_s: how long #push keeps trying while Redis cannot be reached.
    def initialize(queue:, redis_url: ENV["ZEROMESH_REDIS_URL"] || Defaults::REDIS_URL,
                   consumer: "#{Socket.gethostname}-#{Process.pid}", raw: false,
                   max_attempts: Defaults::REDIS_MAX_ATTEMPTS, heartbeat_s: Defaults::REDIS_HEARTBEAT_S,
                   recovery_s: Defaults::REDIS_RECOVERY_S, min_replicas: nil,
                   wait_ms: Defaults::REDIS_WAIT_MS, retry_s: Defaults::REDIS_RETRY_S, logger: nil)
      @queue = Messages.name(queue, "queue")
      @consumer = Messages.utf8(consumer)
      @redis_url = redis_url
      @raw = raw
      @max_attempts = max_attempts
      @heartbeat_s = heartbeat_s
      @recovery_s = recovery_s
      @logger = logger
      @redis_options = RedisURL.options(redis_url)
      @min_replicas = min_replicas || RedisURL.min_replicas(redis_url)
      @wait_ms = wait_ms
      @retry_s = retry_s
      @wait_replicas = nil # decided on the first push to each primary
      @down_since = nil
      @outage_pauses = 0
      @redis = Redis.new(**@redis_options)
      @ids = IdGenerator.new
      @raw_failures = {}
      @stop = false
    end

    def raw?
      @raw
    end

    def queue_key
      "#{PREFIX}queue:#{@queue}"
    end

    def inflight_key(consumer = @consumer)
      "#{PREFIX}inflight:#{@queue}:#{consumer}"
    end

    def consumers_key
      "#{PREFIX}consumers:#{@queue}"
    end

    def dead_key
      "#{PREFIX}dead:#{@queue}"
    end

    # -- producing -----------------------------------------------------------

    # RPUSH one job; returns its id (nil for a raw queue, whose elements keep no id) once
    # Redis holds it on the primary and, when the primary has replicas, on min_replicas of
    # them (WAIT). Fewer within wait_ms: UnavailableError (the job stays in Redis and may
    # yet run, but a failover now could lose it). While Redis cannot be reached (no primary
    # during a Sentinel failover) the same element is sent again until retry_s has passed,
    # then UnreachableError; a push whose reply was lost with the connection may so be
    # queued twice, under the same id.
    def push(body, headers: nil, trace: nil)
      body = Messages.body(body)
      raise ArgumentError, "a raw queue keeps no headers or trace" if @raw && (headers || trace)

      id = @raw ? nil : @ids.call
      element = if @raw
                  body
                else
                  RedisEnvelope.encode(id: id, body: body, headers: Messages.headers(headers), trace: trace,
                                       queue: @queue)
                end
      with_retry { store(element) }
      id
    end

    # -- consuming -----------------------------------------------------------

    # Take jobs one at a time and yield each until #stop. A normal return
    # removes the job (LREM from our in-flight list); an exception sends it
    # back to the tail of the queue with attempt + 1 and the error, or to the
    # dead letters once it failed max_attempts times. Heartbeats run in a
    # thread of their own, so a long job does not make this consumer look dead.
    # First it hands back what a previous run under the same consumer name
    # left in flight, and recovers dead consumers' jobs.
    def work(timeout: 1, &block)
      raise ArgumentError, "work needs a block" unless block

      @stop = false
      heart, heart_stop = start_heartbeat
      resync = true
      until @stop
        begin
          if resync
            take_back
            resync = false
          end
          work_one(timeout: timeout, &block)
          redis_back
        rescue Redis::BaseConnectionError => e
          # What our in-flight list holds now is no job in hand: a BLMOVE whose reply was lost, or
          # a done job whose LREM was. take_back hands it back once Redis answers again.
          resync = true
          redis_lost(e)
          @outage_pauses += 1
          pause(@stop ? 0 : backoff(@outage_pauses))
        end
      end
    ensure
      if heart
        heart_stop.set
        heart.join(5)
      end
      leave
    end

    # Take at most one job (waiting up to timeout seconds) and handle it as
    # #work does. Returns the Job, or nil if none came (or it was malformed).
    # Redis::BaseConnectionError when Redis cannot be reached (#work rides through it).
    def work_one(timeout: 1)
      element = @redis.blmove(queue_key, inflight_key, "LEFT", "RIGHT", timeout: timeout)
      return nil if element.nil?

      job = job_of(element) or return nil
      begin
        yield job
      rescue Exception => e # rubocop:disable Lint/RescueException -- a failed job must not be lost
        failed(job, e)
        raise unless e.is_a?(StandardError)
      else
        @redis.lrem(inflight_key, 1, element)
        @raw_failures.delete(Digest::SHA256.digest(element)) if @raw && !@raw_failures.empty?
      end
      job
    end

    # Ask #work to return after the job in hand. Safe from a signal trap.
    def stop
      @stop = true
    end

    # ZADD this consumer's liveness now.
    def beat(redis = @redis)
      redis.zadd(consumers_key, Time.now.to_f, @consumer)
    end

    # Take back, one atomic script call per consumer, the in-flight jobs of consumers silent
    # for older_than seconds; each counts a failed attempt: an envelope goes back to the queue
    # head with attempt + 1 and error "consumer C lost: no heartbeat" (to the dead letters at
    # max_attempts), a raw element as it was. Returns a Recovery (#total, #to_i: jobs moved).
    def recover(older_than: @recovery_s)
      cutoff = Time.now.to_f - older_than
      counts = @redis.zrangebyscore(consumers_key, "-inf", cutoff).map { |name| recover_consumer(name, cutoff) }
      Recovery.new(counts.sum(0, &:first), counts.sum(0, &:last))
    end

    # One consumer found silent at cutoff; the script moves nothing if it has beaten since.
    def recover_consumer(name, cutoff)
      @redis.eval(RECOVER_DEAD, keys: [consumers_key, inflight_key(name), queue_key, dead_key],
                                argv: [cutoff, name, @queue, @raw ? "raw" : "envelope", @max_attempts])
    end

    # Dead letters, oldest first, decoded.
    def dead_letters(limit: 100)
      @redis.lrange(dead_key, 0, limit - 1).map { |raw| RedisEnvelope.decode(raw) }
    end

    def close
      @redis.close
    end

    private

    # What #work does at its start and again after Redis was lost: say we are alive, hand
    # back what our in-flight list holds (nothing of it is in hand), recover dead consumers.
    def take_back
      beat
      @redis.eval(RECOVER, keys: [queue_key, inflight_key])
      recover(older_than: @recovery_s)
    end

    # RPUSH and, if replicas must have it, WAIT in the same round trip.
    def store(element)
      wanted = wait_replicas
      replies = @redis.pipelined do |pipe|
        pipe.rpush(queue_key, element)
        pipe.call(:wait, wanted, @wait_ms) if wanted.positive?
      end
      return unless wanted.positive? && replies[1] < wanted

      raise UnavailableError, "queue #{@queue}: stored on #{replies[1]} of #{wanted} replicas within " \
                              "#{@wait_ms} ms; the job stays in Redis but is not confirmed"
    end

    def wait_replicas
      @wait_replicas ||= @min_replicas || (@redis.info("replication")["connected_slaves"].to_i.positive? ? 1 : 0)
    end

    # The block, tried again while Redis cannot be reached, up to retry_s after the first failure.
    def with_retry
      started = nil
      attempt = 0
      begin
        result = yield
        redis_back
        result
      rescue Redis::BaseConnectionError => e
        started ||= Clock.now
        redis_lost(e)
        left = @retry_s - (Clock.now - started)
        if left <= 0
          raise UnreachableError.new(RedisURL.redact(@redis_url),
                                     text: "cannot reach Redis at #{RedisURL.redact(@redis_url)} for " \
                                           "#{@retry_s}s: #{e.message}")
        end

        attempt += 1
        pause([backoff(attempt), left].min)
        retry
      end
    end

    # Logged once per outage; the replica count may differ on the next primary.
    def redis_lost(error)
      @wait_replicas = nil
      return if @down_since

      @down_since = Clock.now
      @outage_pauses = 0
      @logger&.warn("zeromesh: queue #{@queue}: Redis lost (#{error.class}: #{error.message}); trying again")
    end

    def redis_back
      return unless @down_since

      @logger&.warn(format("zeromesh: queue %s: Redis back after %.1fs", @queue, Clock.now - @down_since))
      @down_since = nil
    end

    # 0.05 s doubling to 1 s: quick to see a promoted primary, gentle on the sentinels.
    def backoff(attempt)
      [0.05 * (2**[attempt - 1, 5].min), 1.0].min
    end

    def pause(seconds)
      sleep(seconds) if seconds.positive?
    end

    # Leave the consumers set, unless jobs are still in flight (then recovery finds them).
    def leave
      @redis.zrem(consumers_key, @consumer) if @redis.llen(inflight_key).zero?
    rescue Redis::BaseError => e
      @logger&.warn("zeromesh: queue #{@queue}: could not leave the consumers set: #{e.message}")
    end

    def job_of(element)
      if @raw
        return Job.new(body: element.b, headers: {}, attempt: raw_failures_of(element) + 1, queue: @queue,
                       element: element)
      end

      env = RedisEnvelope.decode(element)
      Job.new(id: env.id || @ids.call, body: env.body, headers: env.headers || {}, attempt: env.attempt + 1,
              error: env.error.empty? ? nil : env.error, trace: env.trace || env.id, queue: @queue, element: element)
    rescue ProtocolError => e
      @logger&.warn("zeromesh: queue #{@queue}: malformed element moved to dead letters: #{e.detail}")
      move_on(element, dead_key, RedisEnvelope.encode(id: nil, body: element.b, error: e.detail, queue: @queue,
                                                      dead_ms: RedisQueue.now_ms))
      nil
    end

    def failed(job, exc)
      error = "#{exc.class.name}: #{exc.message}".dup.force_encoding(Encoding::UTF_8).scrub
      dead = job.attempt >= @max_attempts
      @logger&.warn("zeromesh: queue #{@queue}: #{job.id || "raw job"} failed (attempt #{job.attempt})" \
                    "#{dead ? ", dead-lettered" : ""}: #{error}")
      @raw_failures.delete(Digest::SHA256.digest(job.element)) if @raw && dead
      again = if @raw && !dead
                count_raw_failure(job.element)
                job.element
              else
                RedisEnvelope.encode(id: job.id, body: job.body, headers: job.headers, trace: job.trace,
                                     attempt: job.attempt, error: error, queue: @queue,
                                     dead_ms: dead ? RedisQueue.now_ms : nil)
              end
      move_on(job.element, dead ? dead_key : queue_key, again)
    end

    # The FAIL script: element leaves our in-flight list and replacement goes to
    # destination, or nothing happens if recovery already took the element back.
    def move_on(element, destination, replacement)
      return if @redis.eval(FAIL, keys: [inflight_key, destination], argv: [element, replacement]) == 1

      @logger&.warn("zeromesh: queue #{@queue}: a job was recovered from us while it ran; not queueing it again")
    end

    def raw_failures_of(element)
      @raw_failures.fetch(Digest::SHA256.digest(element), 0)
    end

    def count_raw_failure(element)
      key = Digest::SHA256.digest(element)
      @raw_failures[key] = @raw_failures.delete(key).to_i + 1
      @raw_failures.shift while @raw_failures.size > RAW_ATTEMPTS_REMEMBERED
    end

    # A thread with its own connection (BLMOVE blocks ours) that ZADDs every heartbeat_s.
    def start_heartbeat
      latch = Latch.new
      conn = Redis.new(**@redis_options)
      thread = Thread.new do
        until latch.wait(@heartbeat_s)
          begin
            beat(conn)
          rescue Redis::BaseError => e
            @logger&.warn("zeromesh: queue #{@queue}: heartbeat failed: #{e.message}")
          end
        end
      ensure
        conn.close
      end
      thread.name = "zeromesh-redis-heartbeat"
      [thread, latch]
    end
  end
end
