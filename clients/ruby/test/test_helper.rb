# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# Shared test support: bounded waits, free ports, a real broker process and a
# real redis-server, each started once per run and stopped at exit.
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "minitest/autorun"
require "fileutils"
require "json"
require "socket"
require "tmpdir"
require "logger"
require "zeromesh"
require "zeromesh/conformance"

module TestSupport
  RUBY_ROOT = File.expand_path("..", __dir__)
  REPO_ROOT = File.expand_path("../..", RUBY_ROOT)
  VECTORS = File.join(REPO_ROOT, "protocol", "vectors")

  # Scale every wait by this on slow machines.
  TIME_FACTOR = Float(ENV.fetch("ZEROMESH_TEST_TIME_FACTOR", "1"))

  module_function

  def scaled(seconds)
    seconds * TIME_FACTOR
  end

  def tmpdir
    @tmpdir ||= Dir.mktmpdir("zeromesh-ruby-test-").tap do |dir|
      Minitest.after_run { FileUtils.rm_rf(dir) unless ENV["ZEROMESH_TEST_KEEP"] }
    end
  end

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  # Poll the block until it returns truthy; fail after timeout (scaled) seconds.
  def wait_until(timeout, message = "condition", interval: 0.02)
    deadline = Zeromesh::Clock.now + scaled(timeout)
    loop do
      value = yield
      return value if value
      raise Minitest::Assertion, "timed out after #{timeout}s waiting for #{message}" if Zeromesh::Clock.now >= deadline

      sleep interval
    end
  end

  # Wait for a child process with a deadline; SIGKILL it if it overstays.
  def reap(pid, timeout)
    deadline = Zeromesh::Clock.now + scaled(timeout)
    loop do
      done, status = Process.wait2(pid, Process::WNOHANG)
      return status if done
      break if Zeromesh::Clock.now >= deadline

      sleep 0.02
    end
    Process.kill("KILL", pid)
    Process.wait2(pid)[1]
  rescue Errno::ECHILD
    nil
  end

  # The Python that runs the broker: ZEROMESH_PYTHON, else the repository's venv, else python3.
  def python
    ENV["ZEROMESH_PYTHON"] || begin
      venv = File.join(RUBY_ROOT, "..", "..", ".venv", "bin", "python")
      File.executable?(venv) ? File.expand_path(venv) : "python3"
    end
  end

  # A real `python -m zeromesh broker` on free loopback ports, in-memory
  # queues only (ZEROMESH_REDIS_URL=none), running in a scratch directory.
  # config_text: a broker config file (TOML, broker/config.py), e.g. queue limits.
  class Broker
    attr_reader :endpoint, :pub_endpoint, :log_path, :pid

    # redis_url: the Redis it keeps durable queues in (nil: none); name: its --name.
    # args: more command-line arguments (--curve-secret ...); client_options:
    # what the readiness check's Client needs to be let in (curve_server:, curve_secret:).
    def initialize(port: TestSupport.free_port, pub_port: TestSupport.free_port, config_text: nil,
                   redis_url: nil, name: nil, args: [], client_options: {})
      @redis_url = redis_url
      @name = name
      @args = args
      @client_options = client_options
      @endpoint = "tcp://127.0.0.1:#{port}"
      @pub_endpoint = "tcp://127.0.0.1:#{pub_port}"
      @dir = File.join(TestSupport.tmpdir, "broker-#{port}")
      FileUtils.mkdir_p(@dir)
      @log_path = File.join(@dir, "broker.log")
      @config_path = nil
      if config_text
        @config_path = File.join(@dir, "broker.toml")
        File.write(@config_path, config_text)
      end
      @pid = nil
    end

    def start(timeout: 15)
      env = { "ZEROMESH_REDIS_URL" => @redis_url || "none", "ZEROMESH_DATA_DIR" => @dir,
              "ZEROMESH_BROKER" => @endpoint, "ZEROMESH_PUB" => @pub_endpoint }
      cmd = [TestSupport.python, "-m", "zeromesh", "broker", "--endpoint", @endpoint, "--pub", @pub_endpoint]
      cmd += ["--config", @config_path] if @config_path
      cmd += ["--name", @name] if @name
      cmd += @args
      @pid = Process.spawn(env, *cmd, chdir: @dir, out: [@log_path, "a"], err: %i[child out])
      wait_ready(timeout)
      self
    end

    def wait_ready(timeout)
      client = Zeromesh::Client.new(endpoint: @endpoint, pub_endpoint: @pub_endpoint, **@client_options)
      deadline = Zeromesh::Clock.now + TestSupport.scaled(timeout)
      loop do
        raise "broker exited early:\n#{log}" if Process.wait2(@pid, Process::WNOHANG)

        begin
          client.ping(timeout: 0.2)
          return
        rescue Zeromesh::TimeoutError, Zeromesh::UnreachableError
          raise "broker not ready after #{timeout}s:\n#{log}" if Zeromesh::Clock.now >= deadline
        end
      end
    ensure
      client&.close
    end

    # SIGKILL: the broker dies at once, as with a crash or a machine lost.
    def kill
      Process.kill("KILL", @pid)
      TestSupport.reap(@pid, 5)
      @pid = nil
    end

    def log
      File.exist?(@log_path) ? File.read(@log_path) : ""
    end

    def stop(timeout: 15)
      return unless @pid

      begin
        Process.kill("TERM", @pid)
      rescue Errno::ESRCH
        nil
      end
      TestSupport.reap(@pid, timeout)
      @pid = nil
    end
  end

  # The broker shared by the live tests (each test uses its own queue and service names).
  def broker
    @broker ||= Broker.new.start.tap { |b| Minitest.after_run { b.stop } }
  end

  # A scripted broker for wire tests: a raw ROUTER bound to a free port, read
  # and written by the test thread only.
  class FakeBroker
    Codec = Zeromesh::Codec
    Wire = Zeromesh::Wire

    attr_reader :endpoint

    def initialize(ctx)
      @sock = Zeromesh::Sockets.socket(ctx, ZMQ::ROUTER)
      port = TestSupport.free_port
      @endpoint = "tcp://127.0.0.1:#{port}"
      Zeromesh::Sockets.check(@sock.bind(@endpoint), "bind")
    end

    # [peer, envelope] of the next message whose command is not in skip.
    def recv(timeout: 3, skip: [Wire::HEARTBEAT])
      deadline = Zeromesh::Clock.now + TestSupport.scaled(timeout)
      loop do
        remaining = deadline - Zeromesh::Clock.now
        raise Minitest::Assertion, "the peer sent nothing in #{timeout}s" unless remaining.positive? &&
                                                                                  Zeromesh::Sockets.readable?(@sock, remaining)

        peer, *frames = Zeromesh::Sockets.recv_frames(@sock)
        env = Codec.unpack(frames)
        return [peer, env] unless skip.include?(env.command)
      end
    end

    # true if a message arrives within timeout seconds (unscaled: used to show that none does).
    def anything?(timeout)
      Zeromesh::Sockets.readable?(@sock, timeout)
    end

    def send(peer, frames)
      Zeromesh::Sockets.send_frames(@sock, [peer, *frames]) or raise "send queue full"
    end

    # Take a worker's READY and answer it as the broker does: with a HEARTBEAT.
    def accept(epoch: "e1")
      peer, env = recv
      raise Minitest::Assertion, "expected READY, got #{env.name}" unless env.command == Wire::READY

      send(peer, Codec.pack_control(Wire::HEARTBEAT, { "id" => "hb", "epoch" => epoch }))
      [peer, env]
    end

    def close
      @sock.close
    end
  end

  # A real redis-server for the run: unix socket only, no persistence.
  class RedisServer
    attr_reader :socket_path

    def initialize
      @dir = File.join(TestSupport.tmpdir, "redis")
      FileUtils.mkdir_p(@dir)
      @socket_path = File.join(@dir, "redis.sock")
    end

    def url
      "unix://#{@socket_path}"
    end

    def start(timeout: 10)
      binary = ENV["ZEROMESH_TEST_REDIS_SERVER"] || "redis-server"
      @pid = Process.spawn(binary, "--port", "0", "--unixsocket", @socket_path, "--save", "", "--appendonly", "no",
                           "--dir", @dir, chdir: @dir, out: [File.join(@dir, "redis.log"), "a"], err: %i[child out])
      TestSupport.wait_until(timeout, "redis-server answering PONG", interval: 0.05) { ping? }
      self
    end

    def ping?
      return false unless File.socket?(@socket_path)

      conn = Redis.new(path: @socket_path, timeout: 1)
      conn.ping == "PONG"
    rescue Redis::BaseError
      false
    ensure
      conn&.close
    end

    def connection
      Redis.new(path: @socket_path, timeout: 5)
    end

    def stop
      return unless @pid

      Process.kill("TERM", @pid)
      TestSupport.reap(@pid, 10)
      @pid = nil
    rescue Errno::ESRCH
      nil
    end
  end

  def redis_server
    require "redis"
    @redis_server ||= RedisServer.new.start.tap { |r| Minitest.after_run { r.stop } }
  end

  # The codec's vectors (valid/, invalid/, events/); files beside them, such as
  # schema.json and gaps.json, are not messages.
  def vector_files
    Dir[File.join(VECTORS, "{valid,invalid,events}", "**", "*.json")].sort
  end
end

# Every wait in these tests is bounded; this catches the ones that are not.
# If the whole run outlives ZEROMESH_TEST_WATCHDOG_S (default 300) seconds,
# print every thread's backtrace and exit, rather than hang a CI job.
Thread.new do
  limit = Float(ENV.fetch("ZEROMESH_TEST_WATCHDOG_S", "300"))
  sleep limit
  warn "\nzeromesh tests: still running after #{limit}s; thread backtraces:"
  Thread.list.each do |thread|
    warn "--- #{thread.name || thread.inspect}"
    warn (thread.backtrace || []).join("\n")
  end
  exit! 3
end.tap { |t| t.name = "zeromesh-test-watchdog" }
