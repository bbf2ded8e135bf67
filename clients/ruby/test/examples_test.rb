# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

# The demo's Ruby worker (examples/send_worker.rb) as `make run` starts it,
# against a real broker: a log for people (no DEBUG lines unless asked), and a
# Ctrl-C that reads as a clean stop.
class ExamplesTest < Minitest::Test
  include TestSupport

  EXAMPLE = File.expand_path("../examples/send_worker.rb", __dir__)
  LIB = File.expand_path("../lib", __dir__)

  def test_send_worker_logs_no_debug_and_stops_once_on_ctrl_c
    broker = Broker.new.start
    client = Zeromesh::Client.new(endpoint: broker.endpoint, pub_endpoint: broker.pub_endpoint)
    # Queued before the worker comes: they reach it packed (a DEBUG line in the library).
    2.times { client.push("send", "{}") } # no card_id: dead-lettered
    env = { "ZEROMESH_BROKER" => broker.endpoint, "ZEROMESH_PUB" => broker.pub_endpoint,
            "ZEROMESH_REDIS_URL" => "none", "ZEROMESH_LOG_LEVEL" => nil }
    out_r, out_w = IO.pipe
    pid = Process.spawn(env, RbConfig.ruby, "-I", LIB, EXAMPLE, out: out_w, err: out_w)
    out_w.close
    wait_until(15, "both jobs dead-lettered") { (client.admin("dead_letters", queue: "send")["items"] || []).size == 2 }
    # Ctrl-C under a process manager: SIGINT to every process at once, then SIGTERM.
    Process.kill("INT", pid)
    Process.kill("INT", broker.pid)
    sleep 0.2
    Process.kill("TERM", pid)
    status = TestSupport.reap(pid, 20)
    lines = out_r.read.lines.map(&:chomp)
    assert status&.success?, "send_worker.rb exited with #{status.inspect}:\n#{lines.join("\n")}"
    assert_empty lines.grep(/\ADEBUG/), "DEBUG lines without ZEROMESH_LOG_LEVEL=DEBUG"
    assert_equal 1, lines.grep(/stopped/).size, "it says it stopped, once:\n#{lines.join("\n")}"
    assert_equal 1, lines.grep(/signalled/).size, "one stop, however many signals:\n#{lines.join("\n")}"
    assert_empty lines.grep(/\A(ERROR|FATAL)|reset by peer/i)
    assert_equal [], lines.grep(/\AWARN/).reject { |l| l.include?("(dead letter)") }, "nothing else looks like a fault"
  ensure
    client&.close
    broker&.stop
    out_r&.close
  end
end
