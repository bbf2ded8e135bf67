# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# Client#push_many against a scripted fake broker (TestSupport::FakeBroker):
# the forms it sends, how it falls back for an older broker, resends,
# refusals and timeouts. push_many runs in a thread of its own; the test
# thread plays the broker.
class PushManyWireTest < Minitest::Test
  include TestSupport
  Codec = Zeromesh::Codec
  Wire = Zeromesh::Wire

  def setup
    @ctx = Zeromesh::Sockets.new_context
    @fake = FakeBroker.new(@ctx)
    @client = Zeromesh::Client.new(endpoint: @fake.endpoint, pub_endpoint: "tcp://127.0.0.1:#{free_port}", context: @ctx)
    @confirms = 0
  end

  def teardown
    if @pusher
      @pusher.kill # still running only if the test failed; let it leave its poll before the sockets close
      begin
        @pusher.join(scaled(2))
      rescue StandardError
        nil # what it raised was the test's business
      end
    end
    @client.close
    @fake.close
    @ctx.terminate
  end

  # push_many in its own thread (it owns that thread's DEALER).
  def push_many(bodies, **options)
    @pusher = Thread.new { @client.push_many("q", bodies, **options) }
    @pusher.report_on_exception = false
    @pusher
  end

  # The thread's result, or the exception it raised; fails if it does not end in time.
  def outcome(thread, timeout = 5)
    assert thread.join(scaled(timeout)), "push_many did not return within #{timeout}s"
    thread.value
  rescue Zeromesh::Error => e
    e
  end

  def job_ids(env)
    env.command == Wire::PUSH ? env.items.map { |header, _| header["id"] } : env.header["ids"]
  end

  def bodies_of(env)
    env.command == Wire::PUSH ? env.items.map(&:last) : env.items
  end

  def confirm(peer, ids: [], batches: nil)
    header = { "id" => "c#{@confirms += 1}", "ids" => ids }
    header["batches"] = batches if batches
    @fake.send(peer, Codec.pack_control(Wire::CONFIRM, header))
  end

  def refuse(peer, re, code)
    @fake.send(peer, Codec.pack_control(Wire::ERROR, { "id" => "e#{@confirms += 1}", "re" => re, "code" => code,
                                                       "message" => "refused: #{code}" }))
  end

  # An older broker: answers unknown_command (re = the message id) to the
  # forms it does not know, confirms the others, until push_many returns.
  # Returns each message it got as [form, job ids, bodies].
  def serve_old_broker(thread, knows:)
    seen = []
    deadline = Zeromesh::Clock.now + scaled(5)
    while thread.alive?
      flunk "push_many still running after 5s" if Zeromesh::Clock.now > deadline
      next unless @fake.anything?(0.05)

      peer, env = @fake.recv
      seen << [env.command, job_ids(env), bodies_of(env)]
      if env.command == Wire::PUSH || knows.include?(env.command)
        env.command == Wire::PUSH ? confirm(peer, ids: job_ids(env)) : confirm(peer, batches: [env.header["id"]])
      else
        refuse(peer, env.header["id"], Wire::E_UNKNOWN_COMMAND)
      end
    end
    seen
  end

  # The id each body was pushed under, from what the broker saw.
  def ids_by_body(seen)
    seen.flat_map { |_, ids, bodies| bodies.zip(ids) }.to_h
  end

  def test_first_message_is_push_packed_with_the_sizes
    bodies = ["a", "", "ccc", "h\u00e9llo", "x" * 100]
    thread = push_many(bodies, batch: 3, headers: { k: "v" }, trace: "t1")
    peer, first = @fake.recv
    _, second = @fake.recv
    assert_equal [Wire::PUSH_PACKED, Wire::PUSH_PACKED], [first.command, second.command]
    assert_equal [[1, 0, 3], [6, 100]], [first.header["sizes"], second.header["sizes"]]
    assert_equal [bodies[0, 3].map(&:b), bodies[3, 2].map(&:b)], [first.items, second.items]
    assert_equal ["q", { "k" => "v" }, "t1"], first.header.values_at("queue", "headers", "trace")
    message_ids = [first.header["id"], second.header["id"]]
    all_ids = first.header["ids"] + second.header["ids"]
    assert_equal 7, (message_ids + all_ids).uniq.size, "each message and each job has an id of its own"
    confirm(peer, batches: [first.header["id"]])  # a whole message at once...
    confirm(peer, ids: second.header["ids"])      # ...and job by job
    assert_equal all_ids, outcome(thread)
  end

  def test_bodies_over_1_mib_go_as_push_batch
    half = Wire::MAX_PACKED_BYTES / 2
    bodies = ["a" * half, "b" * half, "c" * half, "d" * (half + 1)] # 1 MiB exactly, then 1 byte more
    thread = push_many(bodies, batch: 2)
    peer, first = @fake.recv
    _, second = @fake.recv
    assert_equal [Wire::PUSH_PACKED, Wire::PUSH_BATCH], [first.command, second.command]
    assert_nil second.header["sizes"]
    assert_equal bodies, first.items + second.items
    confirm(peer, batches: [first.header["id"], second.header["id"]])
    assert_equal first.header["ids"] + second.header["ids"], outcome(thread)
  end

  def test_a_broker_without_packed_or_batch_gets_push_batch_then_push
    bodies = Array.new(5) { |i| "b#{i}" }
    thread = push_many(bodies, batch: 2, headers: { "k" => "v" })
    seen = serve_old_broker(thread, knows: [])
    forms = seen.map(&:first)
    assert_equal [Wire::PUSH_PACKED, Wire::PUSH_BATCH, Wire::PUSH], forms.uniq, "each form in turn"
    assert_equal [Wire::PUSH], forms.drop_while { |f| f != Wire::PUSH }.uniq, "PUSH from then on"
    pushed = seen.select { |form, _, _| form == Wire::PUSH }
    assert_equal bodies, pushed.flat_map(&:last).sort, "every job lands as PUSH"
    by_body = ids_by_body(pushed)
    assert_equal bodies.map { |b| by_body.fetch(b) }, outcome(thread)
  end

  def test_several_refusals_of_packed_step_down_once
    bodies = Array.new(6) { |i| "b#{i}" }
    thread = push_many(bodies, batch: 2) # three PUSH_PACKED out before the first refusal is read
    seen = serve_old_broker(thread, knows: [Wire::PUSH_BATCH])
    forms = seen.map(&:first)
    assert_equal 3, forms.count(Wire::PUSH_PACKED)
    refute_includes forms, Wire::PUSH, "a broker that takes PUSH_BATCH never needs PUSH"
    batches = seen.select { |form, _, _| form == Wire::PUSH_BATCH }
    assert_equal bodies, batches.flat_map(&:last).sort
    by_body = ids_by_body(batches)
    assert_equal bodies.map { |b| by_body.fetch(b) }, outcome(thread)
    # The job ids did not change with the form.
    assert_equal seen.select { |f, _, _| f == Wire::PUSH_PACKED }.flat_map { |_, ids, _| ids }.sort, outcome(thread).sort
  end

  def test_never_confirmed_raises_timeout_with_what_was_accepted
    started = Zeromesh::Clock.now
    thread = push_many(%w[a b c], batch: 2, timeout: 0.5)
    peer, first = @fake.recv
    @fake.recv
    confirm(peer, ids: first.header["ids"]) # the second message is never answered
    error = outcome(thread)
    elapsed = Zeromesh::Clock.now - started
    assert_instance_of Zeromesh::TimeoutError, error
    assert_match(/1 of 3 pushes to "q" unconfirmed after 0\.5s/, error.message)
    assert_includes error.message, @fake.endpoint
    assert_equal first.header["ids"], error.accepted
    assert_operator elapsed, :>=, 0.5
    assert_operator elapsed, :<, scaled(1.8), "gave up long after the timeout"
  end

  def test_the_timeout_counts_from_the_last_confirmation
    timeout = scaled(0.5)
    thread = push_many(%w[a b c], batch: 1, timeout: timeout)
    received = Array.new(3) { @fake.recv }
    started = Zeromesh::Clock.now
    received.each do |peer, env|
      sleep timeout * 0.6 # each confirmation within the timeout of the one before, the last well after it
      confirm(peer, ids: env.header["ids"])
    end
    assert_equal received.flat_map { |_, env| env.header["ids"] }, outcome(thread)
    assert_operator Zeromesh::Clock.now - started, :>, timeout
  end

  def test_a_resend_carries_the_same_job_ids
    thread = push_many(%w[a b c], batch: 3)
    peer, first = @fake.recv
    sent_at = Zeromesh::Clock.now
    a, b, c = first.header["ids"]
    confirm(peer, ids: [b])
    _, again = @fake.recv(timeout: Zeromesh::Defaults::PUSH_RESEND_S + 2)
    assert_operator Zeromesh::Clock.now - sent_at, :>=, Zeromesh::Defaults::PUSH_RESEND_S - 0.2
    assert_equal [Wire::PUSH_PACKED, [a, c], %w[a c]], [again.command, again.header["ids"], again.items]
    refute_equal first.header["id"], again.header["id"], "a resend goes under a new message id"
    confirm(peer, batches: [again.header["id"]])
    assert_equal [a, b, c], outcome(thread)
  end

  def test_the_first_refusal_stops_sending_and_raises_with_what_was_accepted
    thread = push_many(Array.new(8) { |i| "b#{i}" }, window: 4, batch: 2)
    peer, first = @fake.recv
    _, second = @fake.recv
    refute @fake.anything?(0.1), "a window of 4 holds two messages of 2"
    confirm(peer, ids: [first.header["ids"][0]])
    refuse(peer, first.header["ids"][1], Wire::E_QUEUE_FULL)
    refute @fake.anything?(0.2), "nothing new after a refusal, though the window has room"
    assert thread.alive?, "what is in flight is waited for"
    confirm(peer, batches: [second.header["id"]])
    error = outcome(thread)
    assert_instance_of Zeromesh::QueueFullError, error
    assert_equal "queue_full", error.code
    assert_equal [first.header["ids"][0], *second.header["ids"]], error.accepted
  end

  def test_an_error_naming_a_message_refuses_all_its_jobs
    thread = push_many(%w[a b], batch: 2)
    peer, first = @fake.recv
    refuse(peer, first.header["id"], Wire::E_BAD_HEADER)
    error = outcome(thread)
    assert_instance_of Zeromesh::RemoteError, error
    assert_equal ["bad_header", []], [error.code, error.accepted]
  end

  def test_no_bodies_or_bad_arguments_send_nothing
    assert_equal [], @client.push_many("q", [])
    assert_raises(ArgumentError) { @client.push_many("q", ["a"], window: 0) }
    assert_raises(ArgumentError) { @client.push_many("q", ["a"], batch: 0) }
    assert_raises(ArgumentError) { @client.push_many("q", ["a"], batch: Wire::MAX_ITEMS_PER_MESSAGE + 1) }
    assert_raises(ArgumentError) { @client.push_many("", ["a"]) }
    assert_raises(TypeError) { @client.push_many("q", ["a", 5]) }
    assert_raises(TypeError) { @client.push_many("q", ["a"], headers: "k=v") }
    refute @fake.anything?(0.2), "nothing may reach the broker"
  end
end
