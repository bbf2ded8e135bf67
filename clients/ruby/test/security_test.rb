# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "curve_support"
require "open3"
require "rbconfig"
require "securerandom"
require "stringio"
require "timeout"

# The Ruby client against a real broker under CURVE (SPEC 14): every verb with
# a key that has the role, refusals reported at once (never a hang), commands
# outside the role answered forbidden with nothing changed, and the Worker's
# and the subscriber's refusals.
class SecurityTest < Minitest::Test
  include TestSupport

  # A refused handshake must surface well within this (libzmq alone would wait for ever).
  REFUSED_WITHIN_S = 2.0

  def self.keys
    @keys ||= KeySet.new(File.join(TestSupport.tmpdir, "security-keys"))
  end

  def self.broker
    @broker ||= keys.start_broker.tap { |b| Minitest.after_run { b.stop } }
  end

  def setup
    @keys = self.class.keys
    @broker = self.class.broker
    @closers = []
  end

  def teardown
    @closers.reverse_each(&:call)
  end

  def client(key = nil, **options)
    options = @keys.options(key).merge(options) if key
    Zeromesh::Client.new(endpoint: @broker.endpoint, pub_endpoint: @broker.pub_endpoint, **options)
                    .tap { |c| @closers << -> { c.close } }
  end

  def worker(key, log: nil, **options)
    logger = log && Logger.new(log, level: Logger::INFO)
    Zeromesh::Worker.new(endpoint: @broker.endpoint, logger: logger, **@keys.options(key), **options)
                    .tap { |w| @closers << -> { w.stop(grace: 1) } }
  end

  def unique(prefix)
    "#{prefix}-#{SecureRandom.hex(3)}"
  end

  # The error the block raises, and how long it took.
  def timed_raise(cls)
    started = Zeromesh::Clock.now
    error = assert_raises(cls) { yield }
    [error, Zeromesh::Clock.now - started]
  end

  def counters
    client("admin").status["counters"]
  end

  # -- every verb with a valid key -------------------------------------------

  def test_every_verb_works_with_keys_that_have_the_roles
    queue = unique("sec-q")
    service = unique("sec-svc")
    producer = client("producer")
    id = producer.push(queue, "one")
    ids = producer.push_many(queue, %w[two three four], batch: 2)
    assert_equal 3, ids.size

    jobs = Queue.new
    w = worker("worker")
    w.handle(queue) { |job| jobs << job.text }
    w.handle(service) { |job| "echo #{job.text}" }
    w.start
    assert w.wait_ready(scaled(5))
    got = Array.new(4) { Timeout.timeout(scaled(10)) { jobs.pop } }
    assert_equal %w[one two three four].sort, got.sort
    assert_equal "echo hi", producer.request(service, "hi", timeout: scaled(5))
    assert_match(/\A\S+\z/, producer.ping)

    admin = client("admin")
    wait_until(10, "the jobs acked") { admin.admin("trace", id: ids.last)["state"] == "done" }
    assert_equal "done", admin.admin("trace", id: id)["state"]
    assert admin.status["queues"].key?(queue)
    assert_equal [], admin.admin("dead_letters", queue: queue)["items"].to_a

    topic = unique("sec-topic")
    sub = client("subscriber").subscribe(topic)
    event = nil
    wait_until(10, "an event through the secured PUB endpoint") do
      producer.publish(topic, "news")
      event = sub.next(timeout: 0.1)
    end
    assert_equal [topic, "news"], [event.topic, event.body]
  end

  # -- refused handshakes ------------------------------------------------------

  def test_no_key_is_refused_at_once_with_a_clear_message
    c = client(nil, curve_server: nil, curve_secret: nil)
    error, took = timed_raise(Zeromesh::AuthenticationError) { c.push(unique("sec-nokey"), "x") }
    assert_operator took, :<, scaled(REFUSED_WITHIN_S)
    assert_equal "authentication refused by the broker at #{@broker.endpoint}: handshake failed " \
                 "(CURVE on one side only, or a wrong server public key)", error.message
    assert_equal "unauthenticated", error.code
    # Every call that waits fails the same way; none waits out its deadline.
    _, took = timed_raise(Zeromesh::AuthenticationError) { c.request("anything", "x", timeout: 30) }
    assert_operator took, :<, scaled(REFUSED_WITHIN_S)
    _, took = timed_raise(Zeromesh::AuthenticationError) { c.push_many(unique("sec-nokey"), %w[a b], timeout: 30) }
    assert_operator took, :<, scaled(REFUSED_WITHIN_S)
    _, took = timed_raise(Zeromesh::AuthenticationError) { c.admin("status") }
    assert_operator took, :<, scaled(REFUSED_WITHIN_S)
  end

  def test_an_unknown_key_is_refused_as_not_allowed
    c = client(nil, curve_server: @keys.broker_public, curve_secret: @keys.stranger("stranger-#{SecureRandom.hex(2)}"))
    error, took = timed_raise(Zeromesh::AuthenticationError) { c.request("anything", "x", timeout: 30) }
    assert_operator took, :<, scaled(REFUSED_WITHIN_S)
    assert_equal "authentication refused by the broker at #{@broker.endpoint}: key not allowed", error.message
    assert_equal @broker.endpoint, error.endpoint
  end

  def test_a_wrong_server_key_is_refused
    # A real public key, of another broker: the handshake cannot succeed.
    other = KeySet.new(File.join(TestSupport.tmpdir, "other-#{SecureRandom.hex(3)}"), {})
    c = client(nil, curve_server: File.read(other.broker_public)[/public-key = "(.{40})"/, 1],
                    curve_secret: @keys.secret("producer"))
    error, took = timed_raise(Zeromesh::AuthenticationError) { c.push(unique("sec-wrong"), "x", timeout: 30) }
    assert_operator took, :<, scaled(REFUSED_WITHIN_S)
    assert_match(/handshake failed \(CURVE on one side only, or a wrong server public key\)\z/, error.message)
  end

  def test_keys_against_a_broker_without_curve_are_refused
    plain = TestSupport.broker
    c = Zeromesh::Client.new(endpoint: plain.endpoint, pub_endpoint: plain.pub_endpoint, **@keys.options("producer"))
    @closers << -> { c.close }
    error, took = timed_raise(Zeromesh::AuthenticationError) { c.ping(timeout: 30) }
    assert_operator took, :<, scaled(REFUSED_WITHIN_S)
    assert_match(/\Aauthentication refused by the broker at #{Regexp.escape(plain.endpoint)}: handshake failed/, error.message)
  end

  # -- several brokers -----------------------------------------------------------

  # A second secured broker with a key pair of its own, over the same clients.
  def self.second_broker
    @second_broker ||= begin
      other = KeySet.new(File.join(TestSupport.tmpdir, "second-broker-#{SecureRandom.hex(3)}"), {})
      args = ["--curve-secret", other.broker_secret, "--curve-clients", keys.clients]
      options = { curve_server: other.broker_public, curve_secret: keys.secret("everything") }
      [TestSupport::Broker.new(args: args, client_options: options).start.tap { |b| Minitest.after_run { b.stop } },
       other.broker_public]
    end
  end

  def test_one_broker_key_per_endpoint_and_a_refusing_broker_counts_as_down
    second, second_public = self.class.second_broker
    endpoints = [@broker.endpoint, second.endpoint]
    pubs = [@broker.pub_endpoint, second.pub_endpoint]
    queue = unique("sec-two")
    each = Zeromesh::Client.new(endpoint: endpoints, pub_endpoint: pubs, curve_server: "#{@keys.broker_public},#{second_public}",
                                curve_secret: @keys.secret("producer"), logger: Logger.new(StringIO.new))
    @closers << -> { each.close }
    6.times { |i| each.push(queue, "each #{i}") }
    # One key for both: the second broker refuses it, so every push lands on the first, none fails.
    # (A client starts on a random broker: take one that starts on the refusing one.)
    log = one = nil
    20.times do
      log = StringIO.new
      one = Zeromesh::Client.new(endpoint: endpoints, pub_endpoint: pubs, curve_server: @keys.broker_public,
                                 curve_secret: @keys.secret("producer"), logger: Logger.new(log))
                            .tap { |c| @closers << -> { c.close } }
      break if one.endpoint == second.endpoint
    end
    assert_equal second.endpoint, one.endpoint
    6.times { |i| one.push(queue, "one #{i}") }
    assert_equal @broker.endpoint, one.endpoint
    assert_includes log.string, "zeromesh: authentication refused by the broker at #{second.endpoint}: handshake failed"
    # Refused everywhere: AuthenticationError at once, not UnreachableError after the failover wait.
    stranger = Zeromesh::Client.new(endpoint: endpoints, pub_endpoint: pubs, curve_server: @keys.broker_public,
                                    curve_secret: @keys.stranger("stranger-#{SecureRandom.hex(2)}"),
                                    logger: Logger.new(StringIO.new))
    @closers << -> { stranger.close }
    _, took = timed_raise(Zeromesh::AuthenticationError) { stranger.push(queue, "never", timeout: 30) }
    assert_operator took, :<, scaled(REFUSED_WITHIN_S)
  end

  def test_a_worker_serves_the_broker_that_lets_it_in_and_logs_the_other_once
    second, = self.class.second_broker
    queue = unique("sec-two-work")
    log = StringIO.new
    w = Zeromesh::Worker.new(endpoint: [second.endpoint, @broker.endpoint], logger: Logger.new(log),
                             curve_server: @keys.broker_public, curve_secret: @keys.secret("worker"))
    @closers << -> { w.stop(grace: 1) }
    done = Queue.new
    w.handle(queue) { |job| done << job.text }
    w.start
    client("producer").push(queue, "served")
    wait_until(10, "the job served") { done.size == 1 }
    sleep 1.5 # several reconnection attempts to the refusing broker
    refute w.stopped?, "one broker still lets the worker in"
    assert_equal 1, log.string.scan("ERROR -- : zeromesh: authentication refused by the broker at #{second.endpoint}").size,
                 log.string
  end

  # -- forbidden ---------------------------------------------------------------

  def test_a_producer_may_not_purge_dead_letters_and_nothing_changes
    queue = unique("sec-dead")
    producer = client("producer")
    producer.push(queue, "doomed")
    w = worker("worker")
    w.handle(queue) { |_job| raise Zeromesh::DeadLetter, "no" }
    w.start
    admin = client("admin")
    wait_until(10, "a dead letter") { admin.admin("dead_letters", queue: queue)["items"].to_a.size == 1 }
    before = counters["forbidden"].to_i

    error = assert_raises(Zeromesh::ForbiddenError) { producer.admin("purge", queue: queue) }
    assert_equal "forbidden", error.code
    assert_kind_of Zeromesh::RemoteError, error
    assert_match(/\Akey producer may not send ADMIN/, error.message)
    assert_equal 1, admin.admin("dead_letters", queue: queue)["items"].to_a.size
    assert_equal before + 1, counters["forbidden"].to_i
  end

  def test_a_producer_outside_its_patterns_is_forbidden_for_push_push_many_and_request
    c = client("orders-producer")
    assert c.push("orders", "fine")
    mail = unique("mail")
    error = assert_raises(Zeromesh::ForbiddenError) { c.push(mail, "no") }
    assert_match(/key orders-producer may not send PUSH for '#{mail}'/, error.message)
    error = assert_raises(Zeromesh::ForbiddenError) { c.push_many(mail, %w[a b c]) }
    assert_equal [], error.accepted
    assert_equal 3, error.unconfirmed.size
    assert_raises(Zeromesh::ForbiddenError) { c.request(mail, "x", timeout: 2) }
    refute client("admin").status["queues"].key?(mail), "a forbidden push queued nothing"
  end

  def test_a_worker_key_publishing_is_forbidden_and_nobody_hears_it
    topic = unique("sec-forbidden-topic")
    sub = client("subscriber").subscribe(topic)
    producer = client("producer")
    wait_until(10, "the subscription to reach the broker") do
      producer.publish(topic, "warm")
      sub.next(timeout: 0.1)
    end
    before = counters["forbidden"].to_i
    log = StringIO.new
    w = client("worker", logger: Logger.new(log))
    w.publish(topic, "from a worker key")
    w.ping # everything sent before has arrived, and been refused
    assert_nil sub.next(timeout: scaled(0.5))
    assert_equal before + 1, counters["forbidden"].to_i
    wait_until(5, "the refusal in the client's log") { log.string.include?("broker error forbidden: key worker may not send PUBLISH") }
  end

  # -- the worker ----------------------------------------------------------------

  def test_a_worker_whose_ready_is_forbidden_raises_from_run
    log = StringIO.new
    w = worker("render-worker", log: log)
    w.handle(unique("mail")) { |_job| nil }
    error = Timeout.timeout(scaled(10)) { assert_raises(Zeromesh::ForbiddenError) { w.run } }
    assert_match(/\Akey render-worker may not send READY/, error.message)
    assert w.stopped?
    assert_includes log.string, "ERROR -- : zeromesh: worker stopping: forbidden: key render-worker may not send READY"
  end

  def test_a_worker_refused_everywhere_logs_once_and_raises_from_run
    log = StringIO.new
    stranger = @keys.stranger("stranger-#{SecureRandom.hex(2)}")
    w = Zeromesh::Worker.new(endpoint: @broker.endpoint, logger: Logger.new(log), curve_server: @keys.broker_public,
                             curve_secret: stranger, connect_timeout: 1.0)
    @closers << -> { w.stop(grace: 1) }
    w.handle(unique("sec-refused")) { |_job| nil }
    started = Zeromesh::Clock.now
    error = Timeout.timeout(scaled(10)) { assert_raises(Zeromesh::AuthenticationError) { w.run } }
    took = Zeromesh::Clock.now - started
    assert_operator took, :>=, 1.0
    assert_operator took, :<, scaled(1.0 + REFUSED_WITHIN_S)
    assert_equal "authentication refused by the broker at #{@broker.endpoint}: key not allowed", error.message
    assert_equal 1, log.string.scan("ERROR -- : zeromesh: authentication refused by the broker at").size, log.string
  end

  def test_wait_ready_raises_the_refusal
    w = Zeromesh::Worker.new(endpoint: @broker.endpoint, curve_server: nil, curve_secret: nil)
    @closers << -> { w.stop(grace: 1) }
    w.handle(unique("sec-refused")) { |_job| nil }
    w.start
    error = assert_raises(Zeromesh::AuthenticationError) { w.wait_ready(scaled(10)) }
    assert_match(/handshake failed/, error.message)
  end

  # -- zeromesh-rb ----------------------------------------------------------------

  BIN = File.expand_path("../bin/zeromesh-rb", __dir__)

  def cli(secret, *args, stdin: "")
    env = { "ZEROMESH_BROKER" => @broker.endpoint, "ZEROMESH_PUB" => @broker.pub_endpoint,
            "ZEROMESH_CURVE_SERVER" => @keys.broker_public, "ZEROMESH_CURVE_SECRET" => secret }
    started = Zeromesh::Clock.now
    out, err, status = Open3.capture3(env, RbConfig.ruby, BIN, *args, stdin_data: stdin)
    [out, err, status.exitstatus, Zeromesh::Clock.now - started]
  end

  def test_the_cli_takes_the_keys_from_the_environment_and_exits_4_when_refused
    queue = unique("sec-cli")
    out, err, status, = cli(@keys.secret("producer"), "push", queue, stdin: "by the cli")
    assert_equal 0, status, err
    assert_match(/\A\S+\n\z/, out)
    _, err, status, took = cli(@keys.stranger("stranger-#{SecureRandom.hex(2)}"), "push", queue, stdin: "no")
    assert_equal 4, status
    assert_equal "unauthenticated\nauthentication refused by the broker at #{@broker.endpoint}: key not allowed\n", err
    assert_operator took, :<, scaled(5)
    _, err, status, = cli(@keys.secret("producer"), "serve", unique("sec-cli-svc"), "--mode", "echo")
    assert_equal [4, "forbidden"], [status, err.lines.first&.chomp], err
    _, err, status, = cli(File.join(@keys.root, "missing.key_secret"), "push", queue)
    assert_equal 1, status
    assert_match(/\Abad_certificate\nZEROMESH_CURVE_SECRET \(curve_secret\): cannot read certificate/, err)
  end

  # -- the subscriber ------------------------------------------------------------

  def test_a_subscriber_without_the_role_is_refused_from_its_next_receive
    log = StringIO.new
    sub = client("producer", logger: Logger.new(log)).subscribe("")
    error = Timeout.timeout(scaled(10)) { assert_raises(Zeromesh::AuthenticationError) { sub.next(timeout: 30) } }
    assert_equal "authentication refused by the broker at #{@broker.pub_endpoint}: key not allowed", error.message
    assert_includes log.string, "ERROR -- : zeromesh: authentication refused by the broker at #{@broker.pub_endpoint}"
    # Said once: the next receive waits (the socket keeps trying; a key may be added).
    assert_nil sub.next(timeout: 0.3)
  end

  def test_a_subscriber_without_keys_is_refused
    sub = client(nil, curve_server: nil, curve_secret: nil).subscribe("")
    error = Timeout.timeout(scaled(10)) { assert_raises(Zeromesh::AuthenticationError) { sub.next(timeout: 30) } }
    assert_match(/handshake failed/, error.message)
  end
end
