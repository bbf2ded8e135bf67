# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "date"

# Jobs for later and for once, and a handler's own retry delay, against a
# scripted fake broker (TestSupport::FakeBroker): exactly the header fields
# they put on the wire (SPEC.md PUSH, CONFIRM, NACK), what a CONFIRM's
# duplicates make push return, and that bad options send nothing at all.
class JobOptionsWireTest < Minitest::Test
  include TestSupport
  Codec = Zeromesh::Codec
  Wire = Zeromesh::Wire

  def setup
    @ctx = Zeromesh::Sockets.new_context
    @fake = FakeBroker.new(@ctx)
    @client = Zeromesh::Client.new(endpoint: @fake.endpoint, pub_endpoint: "tcp://127.0.0.1:#{free_port}", context: @ctx)
    @threads = []
    @workers = []
  end

  def teardown
    @threads.each do |t|
      t.kill # still running only if the test failed
      t.join(scaled(2))
    rescue StandardError
      nil # what it raised was the test's business
    end
    @workers.each { |w| w.stop(grace: 1) }
    @client.close
    @fake.close
    @ctx.terminate
  end

  # Run the block in a thread of its own (a client call owns its thread's DEALER).
  def async(&block)
    Thread.new(&block).tap do |t|
      t.report_on_exception = false
      @threads << t
    end
  end

  def outcome(thread, timeout = 5)
    assert thread.join(scaled(timeout)), "the call did not return within #{timeout}s"
    thread.value
  end

  def confirm(peer, ids, duplicates: nil)
    header = { "id" => "c-#{ids.first}", "ids" => ids }
    header["duplicates"] = duplicates if duplicates
    @fake.send(peer, Codec.pack_control(Wire::CONFIRM, header))
  end

  # [peer, header] of a one-job PUSH, the job confirmed (with duplicates when given); and what push returned.
  def push_and_confirm(body = "card", duplicate_of: nil, **options)
    pusher = async { @client.push("cards", body, **options) }
    peer, env = @fake.recv
    assert_equal Wire::PUSH, env.command
    assert_equal 1, env.items.size
    header = env.header
    confirm(peer, [header["id"]], duplicates: duplicate_of && { header["id"] => duplicate_of })
    [header, outcome(pusher)]
  end

  def test_delay_becomes_at_ms_on_the_wall_clock
    before = (Time.now.to_r * 1000).to_i
    header, id = push_and_confirm(delay: 2.5)
    after = (Time.now.to_r * 1000).to_i
    assert_equal header["id"], id
    assert_includes (before + 2500)..(after + 2500), header["at_ms"]
    refute header.key?("unique_key")
  end

  def test_at_is_an_instant_whatever_its_offset
    christmas = Time.new(2026, 12, 25, 8, 0, 0, "+01:00")
    header, = push_and_confirm(at: christmas)
    assert_equal 1_798_182_000_000, header["at_ms"], "08:00 at +01:00 is 07:00 UTC"
    header, = push_and_confirm(at: christmas.getlocal("-05:00"))
    assert_equal 1_798_182_000_000, header["at_ms"], "the same instant seen from another zone"
    header, = push_and_confirm(at: Time.at(1_798_182_000, 123_456, :usec))
    assert_equal 1_798_182_000_123, header["at_ms"]
    header, = push_and_confirm(at: Time.at(-10))
    assert_equal 0, header["at_ms"], "a time before 1970 is in the past: now"
  end

  def test_a_unique_push_goes_as_push_and_returns_the_holder_named_in_duplicates
    header, id = push_and_confirm(unique_key: "card:9", unique_ttl: 1.5, duplicate_of: "holder-1")
    assert_equal ["card:9", 1500], header.values_at("unique_key", "unique_ttl_ms")
    refute header.key?("at_ms")
    assert_equal "holder-1", id, "the CONFIRM's duplicates name the job that holds the key"

    header, id = push_and_confirm(unique_key: :"card:10", delay: 1)
    assert_equal "card:10", header["unique_key"]
    refute header.key?("unique_ttl_ms"), "no TTL: held until the job is done"
    assert header["at_ms"]
    assert_equal header["id"], id, "not a duplicate: its own id"
  end

  def test_push_many_puts_at_ms_in_every_message_it_sends
    pusher = async { @client.push_many("cards", %w[a b c], delay: 60) }
    peer, env = @fake.recv
    assert_equal Wire::PUSH_PACKED, env.command
    assert_in_delta (Time.now.to_r * 1000).to_i + 60_000, env.header["at_ms"], 2000
    confirm(peer, env.header["ids"])
    assert_equal env.header["ids"], outcome(pusher)

    # Stepped down to PUSH items (a broker without batches): each item carries it.
    pusher = async { @client.push_many("cards", %w[d e], at: Time.at(1_798_182_000)) }
    peer, env = @fake.recv
    @fake.send(peer, Codec.pack_control(Wire::ERROR, { "id" => "e1", "re" => env.header["id"],
                                                       "code" => Wire::E_UNKNOWN_COMMAND, "message" => "no" }))
    peer, env = @fake.recv
    assert_equal Wire::PUSH_BATCH, env.command
    assert_equal 1_798_182_000_000, env.header["at_ms"]
    @fake.send(peer, Codec.pack_control(Wire::ERROR, { "id" => "e2", "re" => env.header["id"],
                                                       "code" => Wire::E_UNKNOWN_COMMAND, "message" => "no" }))
    peer, env = @fake.recv
    assert_equal Wire::PUSH, env.command
    assert_equal [1_798_182_000_000] * 2, env.items.map { |h, _| h["at_ms"] }
    confirm(peer, env.items.map { |h, _| h["id"] })
    assert_equal 2, outcome(pusher).size
  end

  def test_bad_options_are_refused_before_anything_is_sent
    refusals = {
      [ArgumentError, /0 or more/] => { delay: -1 },
      [ArgumentError, /delay: must be/] => { delay: Float::INFINITY },
      [ArgumentError, /delay: must be/] => { delay: "10" },
      [ArgumentError, /not both/] => { delay: 1, at: Time.now + 5 },
      [TypeError, /at: must be a Time \(an instant/] => { at: "2026-12-25T08:00:00" },
      [TypeError, /at: must be a Time/] => { at: Date.new(2026, 12, 25) },
      [ArgumentError, /unique_ttl: needs a unique_key:/] => { unique_ttl: 5 },
      [ArgumentError, /above 0/] => { unique_key: "k", unique_ttl: 0 },
      [ArgumentError, /unique_key .* must be 1\.\.255 bytes/] => { unique_key: "" },
      [TypeError, /unique_key must be a String/] => { unique_key: 42 }
    }
    refusals.each do |(error, message), options|
      raised = assert_raises(error, options.inspect) { @client.push("cards", "x", **options) }
      assert_match message, raised.message
    end
    assert_raises(ArgumentError) { @client.push_many("cards", %w[a b], delay: -0.5) }
    assert_raises(TypeError) { @client.push_many("cards", %w[a b], at: 1_798_182_000) }
    refute @fake.anything?(scaled(0.3)), "nothing may reach the broker"
  end

  # -- a handler's retry delay (NACK retry_in_ms) ------------------------------------

  def start_worker(&handler)
    worker = Zeromesh::Worker.new(endpoint: @fake.endpoint)
    worker.handle("q", handler)
    @workers << worker.start
    worker
  end

  # The NACK header the worker answers job id with.
  def nack_for(peer, id)
    job = { "id" => id, "queue" => "q", "attempt" => 1, "trace" => id, "lease_ms" => 60_000 }
    @fake.send(peer, Codec.pack_items(Wire::JOB, [[job, "".b]]))
    deadline = Zeromesh::Clock.now + scaled(3)
    loop do
      _, env = @fake.recv
      return env.header if env.command == Wire::NACK && env.header["re"] == id
      flunk "no NACK for #{id}" if Zeromesh::Clock.now > deadline
    end
  end

  def test_a_handler_names_its_retry_delay_by_raising_retry
    start_worker do |job|
      case job.id
      when "later" then raise Zeromesh::Retry.new(in: 2.5)
      when "said" then raise Zeromesh::Retry.new("mail provider busy", in: 30)
      when "again" then raise Zeromesh::Retry.new(in: 0)
      when "dead" then raise Zeromesh::DeadLetter, "poison"
      else raise "broken"
      end
    end
    peer, = @fake.accept
    later = nack_for(peer, "later")
    assert_equal [2500, "Zeromesh::Retry: retry in 2.5s"], later.values_at("retry_in_ms", "error")
    refute later.key?("retry"), "retried (the default)"
    assert_equal [30_000, "Zeromesh::Retry: mail provider busy"], nack_for(peer, "said").values_at("retry_in_ms", "error")
    assert_equal 0, nack_for(peer, "again")["retry_in_ms"]
    plain = nack_for(peer, "plain")
    refute plain.key?("retry_in_ms"), "any other failure waits the queue's backoff"
    dead = nack_for(peer, "dead")
    assert_equal false, dead["retry"]
    refute dead.key?("retry_in_ms")
  end

  def test_a_retry_delay_must_be_seconds
    assert_raises(ArgumentError) { Zeromesh::Retry.new(in: -1) }
    assert_raises(ArgumentError) { Zeromesh::Retry.new(in: "30") }
    assert_raises(ArgumentError) { Zeromesh::Retry.new } # in: is required
    assert_equal 30, Zeromesh::Retry.new(in: 30).retry_in
  end
end
