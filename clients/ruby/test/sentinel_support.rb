# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "redis"
require_relative "test_helper"

module TestSupport
  # A real Redis under Sentinel on free loopback ports: a primary, one replica
  # (redis-server --replicaof) and three `redis-server --sentinel` processes,
  # quorum 2, a primary declared down after 1 s; configs and logs in a scratch directory.
  class SentinelCluster
    SERVICE = "zmsvc"

    attr_reader :primary_port, :replica_port, :sentinel_ports

    def initialize
      @dir = Dir.mktmpdir("sentinel-", TestSupport.tmpdir)
      @primary_port = TestSupport.free_port
      @replica_port = TestSupport.free_port
      @sentinel_ports = Array.new(3) { TestSupport.free_port }
      @pids = {}
    end

    def url
      "redis+sentinel://#{@sentinel_ports.map { |p| "127.0.0.1:#{p}" }.join(",")}/#{SERVICE}"
    end

    def start(timeout: 20)
      server("primary", @primary_port)
      server("replica", @replica_port, "--replicaof", "127.0.0.1", @primary_port.to_s)
      TestSupport.wait_until(timeout, "the replica in sync with the primary", interval: 0.05) do
        info(@replica_port)["master_link_status"] == "up"
      end
      @sentinel_ports.each_with_index { |port, i| sentinel("sentinel#{i}", port) }
      # A failover needs a majority of sentinels that know each other, and a replica they know.
      TestSupport.wait_until(timeout, "every sentinel seeing the replica and the two other sentinels",
                             interval: 0.1) do
        @sentinel_ports.all? do |port|
          Array(ask(port, "replicas", SERVICE)).size == 1 && Array(ask(port, "sentinels", SERVICE)).size == 2
        end
      end
      self
    end

    # SIGKILL, so nothing is flushed or handed over: a machine dying.
    def kill_primary
      Process.kill("KILL", @pids.fetch("primary"))
      TestSupport.reap(@pids.delete("primary"), 5)
    end

    # The port every sentinel answers for the service's primary (nil while they disagree).
    def primary_by_sentinels
      ports = @sentinel_ports.map { |port| ask(port, "get-master-addr-by-name", SERVICE)&.last.to_i }
      ports.uniq.size == 1 ? ports.first : nil
    end

    def connection(port)
      Redis.new(host: "127.0.0.1", port: port, timeout: 2)
    end

    def stop
      @pids.each_value do |pid|
        Process.kill("TERM", pid)
      rescue Errno::ESRCH
        nil
      end
      @pids.each_value { |pid| TestSupport.reap(pid, 5) }
      @pids.clear
    end

    def logs
      Dir[File.join(@dir, "*.log")].sort.map { |f| "--- #{File.basename(f)}\n#{File.read(f)[-3000..] || File.read(f)}" }
    end

    private

    def server(name, port, *args)
      spawn(name, "redis-server", "--port", port.to_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", @dir, "--dbfilename", "#{name}.rdb", *args)
      TestSupport.wait_until(10, "#{name} answering PONG", interval: 0.05) { ping?(port) }
    end

    def sentinel(name, port)
      conf = File.join(@dir, "#{name}.conf")
      File.write(conf, <<~CONF)
        port #{port}
        bind 127.0.0.1
        dir #{@dir}
        sentinel monitor #{SERVICE} 127.0.0.1 #{@primary_port} 2
        sentinel down-after-milliseconds #{SERVICE} 1000
        sentinel failover-timeout #{SERVICE} 3000
      CONF
      spawn(name, "redis-server", conf, "--sentinel")
      TestSupport.wait_until(10, "#{name} answering PONG", interval: 0.05) { ping?(port) }
    end

    def spawn(name, *argv)
      @pids[name] = Process.spawn(*argv, chdir: @dir, out: [File.join(@dir, "#{name}.log"), "a"], err: %i[child out])
    end

    def ping?(port)
      conn = connection(port)
      conn.ping == "PONG"
    rescue Redis::BaseError
      false
    ensure
      conn&.close
    end

    def info(port)
      conn = connection(port)
      conn.info("replication")
    rescue Redis::BaseError
      {}
    ensure
      conn&.close
    end

    def ask(port, *command)
      conn = connection(port)
      conn.call(["sentinel", *command])
    rescue Redis::BaseError
      nil
    ensure
      conn&.close
    end
  end
end
