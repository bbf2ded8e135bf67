# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "zeromesh/redis_queue"
require "digest"
require "rbconfig"

# RedisQueue against a real redis-server of its own (unix socket, no persistence).
class RedisQueueTest < Minitest::Test
  include TestSupport

  def setup
    @server = TestSupport.redis_server
    @redis = @server.connection
    @redis.flushdb
    @queues = []
  end

  def teardown
    @queues.each(&:close)
    @redis.close
  end

  def queue(name = "thumbs", **options)
    Zeromesh::RedisQueue.new(queue: name, redis_url: @server.url, **options).tap { |q| @queues << q }
  end

  def test_push_writes_one_json_envelope_at_the_tail
    q = queue
    first = q.push("cat.png", headers: { kind: "image" })
    q.push("\xff\x00".b)
    raw = @redis.lrange("zeromesh:queue:thumbs", 0, -1)
    assert_equal({ "id" => first, "body" => "cat.png", "headers" => { "kind" => "image" }, "queue" => "thumbs" },
                 JSON.parse(raw[0]))
    assert_equal "/wA=", JSON.parse(raw[1])["body_b64"]
  end

  def test_work_one_moves_to_in_flight_and_lrem_on_success
    q = queue(consumer: "c1")
    id = q.push("hello", trace: "t-1")
    seen = nil
    job = q.work_one(timeout: 1) do |j|
      seen = j
      assert_equal 1, @redis.llen("zeromesh:inflight:thumbs:c1"), "the job is in flight while it runs"
      assert_equal 0, @redis.llen("zeromesh:queue:thumbs")
    end
    assert_same seen, job
    assert_equal [id, "hello", 1, nil, "t-1"], [job.id, job.body, job.attempt, job.error, job.trace]
    assert_equal 0, @redis.llen("zeromesh:inflight:thumbs:c1")
    assert_nil q.work_one(timeout: 0.1) { flunk "nothing should be left" }
  end

  def test_a_failure_goes_back_to_the_tail_with_attempt_and_error
    q = queue(consumer: "c1")
    id = q.push("a")
    q.push("b")
    q.work_one(timeout: 1) { raise ArgumentError, "bad input" }
    raw = @redis.lrange("zeromesh:queue:thumbs", 0, -1)
    assert_equal 2, raw.size
    assert_equal "b", JSON.parse(raw[0])["body"], "the failed job goes to the tail"
    retried = JSON.parse(raw[1])
    assert_equal [id, 1, "ArgumentError: bad input"], retried.values_at("id", "attempt", "error")
    assert_equal 0, @redis.llen("zeromesh:inflight:thumbs:c1")
    q.work_one(timeout: 1) {} # b
    job = q.work_one(timeout: 1) {}
    assert_equal [id, 2, "ArgumentError: bad input"], [job.id, job.attempt, job.error]
  end

  def test_dead_letter_after_max_attempts
    q = queue(consumer: "c1", max_attempts: 3)
    id = q.push("poison")
    attempts = []
    3.times { q.work_one(timeout: 1) { |job| attempts << job.attempt; raise "nope #{job.attempt}" } }
    assert_equal [1, 2, 3], attempts
    assert_equal 0, @redis.llen("zeromesh:queue:thumbs")
    dead = q.dead_letters
    assert_equal 1, dead.size
    assert_equal [id, "poison", 3, "RuntimeError: nope 3"], [dead[0].id, dead[0].body, dead[0].attempt, dead[0].error]
    assert_in_delta Zeromesh::RedisQueue.now_ms, dead[0].dead_ms, 60_000
  end

  def test_a_malformed_element_is_dead_lettered
    q = queue(consumer: "c1")
    @redis.rpush("zeromesh:queue:thumbs", "not json")
    assert_nil(q.work_one(timeout: 1) { flunk "a malformed element reached the handler" })
    dead = q.dead_letters
    assert_equal "not json", dead[0].body
    assert_match(/malformed envelope/, dead[0].error)
    assert_in_delta Zeromesh::RedisQueue.now_ms, dead[0].dead_ms, 60_000
    assert_equal 0, @redis.llen("zeromesh:inflight:thumbs:c1")
  end

  def test_a_producer_without_an_id_gets_one
    q = queue
    @redis.rpush("zeromesh:queue:thumbs", JSON.generate({ body: "from bash" }))
    job = q.work_one(timeout: 1) {}
    assert_equal "from bash", job.body
    refute_nil job.id
  end

  def test_raw_queue_elements_are_the_body_bytes
    q = queue("raw", raw: true, max_attempts: 2)
    assert_nil q.push("\x00plain bytes".b)
    assert_equal ["\x00plain bytes".b], @redis.lrange("zeromesh:queue:raw", 0, -1)
    attempts = []
    2.times { q.work_one(timeout: 1) { |job| attempts << [job.body, job.attempt]; raise "no" } }
    assert_equal [["\x00plain bytes", 1], ["\x00plain bytes", 2]], attempts
    assert_equal "\x00plain bytes".b, q.dead_letters[0].body
    assert_raises(ArgumentError) { q.push("x", headers: { "a" => 1 }) }
  end

  def test_recover_moves_a_dead_consumers_jobs_back_to_the_head_in_order
    q = queue(consumer: "alive")
    %w[j1 j2 j3].each { |b| q.push(b) }
    # A consumer that took two jobs, then died 60 s ago.
    @redis.lmove("zeromesh:queue:thumbs", "zeromesh:inflight:thumbs:ghost", "LEFT", "RIGHT")
    @redis.lmove("zeromesh:queue:thumbs", "zeromesh:inflight:thumbs:ghost", "LEFT", "RIGHT")
    @redis.zadd("zeromesh:consumers:thumbs", Time.now.to_f - 60, "ghost")
    q.beat
    recovered = q.recover(older_than: 30)
    assert_equal [2, 0, 2], [recovered.requeued, recovered.dead_lettered, recovered.total]
    envelopes = @redis.lrange("zeromesh:queue:thumbs", 0, -1).map { |raw| JSON.parse(raw) }
    assert_equal %w[j1 j2 j3], envelopes.map { |e| e["body"] }, "recovered jobs go back to the head, oldest first"
    assert_equal [1, 1, nil], envelopes.map { |e| e["attempt"] }, "a consumer's death counts an attempt"
    assert_equal "consumer ghost lost: no heartbeat", envelopes[0]["error"]
    assert_equal 0, @redis.exists("zeromesh:inflight:thumbs:ghost")
    assert_equal ["alive"], @redis.zrange("zeromesh:consumers:thumbs", 0, -1)
    assert_equal 0, q.recover(older_than: 30).to_i, "a live consumer's jobs stay where they are"
  end

  def test_a_consumer_that_beats_between_the_read_and_the_script_keeps_its_jobs
    q = queue(consumer: "recoverer")
    q.push("held")
    @redis.lmove("zeromesh:queue:thumbs", "zeromesh:inflight:thumbs:slow", "LEFT", "RIGHT")
    cutoff = Time.now.to_f - 30
    @redis.zadd("zeromesh:consumers:thumbs", cutoff - 30, "slow")
    assert_equal ["slow"], @redis.zrangebyscore("zeromesh:consumers:thumbs", "-inf", cutoff), "read as silent"
    @redis.zadd("zeromesh:consumers:thumbs", Time.now.to_f, "slow") # and then it beats
    assert_equal [0, 0], q.recover_consumer("slow", cutoff)
    assert_equal 1, @redis.llen("zeromesh:inflight:thumbs:slow")
    assert_equal 0, @redis.llen("zeromesh:queue:thumbs")
    refute_nil @redis.zscore("zeromesh:consumers:thumbs", "slow")
    @redis.zadd("zeromesh:consumers:thumbs", cutoff - 30, "slow") # silent after all: now it is recovered, once
    assert_equal [1, 0], q.recover_consumer("slow", cutoff)
    assert_equal [0, 0], q.recover_consumer("slow", cutoff), "a second recoverer finds nothing"
  end

  def test_recover_puts_raw_elements_back_unchanged
    q = queue("plain", raw: true)
    q.push("\x00as is".b)
    @redis.lmove("zeromesh:queue:plain", "zeromesh:inflight:plain:ghost", "LEFT", "RIGHT")
    @redis.zadd("zeromesh:consumers:plain", Time.now.to_f - 60, "ghost")
    assert_equal [1, 0], q.recover(older_than: 30).to_a
    assert_equal ["\x00as is".b], @redis.lrange("zeromesh:queue:plain", 0, -1)
  end

  # A job that kills every consumer that takes it: each death counts, and at
  # max_attempts it is dead-lettered instead of looping for ever.
  def test_a_job_whose_consumer_dies_five_times_is_dead_lettered_with_attempt_5
    q = queue("poison", consumer: "recoverer")
    id = q.push("kills its consumer")
    script = <<~RUBY
      require "zeromesh"
      q = Zeromesh::RedisQueue.new(queue: "poison", redis_url: ARGV[0], consumer: ARGV[1])
      q.work(timeout: 5) { |job| $stdout.puts(job.attempt); $stdout.flush; Process.kill("KILL", Process.pid) }
    RUBY
    attempts = []
    recoveries = []
    5.times do |i|
      out = IO.popen([RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script, @server.url, "c#{i}"], &:read)
      attempts << out.to_i
      assert_equal 1, @redis.llen("zeromesh:inflight:poison:c#{i}"), "consumer #{i} died holding the job"
      recoveries << q.recover(older_than: 0).to_a
    end
    assert_equal [1, 2, 3, 4, 5], attempts
    assert_equal [[1, 0]] * 4 + [[0, 1]], recoveries
    assert_equal 0, @redis.llen("zeromesh:queue:poison")
    dead = q.dead_letters
    assert_equal [[id, "kills its consumer", 5, "consumer c4 lost: no heartbeat"]],
                 dead.map { |d| [d.id, d.body, d.attempt, d.error] }
    assert_equal "poison", JSON.parse(@redis.lindex("zeromesh:dead:poison", 0))["queue"]
  end

  def test_scripts_are_read_from_protocol_redis_in_the_repository
    { "recover_dead" => Zeromesh::RedisQueue::RECOVER_DEAD, "fail" => Zeromesh::RedisQueue::FAIL,
      "recover" => Zeromesh::RedisQueue::RECOVER }.each do |name, text|
      assert_equal File.binread(File.join(TestSupport::REPO_ROOT, "protocol", "redis", "#{name}.lua")), text.b, name
    end
  end

  def test_the_gem_carries_the_scripts_and_reads_its_own_copy
    dir = File.join(TestSupport.tmpdir, "gem")
    out = IO.popen(["rake", "-f", File.join(TestSupport::RUBY_ROOT, "Rakefile"), "build[#{dir}]"], err: %i[child out],
                   &:read)
    assert $?.success?, "rake build failed:\n#{out}"
    refute File.exist?(File.join(TestSupport::RUBY_ROOT, "lib", "zeromesh", "redis")), "the build leaves no copy behind"
    gem = Dir[File.join(dir, "zeromesh-*.gem")].first
    assert system("gem", "unpack", gem, "--target", dir, out: File::NULL), "gem unpack #{gem}"
    lib = Dir[File.join(dir, "zeromesh-*", "lib")].find { |path| File.directory?(path) }
    # Run from the unpacked gem, far from any repository: only its own copy can be found.
    probe = 'require "digest"; require "zeromesh/redis_queue"; q = Zeromesh::RedisQueue; ' \
            'print Digest::SHA256.hexdigest(q::FAIL + q::RECOVER + q::RECOVER_DEAD), " ", ' \
            'q.method(:script).source_location[0]'
    got = IO.popen([RbConfig.ruby, "-I", lib, "-e", probe], &:read)
    files = %w[fail recover recover_dead].map { |n| File.binread(File.join(TestSupport::REPO_ROOT, "protocol", "redis", "#{n}.lua")) }
    assert_equal "#{Digest::SHA256.hexdigest(files.join)} #{File.join(lib, "zeromesh", "redis_queue.rb")}", got
  end

  def test_a_job_recovered_while_it_ran_is_not_queued_twice
    q = queue(consumer: "slow")
    q.push("once")
    q.work_one(timeout: 1) do
      # Meanwhile this consumer looked dead and its job went back to the queue.
      @redis.zadd("zeromesh:consumers:thumbs", Time.now.to_f - 60, "slow")
      assert_equal 1, q.recover(older_than: 30).requeued
      raise "failed late"
    end
    assert_equal 1, @redis.llen("zeromesh:queue:thumbs")
    assert_equal 0, @redis.llen("zeromesh:dead:thumbs")
  end

  def test_work_runs_until_stop_with_a_heartbeat
    q = queue(consumer: "w1", heartbeat_s: 0.1)
    5.times { |i| q.push("job #{i}") }
    done = []
    runner = Thread.new do
      q.work(timeout: 0.2) do |job|
        done << job.body
        assert @redis.zscore("zeromesh:consumers:thumbs", "w1"), "the consumer should be registered"
        q.stop if done.size == 5
      end
    end
    assert runner.join(scaled(10)), "work did not return after stop"
    assert_equal Array.new(5) { |i| "job #{i}" }, done
    assert_nil @redis.zscore("zeromesh:consumers:thumbs", "w1"), "a consumer with nothing in flight leaves"
  end

  def test_work_first_takes_back_what_a_previous_run_left_in_flight
    q = queue(consumer: "same-name")
    q.push("left behind")
    @redis.lmove("zeromesh:queue:thumbs", "zeromesh:inflight:thumbs:same-name", "LEFT", "RIGHT")
    got = []
    q.work(timeout: 0.2) do |job|
      got << job.body
      q.stop
    end
    assert_equal ["left behind"], got
  end
end
