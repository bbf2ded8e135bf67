# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# The Worker against a scripted fake broker (TestSupport::FakeBroker, a raw ROUTER):
# exactly what it puts on the wire, and how it answers what the broker says.
class WorkerWireTest < Minitest::Test
  include TestSupport
  Codec = Zeromesh::Codec
  Wire = Zeromesh::Wire

  def setup
    @ctx = Zeromesh::Sockets.new_context
    @fake = FakeBroker.new(@ctx)
    @workers = []
  end

  def teardown
    @workers.each { |w| w.stop(grace: 1) }
    @fake.close
    @ctx.terminate
  end

  def start_worker(handlers, **options)
    worker = Zeromesh::Worker.new(endpoint: @fake.endpoint, logger: (Logger.new($stderr) if ENV["ZEROMESH_TEST_LOG"]), **options)
    handlers.each { |name, fn| worker.handle(name, fn) }
    @workers << worker.start
    worker
  end

  # Every message the fake broker gets within seconds, heartbeats included.
  def messages_within(seconds)
    out = []
    deadline = Zeromesh::Clock.now + seconds
    while (left = deadline - Zeromesh::Clock.now).positive? && @fake.anything?(left)
      out << @fake.recv(skip: [])
    end
    out
  end

  def jobs(count, queue: "q", prefix: "j")
    Codec.pack_items(Wire::JOB, Array.new(count) do |i|
      [{ "id" => "#{prefix}#{i}", "queue" => queue, "attempt" => 1, "trace" => "#{prefix}#{i}", "lease_ms" => 60_000 }, "".b]
    end)
  end

  def test_ready_then_cumulative_acks
    worker = start_worker({ "q" => ->(_job) {}, "svc" => ->(_job) { "" } }, concurrency: 4, label: "w")
    peer, env = @fake.accept
    assert worker.wait_ready(scaled(3))
    assert_equal [%w[q svc], 16, "w", "ruby"], env.header.values_at("names", "credit", "label", "lang")
    @fake.send(peer, jobs(300))
    acked = []
    messages = 0
    until acked.size >= 300
      _, ack = @fake.recv
      assert_equal Wire::ACK, ack.command
      assert_operator ack.header["ids"].size, :<=, Wire::MAX_IDS_PER_MESSAGE
      acked.concat(ack.header["ids"])
      messages += 1
    end
    assert_equal Array.new(300) { |i| "j#{i}" }.sort, acked.sort
    assert_operator messages, :<, 300, "ACKs should be gathered"
  end

  def test_job_batch_is_handled_job_by_job
    got = Queue.new
    start_worker({ "q" => lambda { |job|
      got << job
      raise "no" if job.id == "b2"
    } })
    peer, ready = @fake.accept
    # It says packed too, and still takes JOB_BATCH: the broker sends that when a run's bodies pass 1 MiB.
    assert_equal [true, true], ready.header.values_at("batch", "packed")
    header = { "id" => "m1", "queue" => "q", "lease_ms" => 30_000, "ids" => %w[b1 b2 b3], "headers" => { "k" => "v" } }
    @fake.send(peer, Codec.pack_batch(Wire::JOB_BATCH, header, ["one".b, "two".b, "".b]))
    wait_until(3, "the batch's jobs to reach the handler") { got.size == 3 }
    jobs = Array.new(3) { got.pop }.to_h { |j| [j.id, j] }
    assert_equal %w[b1 b2 b3], jobs.keys.sort
    first = jobs["b1"]
    assert_equal [:job, "q", "one", 1, "b1", nil, 30.0, { "k" => "v" }],
                 [first.kind, first.name, first.body, first.attempt, first.trace, first.error, first.lease_s, first.headers]
    assert_equal "", jobs["b3"].body
    acked = []
    nack = nil
    until acked.size == 2 && nack
      _, env = @fake.recv
      case env.command
      when Wire::ACK then acked.concat(env.header["ids"])
      when Wire::NACK then nack = env.header
      else flunk "unexpected #{env.name}"
      end
    end
    assert_equal %w[b1 b3], acked.sort
    assert_equal "b2", nack["re"]
  end

  def test_job_packed_is_handled_job_by_job
    got = Queue.new
    start_worker({ "q" => ->(job) { got << job } })
    peer, ready = @fake.accept
    assert_equal [true, true], ready.header.values_at("batch", "packed")
    header = { "id" => "m1", "queue" => "q", "lease_ms" => 30_000, "ids" => %w[p1 p2 p3], "headers" => { "k" => "v" } }
    bodies = ["one".b, "".b, "drei, \u00e9"] # an empty body, and one that is not binary until packed
    @fake.send(peer, Codec.pack_packed(Wire::JOB_PACKED, header, bodies))
    wait_until(3, "the packed jobs to reach the handler") { got.size == 3 }
    jobs = Array.new(3) { got.pop }.to_h { |j| [j.id, j] }
    assert_equal %w[p1 p2 p3], jobs.keys.sort
    header["ids"].zip(bodies).each do |id, body|
      job = jobs[id]
      assert_equal [:job, "q", body.b, 1, id, nil, 30.0, { "k" => "v" }],
                   [job.kind, job.name, job.body, job.attempt, job.trace, job.error, job.lease_s, job.headers]
    end
    acked = []
    until acked.size == 3
      _, env = @fake.recv
      assert_equal Wire::ACK, env.command, "unexpected #{env.name}"
      acked.concat(env.header["ids"])
    end
    assert_equal %w[p1 p2 p3], acked.sort
  end

  def test_batch_false_leaves_it_out_of_ready
    start_worker({ "q" => ->(_job) {} }, batch: false)
    _, ready = @fake.accept
    assert_nil ready.header["batch"]
    assert_nil ready.header["packed"], "batch: false asks for JOB only"
  end

  def test_requests_get_reply_or_remote_error_and_jobs_nack
    start_worker({ "svc" => ->(job) { raise KeyError, "no #{job.text}" if job.text == "bad"; "ok:#{job.text}" },
                   "q" => ->(_job) { raise "broken" } })
    peer, = @fake.accept
    request = lambda do |id, body|
      Codec.pack_item(Wire::REQUEST, { "id" => id, "service" => "svc", "timeout_ms" => 5000, "trace" => id, "attempt" => 1 }, body)
    end
    @fake.send(peer, request.call("r1", "fine"))
    _, reply = @fake.recv
    assert_equal [Wire::REPLY, "r1", "ok:fine"], [reply.command, reply.header["re"], reply.items[0][1]]
    @fake.send(peer, request.call("r2", "bad"))
    _, error = @fake.recv
    assert_equal [Wire::ERROR, "r2", "remote", "KeyError", "no bad"], [error.command, *error.header.values_at("re", "code", "name", "message")]
    assert_match(/worker_wire_test\.rb/, error.header["traceback"])
    @fake.send(peer, jobs(1))
    _, nack = @fake.recv
    assert_equal [Wire::NACK, "j0", "RuntimeError: broken"], [nack.command, nack.header["re"], nack.header["error"]]
    assert_nil nack.header["retry"]
  end

  def test_cancel_answers_cancelled_and_extend_is_sent
    started = Queue.new
    start_worker({ "svc" => lambda { |job|
      started << true
      sleep 0.01 until job.cancelled?
      "too late"
    }, "q" => lambda { |job|
      job.extend(90)
      sleep 0.2 # an EXTEND for a job finished in the same wake-up is not worth sending
    } })
    peer, = @fake.accept
    @fake.send(peer, Codec.pack_item(Wire::REQUEST, { "id" => "r1", "service" => "svc", "timeout_ms" => 5000 }, ""))
    wait_until(3, "the handler to start") { !started.empty? }
    @fake.send(peer, Codec.pack_control(Wire::CANCEL, { "id" => "c1", "re" => "r1" }))
    _, error = @fake.recv
    assert_equal %w[r1 cancelled], error.header.values_at("re", "code")
    @fake.send(peer, jobs(1))
    _, extend = @fake.recv
    assert_equal [Wire::EXTEND, ["j0"], 90_000], [extend.command, extend.header["ids"], extend.header["lease_ms"]]
    _, ack = @fake.recv
    assert_equal [Wire::ACK, ["j0"]], [ack.command, ack.header["ids"]]
  end

  def test_heartbeats_continue_while_a_handler_computes
    start_worker({ "q" => lambda { |_job|
      finish = Zeromesh::Clock.now + 2
      x = 0
      x += 1 while Zeromesh::Clock.now < finish # pure Ruby: holds the GVL whenever it can
      x
    } }, heartbeat_s: 0.3)
    peer, = @fake.accept
    @fake.send(peer, jobs(1))
    beats = []
    deadline = Zeromesh::Clock.now + scaled(5)
    loop do
      assert_operator Zeromesh::Clock.now, :<, deadline, "no ACK within 5s"
      from, env = @fake.recv(skip: [])
      break if env.command == Wire::ACK
      next unless env.command == Wire::HEARTBEAT

      beats << Zeromesh::Clock.now
      # Answer as a live broker does, or the worker rightly starts afresh after 3 silent beats.
      @fake.send(from, Codec.pack_control(Wire::HEARTBEAT, { "id" => "hb", "epoch" => "e1" }))
    end
    warn beats.each_cons(2).map { |a, b| (b - a).round(3) }.inspect if ENV["ZEROMESH_TEST_LOG"]
    # A pure-Ruby handler holds the GVL; the I/O thread gets it back within
    # MRI's 100 ms time slice, so beats keep their cadence within about that.
    assert_operator beats.size, :>=, 5, "heartbeats stopped while the handler ran"
    assert_operator beats.each_cons(2).map { |a, b| b - a }.max, :<, scaled(0.55)
  end

  def test_ready_again_after_unknown_peer_before_the_broker_ever_answered
    start_worker({ "q" => ->(_job) {} })
    peer, ready = @fake.recv
    assert_equal Wire::READY, ready.command
    @fake.send(peer, Codec.pack_control(Wire::ERROR, { "id" => "e", "code" => "unknown_peer", "message" => "who?" }))
    again, env = @fake.recv
    assert_equal [Wire::READY, peer], [env.command, again], "nothing to leave yet: READY on the same connection"
  end

  # A broker that knew this connection forgot it (or a new one took its
  # address): the worker leaves it, never registering it again.
  def test_unknown_peer_once_registered_means_leave_and_register_a_fresh_connection
    start_worker({ "q" => ->(_job) {} })
    peer, = @fake.accept
    @fake.send(peer, Codec.pack_control(Wire::ERROR, { "id" => "e", "code" => "unknown_peer", "message" => "who?" }))
    old, bye = @fake.recv
    assert_equal [Wire::DISCONNECT, peer], [bye.command, old]
    fresh, env = @fake.recv
    assert_equal Wire::READY, env.command
    refute_equal peer, fresh
    refute @fake.anything?(0.3), "nothing more, above all no READY on the connection left"
  end

  # Jobs received on a connection the worker replaced: the one running has its
  # result dropped, those not started never run, and no answer for any of
  # them goes out on the new connection.
  def test_jobs_of_a_replaced_connection_are_abandoned
    release = Queue.new
    ran = Queue.new
    start_worker({ "q" => ->(job) { ran << job.id; release.pop } }, concurrency: 1, heartbeat_s: 0.3)
    peer, = @fake.accept(epoch: "e1")
    @fake.send(peer, jobs(3))
    wait_until(3, "the first job to start") { release.num_waiting == 1 }
    @fake.send(peer, Codec.pack_control(Wire::HEARTBEAT, { "id" => "hb2", "epoch" => "e2" }))
    old, bye = @fake.recv
    assert_equal [Wire::DISCONNECT, peer], [bye.command, old]
    assert_match(/epoch changed e1 -> e2/, bye.header["reason"])
    fresh, ready = @fake.recv
    assert_equal Wire::READY, ready.command
    @fake.send(fresh, Codec.pack_control(Wire::HEARTBEAT, { "id" => "hb3", "epoch" => "e2", "re" => ready.header["id"] }))
    release << :go
    answers = messages_within(0.6).map { |_, env| env.command } & [Wire::ACK, Wire::NACK]
    assert_empty answers, "no answer for a job of the connection left"
    assert_equal ["j0"], Array.new(ran.size) { ran.pop }, "the jobs not started never run"
  end

  def test_a_heartbeat_answered_as_a_ping_means_register_again
    worker = start_worker({ "q" => ->(_job) {} }, heartbeat_s: 0.2)
    peer, env = @fake.recv
    assert_equal Wire::READY, env.command
    @fake.send(peer, Codec.pack_control(Wire::HEARTBEAT, { "id" => "hb", "epoch" => "e1", "re" => env.header["id"] }))
    assert worker.wait_ready(scaled(3)), "a HEARTBEAT naming the READY registers the worker"
    _, beat = @fake.recv(skip: [])
    assert_equal Wire::HEARTBEAT, beat.command
    # The broker forgot us and answers our beat as a stranger's ping.
    @fake.send(peer, Codec.pack_control(Wire::HEARTBEAT, { "id" => "hb2", "epoch" => "e1", "re" => beat.header["id"] }))
    again, env = @fake.recv
    assert_equal [Wire::READY, peer], [env.command, again]
  end

  # SPEC 2.4 over two brokers: a share lowered when jobs finish goes out as
  # READY before the ACK of the same flush (so the broker cannot refill the
  # freed slot under the old credit), and the other broker is raised only
  # once that READY is answered.
  def test_a_lowered_share_goes_by_ready_before_the_ack_and_the_raise_waits_for_its_answer
    other = FakeBroker.new(@ctx)
    gates = Hash.new { |h, k| h[k] = Queue.new }
    worker = Zeromesh::Worker.new(endpoint: [@fake.endpoint, other.endpoint], concurrency: 4, credit: 2,
                                  logger: (Logger.new($stderr) if ENV["ZEROMESH_TEST_LOG"]))
    worker.handle("q") { |job| gates[job.id].pop }
    @workers << worker.start
    peer, ready = @fake.accept
    assert_equal 2, ready.header["credit"], "the first broker to answer may have the whole credit"
    @fake.send(peer, jobs(2))
    sleep 0.2 # both jobs held and running
    other_peer, other_ready = other.accept
    assert_equal 0, other_ready.header["credit"], "nothing is free while the first broker's jobs run"
    refute other.anything?(0.3), "no CREDIT while both slots are held"
    gates["j0"] << :go
    _, lowering = @fake.recv
    assert_equal [Wire::READY, 1], [lowering.command, lowering.header["credit"]], "the READY that lowers comes first"
    _, ack = @fake.recv
    assert_equal [Wire::ACK, ["j0"]], [ack.command, ack.header["ids"]]
    refute other.anything?(0.3), "the second broker is raised only once the lowering READY is answered"
    @fake.send(peer, Codec.pack_control(Wire::HEARTBEAT, { "id" => "hb", "epoch" => "e1", "re" => lowering.header["id"] }))
    from, credit = other.recv
    assert_equal [other_peer, Wire::CREDIT, 1], [from, credit.command, credit.header["credit"]]
    gates["j1"] << :go
  ensure
    worker&.stop(grace: 1)
    other&.close
  end

  def test_new_connection_when_the_epoch_changes
    start_worker({ "q" => ->(_job) {} }, heartbeat_s: 0.2)
    peer, = @fake.accept(epoch: "e1")
    @fake.send(peer, Codec.pack_control(Wire::HEARTBEAT, { "id" => "hb2", "epoch" => "e2" }))
    old, bye = @fake.recv
    assert_equal [Wire::DISCONNECT, peer], [bye.command, old], "the connection left says so first"
    fresh, env = @fake.recv
    assert_equal Wire::READY, env.command
    refute_equal peer, fresh, "a broker restart should get a fresh DEALER"
  end

  def test_new_connection_after_three_silent_intervals
    start_worker({ "q" => ->(_job) {} }, heartbeat_s: 0.2)
    peer, = @fake.accept
    started = Zeromesh::Clock.now
    # Heartbeats arrive, unanswered; then the DISCONNECT on the connection left and the READY on a
    # new one, in either order (two TCP connections: nothing orders one's bytes against the other's).
    got = [@fake.recv(timeout: 3), @fake.recv].to_h { |from, env| [env.command, [from, env]] }
    old, bye = got.fetch(Wire::DISCONNECT)
    assert_equal peer, old
    assert_match(/nothing heard/, bye.header["reason"])
    fresh, = got.fetch(Wire::READY)
    refute_equal peer, fresh
    assert_operator Zeromesh::Clock.now - started, :>=, 0.5
  end

  def test_stop_sends_credit_zero_answers_in_flight_then_disconnects
    release = Queue.new
    worker = start_worker({ "q" => ->(_job) { release.pop } }, concurrency: 1)
    peer, = @fake.accept
    @fake.send(peer, jobs(3))
    wait_until(3, "the first job to start") { release.num_waiting == 1 }
    stopper = Thread.new { worker.stop(grace: scaled(5)) }
    _, credit = @fake.recv
    assert_equal [Wire::CREDIT, 0], [credit.command, credit.header["credit"]]
    release << :go
    _, ack = @fake.recv
    assert_equal [Wire::ACK, ["j0"]], [ack.command, ack.header["ids"]], "the running job finishes"
    _, bye = @fake.recv
    assert_equal Wire::DISCONNECT, bye.command, "the two unstarted jobs are handed back"
    stopper.join(scaled(5))
    assert worker.stopped?
  end
end
