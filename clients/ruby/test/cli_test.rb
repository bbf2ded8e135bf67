# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"
require "digest"
require "open3"
require "rbconfig"
require "stringio"
require "zeromesh/cli"

# bin/zeromesh-rb and the library behind it (Zeromesh::CLI): argument parsing and usage
# errors in process, then the command itself against a real broker.
class CliTest < Minitest::Test
  include TestSupport

  BIN = File.expand_path("../bin/zeromesh-rb", __dir__)

  def test_options_keep_the_last_value_the_words_and_serve_pairs
    o = Zeromesh::CLI::Options.parse(%w[a --timeout 1 b --mode echo c --mode fail --timeout 2.5 d], env: {})
    assert_equal %w[a d], o.positional
    assert_equal [%w[b echo], %w[c fail]], o.pairs
    assert_in_delta 2.5, o.number("timeout", 9)
    assert_in_delta 9.0, o.number("hold", 9)
  end

  def test_endpoints_come_from_the_flags_then_the_environment_then_the_defaults
    env = { "ZEROMESH_BROKER" => "tcp://b:1", "ZEROMESH_PUB" => "tcp://p:2" }
    assert_equal [["tcp://b:1"], ["tcp://p:2"]], endpoints(Zeromesh::CLI::Options.parse([], env: env))
    flags = Zeromesh::CLI::Options.parse(%w[--endpoint tcp://x:3 --pub-endpoint tcp://y:4], env: env)
    assert_equal [["tcp://x:3"], ["tcp://y:4"]], endpoints(flags)
    assert_equal [[Zeromesh::Defaults::BROKER_ENDPOINT], [Zeromesh::Defaults::PUB_ENDPOINT]],
                 endpoints(Zeromesh::CLI::Options.parse([], env: {}))
  end

  def test_endpoint_lists_are_split_on_commas_and_an_empty_item_is_a_usage_error
    env = { "ZEROMESH_BROKER" => "tcp://a:1, tcp://b:2 ,tcp://c:3", "ZEROMESH_PUB" => "tcp://p:1,tcp://q:2" }
    assert_equal [%w[tcp://a:1 tcp://b:2 tcp://c:3], %w[tcp://p:1 tcp://q:2]],
                 endpoints(Zeromesh::CLI::Options.parse([], env: env))
    error = assert_raises(Zeromesh::CLI::Usage) do
      Zeromesh::CLI::Options.parse(%w[--endpoint tcp://a:1,,tcp://b:2], env: {}).endpoint
    end
    assert_equal 'empty endpoint in "tcp://a:1,,tcp://b:2"', error.message
  end

  def test_usage_errors_exit_64_with_the_reason_and_the_usage
    {
      [] => "no verb",
      %w[frobnicate] => 'unknown verb "frobnicate"',
      %w[push q --timeout] => "--timeout needs a value",
      %w[serve --mode echo] => "--mode echo follows no service",
      %w[serve s --mode shout] => 'unknown mode "shout" (echo, sha256, fail, sleep)',
      %w[serve] => "serve needs SERVICE --mode MODE",
      %w[push] => "push needs a QUEUE",
      %w[request] => "request needs a SERVICE",
      %w[push q --timeout soon] => '--timeout wants a number, not "soon"',
      %w[work a b --count 1 --out x] => "work needs exactly one QUEUE",
      %w[work q --out x] => "--count N is required",
      %w[work q --count 0 --out x] => "--count wants a positive integer",
      %w[work q --count 1] => "--out DIR is required",
      %w[subscribe --count 1 --out x] => "subscribe needs a PREFIX"
    }.each do |argv, reason|
      status = nil
      _out, err = capture_io { status = Zeromesh::CLI.main(argv, env: {}, stdout: StringIO.new) }
      assert_equal 64, status, argv.inspect
      assert_equal "zeromesh-rb: #{reason}", err.lines.first.chomp, argv.inspect
      assert_includes err, "usage: zeromesh-rb push QUEUE [FILE...]"
    end
  end

  def test_the_command_serves_requests_and_works_pushed_jobs_through_a_broker
    b = broker
    env = { "ZEROMESH_BROKER" => b.endpoint, "ZEROMESH_PUB" => b.pub_endpoint }
    server = ServeProcess.new(env, "cli-sha", "--mode", "sha256")
    reply, err, status = Open3.capture3(env, RbConfig.ruby, BIN, "request", "cli-sha", "--timeout", "5",
                                        stdin_data: "bytes \xff".b, binmode: true)
    assert status.success?, err
    assert_equal Digest::SHA256.hexdigest("bytes \xff".b), reply

    id, err, status = Open3.capture3(env, RbConfig.ruby, BIN, "push", "cli-jobs", stdin_data: "job body")
    assert status.success?, err
    out_dir = File.join(TestSupport.tmpdir, "cli-work")
    out, err, status = Open3.capture3(env, RbConfig.ruby, BIN, "work", "cli-jobs", "--count", "1",
                                      "--out", out_dir, "--timeout", TestSupport.scaled(20).to_s)
    assert status.success?, err
    lines = out.lines.map(&:chomp)
    assert_includes lines, "ready" # before or after the job: it was queued before the worker came
    assert_equal ["start #{id.chomp} 1", "done 1 #{id.chomp} 1"], lines - ["ready"]
    assert_equal "job body", File.binread(File.join(out_dir, "1.bin"))
    assert_equal ["1\t#{id.chomp}\t1\t8\n"], File.readlines(File.join(out_dir, "ids.log"))
  ensure
    server&.stop
  end

  def test_work_that_gets_too_few_jobs_exits_2_with_the_count
    b = broker
    env = { "ZEROMESH_BROKER" => b.endpoint, "ZEROMESH_PUB" => b.pub_endpoint }
    out, err, status = Open3.capture3(env, RbConfig.ruby, BIN, "work", "cli-empty", "--count", "2",
                                      "--out", File.join(TestSupport.tmpdir, "cli-empty"), "--timeout", "0.3")
    assert_equal 2, status.exitstatus, err
    assert_equal "ready\n", out
    assert_equal ["timeout", "0 of 2 jobs within 0.3 s"], err.lines.map(&:chomp)
  end

  private

  def endpoints(options)
    [options.endpoint, options.pub_endpoint]
  end

  # `zeromesh-rb serve ...` in the background, ready once it says so.
  class ServeProcess
    def initialize(env, *args)
      @out, w = IO.pipe
      @pid = Process.spawn(env, RbConfig.ruby, BIN, "serve", *args, out: w, err: w)
      w.close
      ready = @out.wait_readable(TestSupport.scaled(20)) && @out.gets
      raise "zeromesh-rb serve did not get ready: #{ready.inspect}" unless ready == "ready\n"
    end

    def stop
      Process.kill("TERM", @pid)
      status = TestSupport.reap(@pid, 15)
      raise "zeromesh-rb serve did not stop cleanly: #{status.inspect}" unless status&.success?
    ensure
      @out.close
    end
  end
end
