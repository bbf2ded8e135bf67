# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "stringio"

# A worker across a broker SIGKILL and restart on the same port, holding jobs
# when it happens: it must end up registered once, not twice (its old
# connection must not register with the new broker).
class WorkerRestartTest < Minitest::Test
  include TestSupport

  def setup
    @closers = []
  end

  def teardown
    @closers.reverse_each(&:call)
  end

  def registrations(client, label)
    client.status["workers"].count { |w| w["label"] == label }
  end

  def test_a_broker_restart_leaves_one_registration_of_a_worker_that_held_jobs
    broker = Broker.new.start
    @closers << -> { broker.stop }
    client = Zeromesh::Client.new(endpoint: broker.endpoint, connect_timeout: nil)
    @closers << -> { client.close }
    queue = "held-#{SecureRandom.hex(3)}"
    label = "restart-#{SecureRandom.hex(3)}"
    gate = Queue.new
    started = Queue.new
    log = StringIO.new
    worker = Zeromesh::Worker.new(endpoint: broker.endpoint, label: label, concurrency: 2, heartbeat_s: 1.0,
                                  logger: Logger.new(log, level: Logger::INFO))
    worker.handle(queue) { |job| started << job.id; gate.pop }
    worker.start
    @closers << -> { worker.stop(grace: 1) }
    @closers << -> { gate.close }
    assert worker.wait_ready(scaled(5))
    2.times { |i| client.push(queue, "job #{i}") }
    wait_until(5, "both jobs running") { started.size == 2 }

    Process.kill("KILL", broker.pid)
    TestSupport.reap(broker.pid, 5)
    2.times { gate << :go } # their ACKs now wait in the old connection's queue
    broker.start

    wait_until(10, "the worker registered with the new broker") { registrations(client, label) >= 1 }
    # A stale registration would last until the broker declares it lost (3 heartbeats).
    counts = []
    deadline = Zeromesh::Clock.now + 3.5
    while Zeromesh::Clock.now < deadline
      counts << registrations(client, label)
      sleep 0.1
    end
    assert_equal [1], counts.uniq, "registrations of the worker after the restart, sampled:\n#{log.string}"
  end
end
