# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "clock"
require_relative "codec"
require_relative "credit_split"
require_relative "defaults"
require_relative "ids"
require_relative "sockets"
require_relative "wire"
require_relative "worker_session"

module Zeromesh
  # The worker's I/O thread: the only code that touches the worker's sockets.
  # It drives one WorkerSession per broker endpoint (READY, heartbeats,
  # reconnection, each on its own), sends the handlers' results back on the
  # session their job came from (batched ACKs and REPLYs, EXTEND), and splits
  # the worker's credit over the sessions registered (CreditSplit: a lowered
  # share goes out as READY before the ACKs of the same flush), whatever the
  # handlers are doing.
  class WorkerIO
    # NACK errors are cut to this many bytes.
    MAX_NACK_ERROR = 4096

    attr_reader :ids

    def initialize(worker, io_ready)
      @w = worker
      @io_ready = io_ready
      @ids = IdGenerator.new
      # One endpoint: the whole credit, always, exactly as before lists.
      # Several: a share of it as each session registers (CreditSplit), rotated by a per-worker offset.
      n = worker.endpoints.size
      @split = n > 1 ? CreditSplit.new(worker.credit, n, rand(n)) : nil
      @sessions = worker.endpoints.each_with_index.map { |endpoint, i| WorkerSession.new(self, worker, endpoint, i) }
      @stopping = false
      @stop_deadline = Float::INFINITY
      @exited = 0
      @liveness = @w.heartbeat_s * Defaults::HEARTBEAT_LIVENESS
    end

    def stopping?
      @stopping
    end


    def run
      @pull = @w.outbox.open
      now = Clock.now
      @sessions.each { |s| s.connect(now) }
      @io_ready.set
      loop do
        poller = poller_now
        now = Clock.now
        wait_once(poller, now)
        before = now
        now = Clock.now
        if now - before > @liveness + @w.heartbeat_s && !@stopping
          # poll was due back within a heartbeat: this process was frozen (SIGSTOP,
          # a paused VM) long enough for the brokers to drop us, and they answer a
          # stranger's HEARTBEAT without saying so. Start afresh.
          @sessions.each { |s| s.connect(now, format("this process stalled for %.1fs", now - before)) if s.sock }
        end
        @sessions.each { |s| s.watch(now) }
        @sessions.each { |s| s.read(now) if s.sock && poller.readables.include?(s.sock) }
        give_up(@sessions.first.refusal) if all_refused_at && now >= all_refused_at
        flush(@w.outbox.take, now)
        break if @stopping && (@exited >= @w.concurrency || now >= @stop_deadline)

        @sessions.each { |s| s.tick(now) }
        report_held
      end
      finish
    ensure
      @pull&.close
      @sessions.each(&:close)
    end

    # The brokers will not have this worker (every one refused its handshake
    # for connect_timeout, or one forbade its READY): log it, stop without
    # waiting for handlers, and let #run raise error.
    def give_up(error)
      return if @stopping

      @w.logger&.error("zeromesh: worker stopping: #{error}")
      @w.failed!(error)
      begin_stop(Clock.now, 0)
    end

    # When to give up if every broker keeps refusing: connect_timeout after
    # the last of them began to; nil while one has not (or once stopping).
    def all_refused_at
      since = @sessions.map(&:refused_since)
      return nil if @stopping || since.include?(nil)

      since.max + @w.connect_timeout
    end

    # -- credit (CreditSplit; one endpoint keeps the whole credit) --------------

    # The credit session's READY offers.
    def ready_credit(session)
      @split ? @split.ready_credit(session.index) : @w.credit
    end

    # The session's READY was answered (true) or its registration lost (false).
    def registration_changed(session, registered)
      return unless @split

      tell(registered ? @split.registered(session.index) : @split.lost(session.index))
    end

    # The broker answered the READY that lowered session's credit to credit.
    def lowering_confirmed(session, credit)
      tell(@split.confirmed(session.index, credit, session.held.size)) if @split
    end

    # What each session holds now, to the split; any change it makes goes out at once.
    # Called before the ACKs of a flush, and once per wake-up for what arrived.
    def report_held
      return if @split.nil? || @stopping # stopping: every broker was told CREDIT 0

      @sessions.each { |s| tell(@split.report(s.index, s.held.size)) }
    end

    private

    # The sockets change as sessions reconnect: a new poller when they did
    # (each socket comes with its monitor, whose events wake the thread too).
    def poller_now
      socks = @sessions.map(&:sock)
      return @poller if @poller && socks.each_index.all? { |i| socks[i].equal?(@poller_socks[i]) }

      @poller_socks = socks
      @poller = ZMQ::Poller.new
      @poller.register_readable(@pull)
      @sessions.each do |s|
        next unless s.sock

        @poller.register_readable(s.sock)
        @poller.register_readable(s.monitor.pair)
      end
      @poller
    end

    def wait_once(poller, now)
      wake = [@stop_deadline, *@sessions.map(&:wake_at), all_refused_at || Float::INFINITY].min
      Sockets.poll(poller, [wake - now, 0].max + 0.001)
      # Drain the bell before take(): see Outbox.
      nil while poller.readables.include?(@pull) && Sockets.recv_frames(@pull)
    end

    def tell(changes)
      return if changes.empty?

      @w.logger&.debug("zeromesh: credit over the brokers now #{@split.sent.inspect}")
      changes.each { |i, change| @sessions[i].credit_changed(change.credit, change.lower) }
    end

    def finish
      leftover = @w.outbox.close
      flush(leftover, Clock.now)
      unfinished = @sessions.sum(&:finish)
      @w.logger&.info("zeromesh: worker stopped; #{unfinished} job(s) handed back to the broker")
    end

    # -- from the handlers ---------------------------------------------------

    # Results go back on the session (and connection) their job came from;
    # one held by none any more came on a connection left (the broker has
    # redelivered it, or will), so its answer is not sent.
    def flush(items, now)
      acks = Hash.new { |h, k| h[k] = [] }
      replies = Hash.new { |h, k| h[k] = [] }
      extends = Hash.new { |h, k| h[k] = Hash.new { |hh, kk| hh[kk] = [] } }
      answers = [] # NACKs and ERRORs: they free credit too, so they wait for the credit report
      items.each do |item|
        what, job = item
        case what
        when :ack then (s = settle(job)) && acks[s] << job.id
        when :nack then (s = settle(job)) && answers << [s, *nack_header(job, item[2], item[3], item[4])]
        when :reply
          next unless (s = settle(job))

          header = { "id" => @ids.call, "re" => job.id }
          header["headers"] = item[3] if item[3]
          replies[s] << [header, item[2]]
        when :error then (s = settle(job)) && answers << [s, Wire::ERROR, { "re" => job.id }.merge(item[2])]
        when :extend then (s = holder(job)) && extends[s][item[2]] << job.id
        when :ready then @sessions.each(&:ready)
        when :stop then begin_stop(now, item[1])
        when :exited then @exited += 1
        end
      end
      # A lowered credit goes out (READY) before the answers that free a slot,
      # so the broker cannot refill that slot under the old credit.
      report_held
      answers.each { |s, command, header| s.control(command, header) }
      # EXTEND what is still held (not what finished in this same wake-up),
      # then one ACK (and one REPLY) message per session per wake-up, however many results.
      extends.each do |s, by_lease|
        by_lease.each do |lease_ms, ids|
          ids.select! { |id| s.held.key?(id) }
          ids.each_slice(Wire::MAX_IDS_PER_MESSAGE) { |chunk| s.control(Wire::EXTEND, { "ids" => chunk, "lease_ms" => lease_ms }) }
        end
      end
      acks.each { |s, ids| ids.each_slice(Wire::MAX_IDS_PER_MESSAGE) { |chunk| s.control(Wire::ACK, { "ids" => chunk }) } }
      replies.each { |s, list| list.each_slice(Wire::MAX_ITEMS_PER_MESSAGE) { |chunk| s.send_frames(Codec.pack_items(Wire::REPLY, chunk)) } }
    end

    def holder(job)
      @sessions.find { |s| s.holds?(job) }
    end

    # The session that held job, which forgets it; nil when none does.
    def settle(job)
      s = holder(job)
      s&.settle(job)
      s
    end

    # [NACK, header] for a failed job; retry_in_ms: the handler's own wait before the next attempt.
    def nack_header(job, error, retry_it, retry_in_ms = nil)
      header = { "re" => job.id, "error" => error.bytesize > MAX_NACK_ERROR ? error.byteslice(0, MAX_NACK_ERROR).scrub : error }
      header["retry"] = false unless retry_it
      header["retry_in_ms"] = retry_in_ms if retry_it && retry_in_ms
      [Wire::NACK, header]
    end

    def begin_stop(now, grace)
      return if @stopping

      @stopping = true
      @stop_deadline = now + grace
      @w.begin_stop # first, so no handler starts a queued job once the CREDIT 0 is out
      @sessions.each { |s| s.control(Wire::CREDIT, { "credit" => 0 }) }
    end
  end
end
