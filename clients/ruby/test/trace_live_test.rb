# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "securerandom"

# Traces end to end, through a real broker: a job pushed by a handler joins
# the handled job's trace, and a request made by one joins the request's.
class TraceLiveTest < Minitest::Test
  include TestSupport

  def setup
    @closers = []
  end

  def teardown
    @closers.reverse_each(&:call)
  end

  def test_a_job_pushed_by_a_handler_keeps_the_trace
    broker = TestSupport.broker
    client = Zeromesh::Client.new(endpoint: broker.endpoint, pub_endpoint: broker.pub_endpoint)
    @closers << -> { client.close }
    parent_q = "tr-parent-#{SecureRandom.hex(3)}"
    child_q = "tr-child-#{SecureRandom.hex(3)}"
    service = "tr-svc-#{SecureRandom.hex(3)}"
    children = Queue.new
    worker = Zeromesh::Worker.new(endpoint: broker.endpoint)
    worker.handle(parent_q) { |job| client.push(child_q, "child of #{job.id}") }
    worker.handle(service) { |job| client.push(child_q, "child of #{job.id}") }
    worker.handle(child_q) { |job| children << job }
    worker.start
    @closers << -> { worker.stop(grace: 1) }
    assert worker.wait_ready(scaled(5))

    parent_id = client.push(parent_q, "parent", trace: "trace-#{parent_q}")
    wait_until(10, "the child job") { children.size == 1 }
    child = children.pop
    assert_equal ["child of #{parent_id}", "trace-#{parent_q}"], [child.text, child.trace]
    refute_equal parent_id, child.id

    # A request without a trace is its own trace: the child job joins it.
    client.request(service, "go", timeout: scaled(5))
    wait_until(10, "the request's child job") { children.size == 1 }
    child = children.pop
    request_id = child.text.delete_prefix("child of ")
    assert_equal request_id, child.trace
  end
end
