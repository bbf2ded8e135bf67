# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "codec"
require_relative "defaults"
require_relative "job"
require_relative "link_monitor"
require_relative "sockets"
require_relative "wire"

module Zeromesh
  # A worker's session with one broker (SPEC.md sections 11 and 13): its
  # DEALER, READY, heartbeats, noticing a dead or restarted broker and
  # registering again, and the jobs and requests that came on it. A worker
  # has one per broker endpoint; WorkerIO drives them all from its I/O
  # thread, and tells each the credit to offer (CreditSplit), which it
  # sends: lowered with READY, whose answer WorkerIO hears of, raised with CREDIT.
  #
  # Its DEALER has a LinkMonitor for refused handshakes (SPEC 14.4): a
  # refusal is logged at ERROR once (until a handshake succeeds) and the
  # session goes on trying, since the broker may be given the key;
  # refused_since says since when, for WorkerIO to give up when every broker refuses.
  class WorkerSession
    # A connection being replaced: long enough for its DISCONNECT to leave, so
    # the broker drops that registration at once, and no longer (what else it
    # still queues is moot: the broker redelivers those jobs).
    REPLACED_LINGER_MS = 200
    # On stop, the last ACKs and the DISCONNECT get this long to leave.
    FINAL_LINGER_MS = 1000
    # Ids of the latest READYs on this connection, to tell the broker's answer to one.
    READY_IDS_REMEMBERED = 16
    # Messages read per wake-up before flushing results (ACKs never wait on a flood of jobs).
    DRAIN_MAX = 1000

    attr_reader :endpoint, :index, :sock, :monitor, :held, :next_heartbeat, :reconnect_at, :last_recv,
                :refused_since, :refusal

    # io: the WorkerIO (ids, stopping?, the credit split, give_up); w: the
    # Worker; index: the endpoint's place in the list (its CURVE server key, its share).
    def initialize(io, w, endpoint, index = 0)
      @io = io
      @w = w
      @endpoint = endpoint
      @index = index
      @monitor = nil
      @refused_since = nil
      @refusal = nil
      @lowering = nil # [READY id, credit] of a READY that lowered the credit, until the broker answers it
      @ready_ids = []
      @sock = nil
      @held = {} # job and request ids -> Job, on the current connection only
      @epoch = nil
      # Until the broker shows it knows us, each beat is a READY, not a
      # HEARTBEAT: a READY can be lost (sent to a broker that was exiting), and
      # the broker answers a stranger's HEARTBEAT just as it answers a READY.
      @registered = false
      @last_recv = 0.0
      @next_heartbeat = 0.0
      @reconnect_at = nil
      @backoff = Defaults::RECONNECT_BACKOFF_MIN_S
      @liveness = @w.heartbeat_s * Defaults::HEARTBEAT_LIVENESS
    end

    # The earliest time this session needs the I/O thread back.
    def wake_at
      wake = [@next_heartbeat]
      wake << @last_recv + @liveness if @sock
      wake << @reconnect_at if @reconnect_at
      wake.min
    end

    def tick(now)
      connect(now, "backoff over") if @reconnect_at && now >= @reconnect_at
      if now >= @next_heartbeat
        @registered ? control(Wire::HEARTBEAT) : ready
        # Keep the cadence when a wake-up came late (a handler held the GVL),
        # but never fire a burst to catch up.
        @next_heartbeat = [@next_heartbeat + @w.heartbeat_s, now + @w.heartbeat_s / 2].max
      end
      return unless @sock && now - @last_recv > @liveness

      connect(now, format("nothing heard for %.1fs", now - @last_recv))
    end

    # Tell the broker a new credit: a lower one with READY, whose answer
    # confirms the broker applies it (WorkerIO#lowering_confirmed), a higher
    # one with CREDIT. Unregistered, the next READY carries it; stopping, the credit stays 0.
    def credit_changed(credit, lower)
      return if !@registered || @io.stopping?

      if lower
        @lowering = [nil, credit]
        ready
      else
        control(Wire::CREDIT, { "credit" => credit })
      end
    end

    def send_frames(frames)
      return unless @sock # between connections: the broker redelivers what we could not answer

      # A full send queue means the broker has been away long enough to fill the
      # HWM; it redelivers what we could not answer, so dropping is safe.
      @w.logger&.warn("zeromesh: send queue to #{@endpoint} full; dropping a message") unless Sockets.send_frames(@sock, frames)
    end

    def control(command, fields = {})
      send_frames(Codec.pack_control(command, { "id" => @io.ids.call }.merge(fields)))
    end

    def ready
      id = @io.ids.call
      @ready_ids.shift while @ready_ids.size >= READY_IDS_REMEMBERED
      @ready_ids << id
      credit = @io.stopping? ? 0 : @io.ready_credit(self)
      @lowering = [id, credit] if @lowering # this READY says the same credit: its answer confirms it
      header = { "id" => id, "names" => @w.handlers.keys.sort, "credit" => credit,
                 "label" => @w.label, "lang" => "ruby", "host" => @w.host }
      # A batch taker takes packed too: the broker packs what fits in 1 MiB and
      # sends the rest as JOB_BATCH, so both flags go together.
      if @w.batch
        header["batch"] = true
        header["packed"] = true
      end
      send_frames(Codec.pack_control(Wire::READY, header))
    end

    # A fresh DEALER and READY: the broker sees a new peer. The old connection
    # is left first (#leave), so only the new one is ever registered.
    def connect(now, why = nil)
      if @sock
        @w.logger&.warn("zeromesh: reconnecting to #{@endpoint} (#{why})")
        leave(why)
      end
      @sock = Sockets.socket(@w.context, ZMQ::DEALER)
      @monitor = LinkMonitor.new(@w.context, @sock, now)
      @w.curve&.apply(@sock, @index)
      Sockets.connect_dealer(@w.context, @endpoint, sock: @sock)
      @ready_ids.clear
      @epoch = nil
      self.registered = false
      @lowering = nil
      @reconnect_at = nil
      @last_recv = now
      @next_heartbeat = now + @w.heartbeat_s
      ready
    end

    # Close now, connect again after a backoff with jitter (after the broker's DISCONNECT).
    def disconnect_for_a_while(now, why, level: :warn)
      @w.logger&.send(level, "zeromesh: #{why}; reconnecting to #{@endpoint} in #{format("%.1f", @backoff)}s")
      leave(why)
      @reconnect_at = now + @backoff * (0.5 + rand * 0.5)
      @backoff = [@backoff * 2, Defaults::RECONNECT_BACKOFF_MAX_S].min
    end

    # Leave the current connection for good: DISCONNECT on it, so the broker
    # drops this registration at once and takes back its jobs without counting
    # an attempt, then close it with a short linger. Its jobs and requests are
    # abandoned: those not started never run, and results of those running are
    # dropped (#settle), never sent on another connection.
    def leave(why)
      control(Wire::DISCONNECT, { "reason" => why.to_s })
      Sockets.set(@sock, ZMQ::LINGER, REPLACED_LINGER_MS)
      close_monitor
      @sock.close
      @sock = nil
      @held.each_value(&:abandon!)
      held = @held.size
      @held.clear
      # After the held jobs are gone, and even when never registered: a READY
      # offered on this connection can no longer be applied, so the credit it
      # offered is free again (a broker that never answers must not keep it).
      @registered = false
      @io.registration_changed(self, false)
      return if held.zero?

      @w.logger&.info("zeromesh: abandoned #{held} job(s)/request(s) received on the connection to " \
                      "#{@endpoint} left (the broker hands them out again)")
    end

    # DISCONNECT "stopping" and close with the final linger; returns how many were handed back.
    def finish
      unfinished = @held.size
      control(Wire::DISCONNECT, { "reason" => "stopping" })
      if @sock
        Sockets.set(@sock, ZMQ::LINGER, FINAL_LINGER_MS)
        close_monitor
        @sock.close
        @sock = nil
      end
      unfinished
    end

    def close
      close_monitor
      @sock&.close
      @sock = nil
    end

    # Read the monitor's events: note a refused handshake (logged once per
    # refusal, until one succeeds), or clear it when one succeeded.
    def watch(now)
      return unless @monitor

      @monitor.drain(now)
      if (refused = @monitor.refusal)
        @w.logger&.error("zeromesh: #{refused.message}; trying again") unless @refused_since
        @refused_since ||= now
        @refusal = refused
      elsif @monitor.live?
        @refused_since = nil
        @refusal = nil
      end
    end

    # -- from the broker -----------------------------------------------------

    def read(now)
      sock = @sock
      DRAIN_MAX.times do
        frames = Sockets.recv_frames(sock) or return
        @last_recv = now
        begin
          env = Codec.unpack(frames)
        rescue ProtocolError => e
          @w.logger&.warn("zeromesh: dropping a malformed message from the broker at #{@endpoint}: #{e.message}")
          next
        end
        handle(env, now)
        return unless @sock.equal?(sock) # reconnected: the old socket's messages are moot
      end
    end

    # -- results ---------------------------------------------------------------

    # Forget a finished job; false when it is not held here (it came on an
    # earlier connection, or from another broker).
    def settle(job)
      return false unless @held[job.id].equal?(job)

      @held.delete(job.id)
      true
    end

    def holds?(job)
      @held[job.id].equal?(job)
    end

    private

    def close_monitor
      @monitor&.close
      @monitor = nil
    end

    def handle(env, now)
      case env.command
      when Wire::JOB, Wire::REQUEST then receive(env)
      when Wire::JOB_BATCH, Wire::JOB_PACKED then receive_batch(env) # decoded alike: header, bodies
      when Wire::CANCEL then @held[env.header["re"]]&.cancel!
      when Wire::HEARTBEAT then heartbeat(env.header["epoch"], env.header["re"], now)
      when Wire::ERROR
        code = env.header["code"]
        if code == Wire::E_UNKNOWN_PEER
          unknown_peer(now)
        elsif code == Wire::E_FORBIDDEN && @ready_ids.include?(env.header["re"])
          # This key may not serve these names: retrying cannot help.
          @io.give_up(Zeromesh.error_from_header(env.header))
        elsif code == Wire::E_FORBIDDEN
          @w.logger&.error("zeromesh: the broker at #{@endpoint} refused: #{env.header["message"]}")
        else
          @w.logger&.warn("zeromesh: broker error #{code}: #{env.header["message"]}")
        end
      when Wire::DISCONNECT
        reason = env.header["reason"]
        unless @io.stopping?
          # A broker stopping cleanly says shutting_down: expected, not a fault.
          disconnect_for_a_while(now, "the broker at #{@endpoint} said DISCONNECT (#{reason})",
                                 level: reason == "shutting_down" ? :info : :warn)
        end
      else
        @w.logger&.debug("zeromesh: ignoring an unexpected #{env.name} from the broker")
      end
    end

    # A broker that knew this connection (or a new broker on its address) no
    # longer does: start on a fresh connection rather than register this one
    # again, since what it held is being handed out anew. Before the broker
    # ever answered, READY again on this one.
    def unknown_peer(now)
      if @epoch || @registered
        connect(now, "the broker does not know this connection")
      else
        @w.logger&.info("zeromesh: the broker at #{@endpoint} does not know us yet; sending READY again")
        ready
      end
    end

    def receive(env)
      registered_now
      kind, field = env.command == Wire::JOB ? %i[job queue] : %i[request service]
      env.items.each { |header, body| hold(Job.new(kind, header[field.to_s], header, body, @w.outbox)) }
    end

    # Each body is a first delivery, exactly as a JOB with this header would
    # bring it. A JOB_PACKED's sizes have done their work in the codec.
    def receive_batch(env)
      registered_now
      shared = env.header
      queue = shared["queue"]
      @w.logger&.debug("zeromesh: #{env.name} of #{env.items.size} job(s) from the broker")
      shared["ids"].each_with_index do |id, i|
        header = { "id" => id, "queue" => queue, "attempt" => 1, "trace" => id, "lease_ms" => shared["lease_ms"] }
        header["headers"] = shared["headers"] if shared["headers"]
        hold(Job.new(:job, queue, header, env.items[i], @w.outbox))
      end
    end

    def hold(job)
      @held[job.id] = job
      # While stopping, jobs stay unstarted: DISCONNECT hands them back.
      @w.work << job unless @io.stopping? && job.job?
    end

    def heartbeat(epoch, re, now)
      if epoch && @epoch && epoch != @epoch
        connect(now, "broker epoch changed #{@epoch} -> #{epoch}")
        return
      end

      @epoch = epoch || @epoch
      if re && !@ready_ids.include?(re)
        # The broker answered one of our HEARTBEATs as a stranger's ping: it
        # does not count us as a worker (any more). Register again.
        @w.logger&.info("zeromesh: the broker at #{@endpoint} answered a heartbeat as a ping; sending READY again")
        self.registered = false
        ready
      else
        # It names our READY, or is the broker's beat to its registered workers
        # (or, from a broker that sends no re, answers our READY: we send no
        # HEARTBEAT before we are registered).
        registered_now
        if @lowering && re == @lowering[0]
          credit = @lowering[1]
          @lowering = nil
          @io.lowering_confirmed(self, credit)
        end
      end
    end

    def registered_now
      @backoff = Defaults::RECONNECT_BACKOFF_MIN_S
      @w.registered!
      self.registered = true
    end

    # A session registering or losing its registration changes the credit split.
    def registered=(value)
      return if value == @registered

      @registered = value
      @io.registration_changed(self, value)
    end
  end
end
