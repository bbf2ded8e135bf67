# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "zeromesh/redis_queue"
require "securerandom"
require "shellwords"

# RedisQueue as the least-privilege user zeromesh-consumer of docs/redis-acl.conf (the file the
# operator's guide shows): push, work (take, ack, fail), recover and dead letters all go through,
# and Redis's ACL LOG stays empty; a user short of a command gets Redis's NOPERM, never a success.
class RedisAclTest < Minitest::Test
  include TestSupport

  ACL_FILE = File.join(TestSupport::REPO_ROOT, "docs", "redis-acl.conf")
  ADMIN_PASSWORD = SecureRandom.hex(12)

  # A redis-server on a loopback port whose default user has a password, with the file's users.
  class AclRedis
    attr_reader :port, :passwords, :admin

    def initialize
      @dir = File.join(TestSupport.tmpdir, "acl-redis")
      FileUtils.mkdir_p(@dir)
      @port = TestSupport.free_port
      binary = ENV["ZEROMESH_TEST_REDIS_SERVER"] || "redis-server"
      @pid = Process.spawn(binary, "--port", @port.to_s, "--bind", "127.0.0.1", "--requirepass", ADMIN_PASSWORD,
                           "--save", "", "--appendonly", "no", "--dir", @dir,
                           chdir: @dir, out: [File.join(@dir, "redis.log"), "a"], err: %i[child out])
      @admin = Redis.new(host: "127.0.0.1", port: @port, password: ADMIN_PASSWORD, timeout: 5)
      TestSupport.wait_until(10, "redis-server answering PONG", interval: 0.05) { pong? }
      @passwords = Hash.new { |h, role| h[role] = SecureRandom.hex(12) }
      File.readlines(ACL_FILE, chomp: true).reject(&:empty?).each { |line| add(line) }
    end

    # One ACL SETUSER line, its >ROLE-PASSWORD placeholder replaced by that role's password.
    def add(line)
      line = line.gsub(/>([A-Z]+)-PASSWORD\b/) { ">#{@passwords[Regexp.last_match(1).downcase]}" }
      @admin.call(*Shellwords.split(line))
    end

    def url(role, user: "zeromesh-#{role}")
      "redis://#{user}:#{@passwords[role]}@127.0.0.1:#{@port}"
    end

    # ACL LOG, but CLIENT SETINFO's: client libraries send it at connect and ignore a refusal.
    def denials
      @admin.call("ACL", "LOG").map { |entry| entry.each_slice(2).to_h }.reject do |e|
        e["object"] == "client|setinfo"
      end
    end

    def pong?
      @admin.ping == "PONG"
    rescue Redis::BaseError
      false
    end

    def stop
      @admin.close
      Process.kill("TERM", @pid)
      TestSupport.reap(@pid, 10)
    rescue Errno::ESRCH
      nil
    end
  end

  def self.acl_redis
    @acl_redis ||= AclRedis.new.tap { |r| Minitest.after_run { r.stop } }
  end

  def setup
    @acl = self.class.acl_redis
    @admin = @acl.admin
    @admin.flushall
    @admin.call("ACL", "LOG", "RESET")
    @queues = []
  end

  def teardown
    @queues.each(&:close)
  end

  def queue(name, url: @acl.url("consumer"), **options)
    Zeromesh::RedisQueue.new(queue: name, redis_url: url, **options).tap { |q| @queues << q }
  end

  def test_the_consumer_user_pushes_works_fails_recovers_and_reads_dead_letters
    q = queue("mail", consumer: "r1", max_attempts: 2, heartbeat_s: 0.1, recovery_s: 60)
    q.push("hello")
    q.push("bounce")
    # A consumer that died holding a job: recovered by #work's start (its beat is old).
    @admin.rpush("zeromesh:inflight:mail:gone", JSON.generate(id: "j-9", body: "orphan"))
    @admin.zadd("zeromesh:consumers:mail", Time.now.to_f - 600, "gone")
    done = []
    failures = 0
    q.work(timeout: 0.2) do |job|
      if job.body == "bounce"
        failures += 1
        q.stop if failures == 2
        raise "mailbox full"
      end
      done << job.body
    end
    assert_equal %w[hello orphan], done.sort
    assert_equal ["RuntimeError: mailbox full"], q.dead_letters.map(&:error)
    assert_equal 0, @admin.llen("zeromesh:inflight:mail:r1")
    assert_nil @admin.zscore("zeromesh:consumers:mail", "r1"), "left the consumers set"
    assert_equal 0, q.recover(older_than: 0.0).total # its own beat is gone: nothing left to take
    assert_equal [], @acl.denials
  end

  def test_wait_is_allowed_when_replicas_must_have_the_job
    error = assert_raises(Zeromesh::UnavailableError) { queue("mail", min_replicas: 1, wait_ms: 10).push("x") }
    assert_match(/stored on 0 of 1 replicas/, error.message) # WAIT answered: no replica, not NOPERM
    assert_equal [], @acl.denials
  end

  def test_a_user_short_of_a_command_gets_nopermission_not_a_success
    line = File.readlines(ACL_FILE, chomp: true).find { |l| l.include?(" zeromesh-consumer ") }
    @acl.add("#{line.sub(' zeromesh-consumer ', ' zeromesh-consumer-short ')} -rpush")
    short = queue("mail", url: @acl.url("consumer", user: "zeromesh-consumer-short"))
    error = assert_raises(Redis::CommandError) { short.push("lost?") }
    assert_match(/NOPERM.*'rpush'/, error.message)
    assert_equal 0, @admin.llen("zeromesh:queue:mail")
  end
end
