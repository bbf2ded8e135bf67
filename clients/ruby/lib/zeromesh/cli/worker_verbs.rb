# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "digest"

module Zeromesh
  module CLI
    # work and serve: a Worker registered with the broker, "ready" on stdout once it is.
    class WorkerVerbs
      # Raised by a serve handler in --mode fail.
      class FailedOnPurpose < StandardError; end

      READY_S = 10 # how long registration may take

      def initialize(options, stdout:)
        @options = options
        @stdout = stdout
      end

      # work QUEUE --count N --out DIR [--hold S] [--label L] [--timeout S]: the n-th job's body
      # to DIR/<n>.bin and a line to DIR/ids.log; 0 after N jobs, 2 when --timeout passes first.
      def work
        raise Usage, "work needs exactly one QUEUE" unless @options.positional.length == 1

        queue = @options.positional.first
        n_wanted = @options.count
        log = JobLog.new(@options.out_dir, @stdout)
        hold = @options.number("hold", 0)
        timeout = @options.number("timeout", 60)
        worker = Zeromesh::Worker.new(endpoint: @options.endpoint, concurrency: 1, label: @options["label"], **@options.curve)
        worker.handle(queue) do |job|
          @stdout.puts "start #{job.id} #{job.attempt}"
          sleep(hold) if hold.positive?
          log.record(job)
          nil
        end
        start(worker)
        done = log.wait_for(n_wanted, timeout)
        return 0 if done >= n_wanted

        warn "timeout"
        warn "#{done} of #{n_wanted} jobs within #{timeout} s"
        2
      rescue Zeromesh::Error => e
        CLI.failure(e)
      ensure
        worker&.stop(grace: 5)
      end

      # serve SERVICE --mode M [SERVICE --mode M]... [--sleep S] [--label L]: until SIGTERM or SIGINT.
      def serve
        raise Usage, "serve needs SERVICE --mode MODE" if @options.pairs.empty?

        sleep_s = @options.number("sleep", 10)
        worker = Zeromesh::Worker.new(endpoint: @options.endpoint, concurrency: 4, label: @options["label"], **@options.curve)
        @options.pairs.each do |service, mode|
          worker.handle(service) { |job| self.class.answer(mode, job, sleep_s) }
        end
        # "ready" once SIGTERM already means a graceful stop (see Worker#run).
        worker.run(grace: 5) { announce(worker) } # run has started it
        0
      rescue Zeromesh::Error => e
        CLI.failure(e)
      ensure
        worker&.stop(grace: 5)
      end

      # The reply of a serve handler in MODE.
      def self.answer(mode, job, sleep_s)
        case mode
        when "echo" then job.body
        when "sha256" then Digest::SHA256.hexdigest(job.body)
        when "fail" then raise FailedOnPurpose, "failed on purpose (#{job.body.bytesize} bytes)"
        when "sleep"
          deadline = Zeromesh::Clock.now + sleep_s
          sleep(0.02) until job.cancelled? || Zeromesh::Clock.now >= deadline
          "slept"
        end
      end

      private

      def start(worker)
        worker.start
        announce(worker)
      end

      def announce(worker)
        raise Zeromesh::TimeoutError, "not registered with the broker within #{READY_S} s" unless
          worker.wait_ready(READY_S)

        @stdout.puts "ready"
      end

      # The jobs work has done: their files, "done" lines, and a count another thread waits on.
      class JobLog
        def initialize(dir, stdout)
          @dir = dir
          @stdout = stdout
          @count = 0
          @lock = Mutex.new
          @changed = ConditionVariable.new
        end

        def record(job)
          k = @lock.synchronize { @count + 1 }
          File.binwrite(File.join(@dir, "#{k}.bin"), job.body)
          File.open(File.join(@dir, "ids.log"), "a") { |f| f.puts [k, job.id, job.attempt, job.body.bytesize].join("\t") }
          @stdout.puts "done #{k} #{job.id} #{job.attempt}"
          @lock.synchronize do
            @count = k
            @changed.broadcast
          end
        end

        # Waits until N jobs are done or TIMEOUT seconds pass; how many are done.
        def wait_for(n, timeout)
          deadline = Zeromesh::Clock.now + timeout
          @lock.synchronize do
            while @count < n
              left = deadline - Zeromesh::Clock.now
              break unless left.positive?

              @changed.wait(@lock, left)
            end
            @count
          end
        end
      end
    end
  end
end
