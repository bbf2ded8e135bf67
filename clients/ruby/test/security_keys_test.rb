# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "curve_support"
require "securerandom"
require "stringio"
require "timeout"

# Keys added and removed while a secured broker runs (SPEC 14.3), seen from
# the Ruby client: a removed key's next call is forbidden and its new
# connections are refused; a removed worker and a removed subscriber stop
# with AuthenticationError; a key added is let in without a restart.
class SecurityKeysTest < Minitest::Test
  include TestSupport

  def self.keys
    @keys ||= KeySet.new(File.join(TestSupport.tmpdir, "rotation-keys"), KeySet::ROLES.slice("everything", "subscriber"))
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

  def client(secret, logger: nil)
    Zeromesh::Client.new(endpoint: @broker.endpoint, pub_endpoint: @broker.pub_endpoint, logger: logger,
                         curve_server: @keys.broker_public, curve_secret: secret).tap { |c| @closers << -> { c.close } }
  end

  # A new key with grants, once the broker has read it (it reads its directory every second).
  def admitted(name, grants)
    secret = @keys.add(name, grants)
    wait_until(10, "key #{name} to be admitted") do
      c = Zeromesh::Client.new(endpoint: @broker.endpoint, curve_server: @keys.broker_public, curve_secret: secret)
      c.ping
    rescue Zeromesh::AuthenticationError
      false
    ensure
      c&.close
    end
    secret
  end

  def fresh_name(prefix)
    "#{prefix}-#{SecureRandom.hex(3)}"
  end

  def test_a_key_removed_while_connected_is_forbidden_and_then_refused
    name = fresh_name("temp")
    c = client(admitted(name, %w[producer admin]))
    queue = fresh_name("rot-q")
    c.push(queue, "before") # connected (handshake done) before the key goes
    accepted = 1
    @keys.remove(name)
    error = wait_until(10, "the broker to notice the removal") do
      c.push(queue, "before the broker noticed")
      accepted += 1
      nil
    rescue Zeromesh::ForbiddenError => e
      e
    end
    assert_match(/\Akey #{name} was removed/, error.message)
    assert_raises(Zeromesh::ForbiddenError) { c.ping }
    # A new connection with the removed key does not get in at all.
    refused = assert_raises(Zeromesh::AuthenticationError) { client(@keys.secret(name)).ping }
    assert_match(/key not allowed\z/, refused.message)
    assert_equal accepted, client(@keys.secret("everything")).status.dig("queues", queue, "enqueued").to_i,
                 "only the pushes confirmed before the removal were queued"
  end

  def test_a_key_added_is_let_in_without_a_restart
    name = fresh_name("late")
    secret = @keys.stranger(name)
    assert_raises(Zeromesh::AuthenticationError) { client(secret).ping }
    @keys.admit(name)
    wait_until(10, "the new key to be admitted") do
      client(secret).ping
    rescue Zeromesh::AuthenticationError
      false
    end
  end

  def test_a_worker_whose_key_is_removed_is_told_and_raises_from_run
    name = fresh_name("temp-worker")
    secret = admitted(name, ["worker"])
    log = StringIO.new
    w = Zeromesh::Worker.new(endpoint: @broker.endpoint, logger: Logger.new(log), curve_server: @keys.broker_public,
                             curve_secret: secret)
    @closers << -> { w.stop(grace: 1) }
    w.handle(fresh_name("rot-work")) { |_job| nil }
    w.start
    assert w.wait_ready(scaled(5))
    @keys.remove(name)
    error = Timeout.timeout(scaled(15)) { assert_raises(Zeromesh::AuthenticationError) { w.run } }
    assert_match(/key not allowed\z/, error.message)
    assert_includes log.string, "said DISCONNECT (key removed)"
    assert_equal 1, log.string.scan("ERROR -- : zeromesh: authentication refused").size, log.string
  end

  def test_a_removed_subscriber_is_refused_and_the_others_hear_on
    name = fresh_name("temp-sub")
    topic = fresh_name("rot-topic")
    producer = client(@keys.secret("everything"))
    removed = client(admitted(name, ["subscriber"])).subscribe(topic)
    kept = client(@keys.secret("subscriber")).subscribe(topic)
    [removed, kept].each do |sub|
      wait_until(10, "the subscription to reach the broker") do
        producer.publish(topic, "warm")
        sub.next(timeout: 0.1)
      end
    end
    @keys.remove(name)
    error = Timeout.timeout(scaled(15)) do
      assert_raises(Zeromesh::AuthenticationError) { loop { removed.next(timeout: 0.2) } }
    end
    assert_match(/\Aauthentication refused by the broker at #{Regexp.escape(@broker.pub_endpoint)}: key not allowed\z/,
                 error.message)
    wait_until(10, "the kept subscriber to hear events again") do
      producer.publish(topic, "after")
      (event = kept.next(timeout: 0.1)) && event.body == "after"
    end
  end
end
