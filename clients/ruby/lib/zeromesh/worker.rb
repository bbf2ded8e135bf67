# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "socket"
require_relative "curve"
require_relative "defaults"
require_relative "endpoints"
require_relative "errors"
require_relative "job"
require_relative "latch"
require_relative "messages"
require_relative "outbox"
require_relative "sockets"
require_relative "tracing"
require_relative "wire"
require_relative "worker_io"

module Zeromesh
  # Serves queues and services by name (one name space) with a pool of
  # handler threads; all socket I/O and heartbeats happen in one I/O thread of
  # its own, so a slow or CPU-bound handler never silences the worker: the I/O
  # thread waits in zmq_poll without the GVL and does everything else with
  # non-blocking calls, so while a handler computes in pure Ruby the I/O
  # thread loses at most one thread time slice (100 ms in MRI) per wake-up.
  #
  #   worker = Zeromesh::Worker.new
  #   worker.handle("resize") { |job| resize(job.body) }
  #   worker.run                     # until stop, SIGTERM or SIGINT
  class Worker
    # Error messages and tracebacks are cut to this, so an ERROR header stays well under 64 KiB.
    MAX_TEXT = 16 * 1024

    attr_reader :endpoints, :concurrency, :credit, :label, :heartbeat_s, :handlers, :logger, :batch, :curve,
                :connect_timeout, :failure, :host

    # endpoint defaults to ZEROMESH_BROKER, then the default: one endpoint, a
    # comma-separated list or an Array. With several, the worker keeps a
    # session with each broker and splits its credit over those it is
    # registered with (CreditSplit); results go back to the broker their job
    # came from. credit (default
    # 4 x concurrency) is how many jobs and requests the broker may have
    # outstanding here, so each handler thread has a few queued. batch: take
    # first deliveries as JOB_PACKED or JOB_BATCH, many jobs under one header
    # (SPEC.md 3.4 and 3.5); handlers see no difference.
    # curve_server, curve_secret: CURVE, as Client takes them (default
    # ZEROMESH_CURVE_SERVER, ZEROMESH_CURVE_SECRET). A broker that refuses the
    # handshake is logged at ERROR (once, until it accepts) and tried again,
    # since a key may be added; once every broker has refused for
    # connect_timeout seconds, the worker stops and #run raises
    # AuthenticationError. A READY the broker answers forbidden (the key may
    # not serve one of the names) stops it too: #run raises ForbiddenError.
    def initialize(endpoint: ENV["ZEROMESH_BROKER"] || Defaults::BROKER_ENDPOINT,
                   concurrency: Defaults::WORKER_CONCURRENCY, credit: nil, label: nil,
                   heartbeat_s: Defaults::HEARTBEAT_S, context: nil, logger: nil, batch: true,
                   curve_server: ENV["ZEROMESH_CURVE_SERVER"], curve_secret: ENV["ZEROMESH_CURVE_SECRET"],
                   connect_timeout: Defaults::CONNECT_TIMEOUT_S)
      raise ArgumentError, "concurrency must be at least 1" if concurrency < 1
      raise ArgumentError, "credit must be an Integer >= 0, not #{credit.inspect}" unless credit.nil? || (credit.is_a?(Integer) && credit >= 0)
      unless connect_timeout.is_a?(Numeric) && connect_timeout >= 0
        raise ArgumentError, "connect_timeout must be a number of seconds >= 0, not #{connect_timeout.inspect}"
      end

      @endpoints = Endpoints.parse(endpoint, "endpoint")
      @curve = Curve.settings(curve_server, curve_secret, @endpoints.size)
      @connect_timeout = connect_timeout
      @failure = nil
      @concurrency = concurrency
      @credit = credit || 4 * concurrency
      # Looked up once, here: READY carries it, and the I/O thread must never wait on a resolver.
      @host = Worker.host_name
      @label = Messages.utf8(label || "#{@host}-#{Process.pid}")
      @heartbeat_s = heartbeat_s
      @batch = batch
      @logger = logger
      @handlers = {}
      @own_context = context.nil?
      @context = context || Sockets.new_context
      @outbox = Outbox.new(@context)
      @work = Thread::Queue.new
      @stopping = false
      @io_ready = Latch.new
      @registered = Latch.new
      @done = Latch.new
      @io_thread = nil
      @threads = []
    end

    attr_reader :context, :outbox, :work # for WorkerIO

    # This machine's name for READY's host: Socket.gethostname, else the
    # HOSTNAME environment variable, else "unknown"; at most 255 bytes of UTF-8.
    def self.host_name
      name = begin
        Socket.gethostname
      rescue SystemCallError, SocketError
        nil
      end
      name = ENV.fetch("HOSTNAME", nil) if name.nil? || name.empty?
      name = name.to_s.dup.force_encoding(Encoding::UTF_8).scrub("").byteslice(0, Wire::MAX_NAME_BYTES).scrub("")
      name.empty? ? "unknown" : name
    end

    # The broker endpoints, comma-separated.
    def endpoint
      @endpoints.join(",")
    end

    # Register the block (or a callable) for queue or service name. May be
    # called while running: the worker then registers again with the new names.
    def handle(name, callable = nil, &block)
      fn = callable || block
      raise ArgumentError, "handle(#{name.inspect}) needs a block or a callable" unless fn

      @handlers[Messages.name(name)] = fn
      @outbox.put([:ready]) if @io_thread
      self
    end

    # -- lifetime ----------------------------------------------------------

    # Workers started and not yet stopped. A process that exits with one running (its
    # script ended, an exception, SIGTERM's default action) would hang: Ruby kills the
    # threads that own the sockets, and the context's finalizer then waits for those
    # sockets forever. The at_exit hook below stops each one at once instead.
    @running = []
    @running_lock = Mutex.new

    def self.running(worker, started)
      @running_lock.synchronize { started ? @running << worker : @running.delete(worker) }
    end

    def self.stop_running_at_exit
      @running_lock.synchronize { @running.dup }.each do |worker|
        worker.logger&.warn("zeromesh: the process exits with the worker running: stopping it now " \
                            "(the jobs it holds go back to the broker)")
        worker.stop(grace: 0)
      end
    end

    at_exit { stop_running_at_exit }

    # Run in background threads; returns self.
    def start
      raise Error, "worker already started" if @io_thread
      raise ArgumentError, "register at least one handler before starting" if @handlers.empty?

      Worker.running(self, true)
      @io_thread = Thread.new { io_main }
      @io_thread.name = "zeromesh-worker-io"
      raise Error, "worker I/O thread did not start" unless @io_ready.wait(10)

      @threads = Array.new(@concurrency) do |i|
        Thread.new { handler_main }.tap { |t| t.name = "zeromesh-handler-#{i}" }
      end
      self
    end

    # true once the broker has answered this worker's READY (so requests find it);
    # raises what stopped the worker (AuthenticationError, ForbiddenError) if it failed.
    def wait_ready(timeout = 5.0)
      registered = @registered.wait(timeout)
      raise @failure if @failure

      registered
    end

    def registered!
      @registered.set
    end

    # Called by the I/O thread when the brokers will not have this worker: it
    # stops, and #run and #wait_ready raise error. Wakes wait_ready's waiters.
    def failed!(error)
      @failure ||= error
      @registered.set
    end

    # Serve until #stop; in the main thread SIGTERM and SIGINT also stop it, gracefully.
    # Raises what stopped it when the brokers would not have it (AuthenticationError, ForbiddenError).
    # A block is called once the signal handlers are in place and the worker has started: the
    # place for a "running" log line, since a SIGTERM before the handlers would kill the process
    # with the default action while the I/O thread sits in a ZeroMQ call that exit cannot end.
    def run(grace: Defaults::WORKER_GRACE_S)
      signalled = false
      previous = {}
      if Thread.current == Thread.main
        # A trap handler may not take a Mutex: it only sets a flag, looked at below.
        %w[TERM INT].each { |sig| previous[sig] = trap(sig) { signalled = true } }
      end
      start unless @io_thread
      yield self if block_given?
      asked = false
      until @done.wait(0.2)
        next unless signalled && !asked

        # Once: a process manager often sends SIGINT and then SIGTERM for one stop.
        asked = true
        @logger&.info("zeromesh: signalled, stopping (grace #{grace}s)")
        request_stop(grace)
      end
      raise @failure if @failure
    ensure
      previous.each { |sig, old| trap(sig, old || "DEFAULT") }
    end

    # Begin #stop without waiting for it.
    def request_stop(grace = Defaults::WORKER_GRACE_S)
      @outbox.put([:stop, grace])
    end

    # Take no new work (CREDIT 0), let running handlers finish for up to grace
    # seconds, then DISCONNECT (the broker takes back what is unfinished) and return.
    def stop(grace: Defaults::WORKER_GRACE_S)
      return if @io_thread.nil? || @done.set?

      request_stop(grace)
      @logger&.warn("zeromesh: worker did not stop within #{grace + 5}s") unless @done.wait(grace + 5)
    end

    def stopped?
      @done.set?
    end

    def stopping?
      @stopping
    end

    # Called by the I/O thread when it begins to stop: queued jobs stay
    # unstarted (DISCONNECT hands them back) and each handler thread exits.
    def begin_stop
      @stopping = true
      @concurrency.times { @work << nil }
    end

    private

    def io_main
      WorkerIO.new(self, @io_ready).run
    rescue Exception => e # rubocop:disable Lint/RescueException -- report, then end cleanly
      @logger&.error("zeromesh: worker I/O thread failed: #{e.class}: #{e.message}")
      raise unless e.is_a?(StandardError)
    ensure
      @stopping = true
      @io_ready.set
      # Handler threads still running past grace hold no sockets (the outbox
      # is closed), so terminating the context cannot block on them. It waits
      # for the final DISCONNECT to leave (FINAL_LINGER_MS at most), and only
      # then do #run and #stop return.
      @context.terminate if @own_context
      Worker.running(self, false)
      @done.set
    end

    def handler_main
      while (job = @work.pop)
        next if @stopping && job.job? # not started: handed back by DISCONNECT
        next if job.abandoned? # came on a connection the worker left: handed out again

        @outbox.put(perform(job))
      end
    ensure
      @outbox.put([:exited])
    end

    def perform(job)
      if job.request? && job.cancelled?
        return [:error, job, { "code" => Wire::E_CANCELLED, "message" => "cancelled before it started" }]
      end

      begin
        fn = @handlers[job.name] or raise KeyError, "this worker has no handler for #{job.name.inspect}"
        # What the handler pushes or requests joins this message's trace (Tracing).
        value = Tracing.within(job) { fn.call(job) }
        return [:ack, job] if job.job?
        return [:error, job, { "code" => Wire::E_CANCELLED, "message" => "cancelled" }] if job.cancelled?

        reply = value.is_a?(Reply) ? value : Reply.new(value)
        [:reply, job, reply.body, Messages.headers(reply.headers)]
      rescue Exception => e # rubocop:disable Lint/RescueException -- a handler must never kill its thread
        failure(job, e)
      end
    end

    def failure(job, exc)
      if job.job?
        retry_it = !exc.is_a?(DeadLetter)
        @logger&.warn("zeromesh: #{job.inspect} failed#{retry_it ? "" : " (dead letter)"}: #{describe(exc)}")
        # A Retry names its own wait; any other failure waits the queue's backoff.
        return [:nack, job, describe(exc), retry_it, exc.is_a?(Retry) ? exc.retry_in_ms : nil]
      end

      @logger&.info("zeromesh: #{job.inspect} failed: #{describe(exc)}")
      message = text(exc.message)
      [:error, job, { "code" => Wire::E_REMOTE, "name" => exc.class.name.to_s,
                      "message" => cut(message.empty? ? exc.class.name.to_s : message),
                      "traceback" => traceback(exc) }]
    end

    # "ExcClass: message", the form a NACK's error takes.
    def describe(exc)
      cut("#{exc.class.name}: #{text(exc.message)}")
    end

    # The exception and its backtrace, the innermost frames kept when cut.
    def traceback(exc)
      lines = ["#{exc.class.name}: #{text(exc.message)}", *exc.backtrace].join("\n")
      lines.bytesize > MAX_TEXT ? lines.byteslice(-MAX_TEXT, MAX_TEXT).scrub : lines
    end

    # Exception messages may be in any encoding; the wire wants valid UTF-8.
    def text(str)
      str.to_s.dup.force_encoding(Encoding::UTF_8).scrub
    end

    def cut(str)
      str.bytesize > MAX_TEXT ? str.byteslice(0, MAX_TEXT).scrub : str
    end
  end
end
