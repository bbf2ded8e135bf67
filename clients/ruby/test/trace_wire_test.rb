# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# Traces (DESIGN issue 19) on the wire, against a scripted fake broker
# (TestSupport::FakeBroker) that both a Worker and the Client its handlers
# use talk to: READY's host, and what a handler pushes or requests carrying
# the handled message's trace with its id as parent.
class TraceWireTest < Minitest::Test
  include TestSupport
  Codec = Zeromesh::Codec
  Wire = Zeromesh::Wire

  def setup
    @ctx = Zeromesh::Sockets.new_context
    @fake = FakeBroker.new(@ctx)
    @client = Zeromesh::Client.new(endpoint: @fake.endpoint, pub_endpoint: "tcp://127.0.0.1:#{free_port}", context: @ctx)
    @workers = []
  end

  def teardown
    @workers.each { |w| w.stop(grace: 1) }
    @client.close
    @fake.close
    @ctx.terminate
  end

  def start_worker(handlers, **options)
    worker = Zeromesh::Worker.new(endpoint: @fake.endpoint, context: @ctx, **options)
    handlers.each { |name, fn| worker.handle(name, fn) }
    @workers << worker.start
    worker
  end

  def job(id, trace, queue: "q")
    Codec.pack_item(Wire::JOB, { "id" => id, "queue" => queue, "attempt" => 1, "trace" => trace, "lease_ms" => 60_000 }, "".b)
  end

  # Answer the client's messages as a broker would (CONFIRM, REPLY) until the
  # worker has settled (ACK, NACK, REPLY, ERROR) every id of settled; returns
  # the client's messages as [command, header, bodies].
  def serve(settled)
    seen = []
    left = settled.dup
    until left.empty?
      peer, env = @fake.recv(timeout: 5)
      case env.command
      when Wire::PUSH
        seen << [env.command, env.header, [env.items[0][1]]]
        @fake.send(peer, Codec.pack_control(Wire::CONFIRM, { "id" => "c", "ids" => env.items.map { |h, _| h["id"] } }))
      when Wire::PUSH_PACKED, Wire::PUSH_BATCH
        seen << [env.command, env.header, env.items]
        @fake.send(peer, Codec.pack_control(Wire::CONFIRM, { "id" => "c", "ids" => [], "batches" => [env.header["id"]] }))
      when Wire::REQUEST
        seen << [env.command, env.header, [env.items[0][1]]]
        @fake.send(peer, Codec.pack_item(Wire::REPLY, { "id" => "rp", "re" => env.header["id"] }, "ok".b))
      when Wire::ACK then left -= env.header["ids"]
      when Wire::NACK, Wire::REPLY, Wire::ERROR then left.delete(env.header["re"])
      end
    end
    seen
  end

  def test_ready_carries_the_host_name
    start_worker({ "q" => ->(_job) {} })
    _, ready = @fake.accept
    assert_equal Socket.gethostname, ready.header["host"]
    assert_equal Zeromesh::Worker.host_name, ready.header["host"]
  end

  def test_what_a_handler_sends_carries_its_trace_and_id_as_parent
    client = @client
    handler = lambda do |j|
      client.push("child", "one")
      client.push_many("kids", %w[a b])
      client.request("svc", "ask")
      client.push("mine", "explicit", trace: "own-trace")
      client.push("mine", "explicit-parent", trace: "own-trace", parent: "p-9")
      j.request? ? "done" : nil
    end
    start_worker({ "q" => handler, "front" => handler })
    peer, = @fake.accept
    @fake.send(peer, job("j1", "T1"))
    check_children(serve(["j1"]), "T1", "j1")
    request = { "id" => "r1", "service" => "front", "timeout_ms" => 10_000, "trace" => "T2", "attempt" => 1 }
    @fake.send(peer, Codec.pack_item(Wire::REQUEST, request, "".b))
    check_children(serve(["r1"]), "T2", "r1")
  end

  def check_children(seen, trace, parent)
    by_queue = seen.to_h { |command, header, bodies| [header["queue"] || header["service"], [command, header, bodies]] }
    %w[child kids svc].each do |name|
      _, header, = by_queue.fetch(name)
      assert_equal [trace, parent], header.values_at("trace", "parent"), "#{name} from the handler of #{parent}"
    end
    assert_equal Wire::PUSH_PACKED, by_queue["kids"][0]
    explicit = seen.select { |_, header, _| header["queue"] == "mine" }.to_h { |_, header, bodies| [bodies[0], header] }
    assert_equal ["own-trace", nil], explicit.fetch("explicit").values_at("trace", "parent"), "an explicit trace wins"
    assert_equal %w[own-trace p-9], explicit.fetch("explicit-parent").values_at("trace", "parent")
  end

  def test_after_the_handler_the_thread_has_no_current_job
    threads = Queue.new
    inside = Queue.new
    start_worker({ "ok" => lambda { |j|
      threads << Thread.current
      inside << Zeromesh.current_job
      j
    }, "bad" => lambda { |_j|
      threads << Thread.current
      raise "broken"
    } }, concurrency: 1)
    peer, = @fake.accept
    @fake.send(peer, job("j1", "T1", queue: "ok"))
    serve(["j1"])
    # The handler ran before its ACK: these are filled.
    assert_equal "j1", inside.pop(true).id, "Zeromesh.current_job in the handler"
    handler_thread = threads.pop(true)
    assert_nil handler_thread[Zeromesh::Tracing::KEY], "after a handler returned"
    @fake.send(peer, job("j2", "T2", queue: "bad"))
    serve(["j2"])
    assert_same handler_thread, threads.pop(true)
    assert_nil handler_thread[Zeromesh::Tracing::KEY], "after a handler raised"
  end

  def test_a_push_outside_a_handler_has_its_own_trace
    job = Zeromesh::Job.new(:job, "q", { "id" => "j1", "trace" => "T1" }, "".b, nil)
    assert_raises(RuntimeError) { Zeromesh::Tracing.within(job) { raise "broken" } }
    assert_nil Zeromesh.current_job
    pusher = Thread.new { @client.push("plain", "x") }
    peer, env = @fake.recv
    @fake.send(peer, Codec.pack_control(Wire::CONFIRM, { "id" => "c", "ids" => [env.header["id"]] }))
    assert pusher.join(scaled(5))
    refute env.header.key?("trace"), "the broker makes it its own trace"
    refute env.header.key?("parent")
  end

  def test_two_handlers_at_once_keep_their_own_traces
    client = @client
    started = Queue.new
    go = Zeromesh::Latch.new
    start_worker({ "q" => lambda { |j|
      started << j.id
      go.wait(scaled(5)) # both run at once before either pushes
      client.push("child", j.id)
    } }, concurrency: 2)
    peer, = @fake.accept
    @fake.send(peer, Codec.pack_items(Wire::JOB, [["j1", "T1"], ["j2", "T2"]].map do |id, trace|
      [{ "id" => id, "queue" => "q", "attempt" => 1, "trace" => trace, "lease_ms" => 60_000 }, "".b]
    end))
    wait_until(3, "both handlers to start") { started.size == 2 }
    go.set
    seen = serve(%w[j1 j2])
    got = seen.to_h { |_, header, bodies| [bodies[0], header.values_at("trace", "parent")] }
    assert_equal({ "j1" => %w[T1 j1], "j2" => %w[T2 j2] }, got)
  end

  def test_parent_without_trace_is_refused_before_sending
    error = assert_raises(ArgumentError) { @client.push("q", "x", parent: "p") }
    assert_match(/parent: needs a trace:/, error.message)
    assert_raises(ArgumentError) { @client.push("q", "x", trace: "t", parent: "") }
    refute @fake.anything?(0.2), "nothing was sent"
  end
end
