# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "clock"
require_relative "codec"
require_relative "defaults"
require_relative "errors"
require_relative "link_monitor"
require_relative "sockets"

module Zeromesh
  # Who is waiting for which answer. A call registers a waiter under every id
  # it expects an answer for (a request id, a job id, a message id, a ping
  # key); dispatch hands each message from the broker to the waiter named by
  # its re (REPLY, ERROR), ids or batches (CONFIRM). Answers nobody waits for
  # any more are dropped. Transport#wait returns once the waiter's wake? is
  # true: for this one-answer waiter, once it has its answer (PushWindow, which
  # waits for many, wakes on any progress).
  class Waiter
    # holder: for a unique push confirmed but not queued, the id of the job that holds its key.
    attr_reader :header, :body, :error, :holder

    def initialize
      @done = false
    end

    def done?
      @done
    end
    alias wake? done?

    def on_confirm(_id, holder = nil)
      @holder = holder
      @done = true
    end

    # CONFIRM batches names PUSH_BATCH / PUSH_PACKED message ids, which only a PushWindow registers.
    def on_confirm_batch(_message_id); end

    def on_reply(header, body)
      return if @done

      @header = header
      @body = body
      @done = true
    end

    def on_error(header)
      return if @done

      @error = header
      @done = true
    end
  end

  # How a Client talks to its broker: one DEALER per thread. ZeroMQ sockets
  # are not thread-safe, and each call reads only its own thread's socket, so
  # threads never steal each other's answers.
  #
  # Each DEALER has a LinkMonitor. A call passes since (when it began) to
  # #send and #wait. With one endpoint, once the call has waited
  # connect_timeout seconds with no live connection, they raise
  # UnreachableError. With a list, the client uses one broker at a time
  # (starting on a random one, to spread load); once its link has been down
  # for failover_s (connect_timeout while no broker was ever reached), every
  # thread moves to the next endpoint of the list, and a call waiting then
  # gets Moved, to resend or fail as its kind requires (Client). A connected
  # broker that is merely slow never trips either: the call then gets its
  # whole deadline.
  #
  # A broker that refused the socket's handshake (the monitor saw a
  # HANDSHAKE_FAILED_* event: a key it does not know, CURVE on one side only,
  # a wrong server key) fails every call on it at once with
  # AuthenticationError; with a list, it counts as down and the client moves
  # on without waiting failover_s.
  class Transport
    # Waiters for a HEARTBEAT answer are registered under keys with this prefix.
    PING_PREFIX = "ping:"
    # Messages handled per wake-up before looking at the caller's waiter again.
    DRAIN_MAX = 1000

    # Raised into a call when the client moved to another broker meanwhile.
    # was_live: the socket left had had a live connection, so what the call
    # sent on it may have arrived; when false, it certainly did not.
    # refused: the AuthenticationError when the broker left refused the handshake.
    class Moved < StandardError
      attr_reader :from, :to, :was_live, :refused

      def initialize(from, to, was_live, refused = nil)
        @from = from
        @to = to
        @was_live = was_live
        @refused = refused
        super("moved from broker #{from} to #{to}")
      end
    end

    attr_reader :connect_timeout, :endpoints, :failover_s

    State = Struct.new(:thread, :sock, :monitor, :poller, :waiters, :generation, :endpoint)

    # endpoints: the parsed list (Endpoints.parse). connect_timeout: seconds
    # (nil: no limit). linger: seconds #close lets what was sent go on
    # leaving. failover_s: seconds without a live link before moving on.
    # curve: the Curve::Settings every socket gets (nil: the NULL mechanism).
    def initialize(ctx, endpoints, logger: nil, connect_timeout: 1.0, linger: 1.0,
                   failover_s: Defaults::FAILOVER_S, curve: nil)
      @ctx = ctx
      @endpoints = endpoints
      @curve = curve
      @logger = logger
      @connect_timeout = connect_timeout
      @failover_s = failover_s
      @reached = LinkMonitor::Reached.new
      @linger_ms = (linger * 1000).round
      @lock = Mutex.new
      @states = {}
      @closed = false
      @current = rand(endpoints.size) # spreads a fleet of clients over the brokers
      @generation = 0 # bumped by each move; a thread's socket of an older one is replaced
    end

    # The broker in use now.
    def endpoint
      @endpoints[@current]
    end

    def several?
      @endpoints.size > 1
    end

    def register(keys, waiter)
      waiters = state.waiters
      keys.each { |key| waiters[key] = waiter }
    end

    def unregister(keys)
      waiters = state.waiters
      keys.each { |key| waiters.delete(key) }
    end

    # Queue frames for sending; TimeoutError if the send queue stays full until
    # deadline, UnreachableError or Moved (see the class comment) for a call
    # begun at since; AuthenticationError (or Moved) when the broker refused us.
    def send(frames, deadline, since: nil)
      st = state
      st.monitor.drain(Clock.now)
      check_refused(st, Clock.now)
      until Sockets.send_frames(st.sock, frames)
        now = Clock.now
        check_refused(st, now)
        check_reachable(st, now, since)
        remaining = deadline - now
        if remaining <= 0
          raise TimeoutError, "could not queue a message for #{st.endpoint} (send queue full: is the broker down?)"
        end

        poller = ZMQ::Poller.new
        poller.register_writable(st.sock)
        Sockets.poll(poller, [remaining, 0.1].min)
        st.monitor.drain(Clock.now)
      end
    end

    # Read and dispatch until waiter.wake? (true) or until passes (false).
    # With since (when the call began): UnreachableError or Moved as the class comment says.
    def wait(waiter, until_time, since: nil)
      st = state
      until waiter.wake?
        moved!(st) if st.generation != @generation # another thread moved us
        now = Clock.now
        st.monitor.drain(now)
        check_refused(st, now)
        check_reachable(st, now, since)
        return false if now >= until_time

        wake = until_time
        wake = [wake, give_up_at(st, since)].min if since
        next unless Sockets.poll(st.poller, [wake - now, 0.2].min).positive? && st.poller.readables.include?(st.sock)

        DRAIN_MAX.times do
          frames = Sockets.recv_frames(st.sock) or break
          env = decode(frames)
          dispatch(env, st.waiters) if env
        end
      end
      true
    end

    # Close every socket; what was sent may go on leaving for linger seconds
    # (while the context lives: terminating it waits for that).
    def close
      @lock.synchronize do
        @closed = true
        @states.each_value { |st| close_state(st, @linger_ms) }
        @states.clear
      end
    end

    private

    # This thread's socket, to the broker in use: a thread whose socket is of
    # an older generation gets a new one (keeping its waiters: a push's answers
    # come on the new socket once it resends).
    def state
      key = Thread.current
      @lock.synchronize do
        raise Error, "the client is closed" if @closed

        st = @states[key]
        if st.nil?
          # Sockets of threads that have ended are nobody's now: close them here.
          @states.each { |thread, old| close_state(old, @linger_ms) unless thread.alive? }
          @states.select! { |thread, _| thread.alive? }
          st = @states[key] = new_state(key, {})
        elsif st.generation != @generation
          st = replace_state(st)
        end
        st
      end
    end

    # The monitor watches the DEALER from before it connects, so no event is missed.
    def new_state(thread, waiters)
      endpoint = @endpoints[@current]
      sock = Sockets.socket(@ctx, ZMQ::DEALER)
      monitor = LinkMonitor.new(@ctx, sock, Clock.now, @reached)
      @curve&.apply(sock, @current)
      Sockets.connect_dealer(@ctx, endpoint, sock: sock)
      poller = ZMQ::Poller.new
      poller.register_readable(sock)
      poller.register_readable(monitor.pair)
      State.new(thread, sock, monitor, poller, waiters, @generation, endpoint)
    rescue Error
      monitor&.close
      sock&.close
      raise
    end

    # Under @lock. What the old socket still queues is dropped (linger 0): it
    # was unreachable, and the calls waiting resend or fail.
    def replace_state(st)
      close_state(st, 0)
      @states[st.thread] = new_state(st.thread, st.waiters)
    end

    def close_state(st, linger_ms)
      st.monitor.close
      Sockets.set(st.sock, ZMQ::LINGER, linger_ms)
      st.sock.close
    end

    # When a call begun at since gives up on its broker (Float::INFINITY while live).
    def give_up_at(st, since)
      unless several?
        return @connect_timeout ? st.monitor.unreachable_at(since, @connect_timeout) : Float::INFINITY
      end
      return Float::INFINITY if st.monitor.live?

      st.monitor.down_since + move_after
    end

    # A list's wait per broker: connect_timeout until a broker was ever
    # reached (a client started with them all down learns it quickly), then
    # failover_s (a broker restarting in place keeps its clients).
    def move_after
      @reached.ever || @connect_timeout.nil? ? @failover_s : [@connect_timeout, @failover_s].min
    end

    def check_reachable(st, now, since)
      return unless since
      return if now < give_up_at(st, since)
      raise UnreachableError.new(st.endpoint, @connect_timeout) unless several?

      move(st, now)
    end

    # A refused broker fails the call at once: alone, with AuthenticationError;
    # in a list, it counts as down (Moved, carrying the refusal).
    def check_refused(st, now)
      refused = st.monitor.refusal or return
      raise refused unless several?

      move(st, now, refused)
    end

    # Move every thread to the next endpoint (once, whichever thread sees it
    # first), with one WARNING naming both, then raise Moved into this call.
    def move(st, now, refused = nil)
      @lock.synchronize do
        if st.generation == @generation
          @current = (@current + 1) % @endpoints.size
          @generation += 1
          why = refused&.message || format("broker %s unreachable for %.1fs", st.endpoint, now - st.monitor.down_since)
          @logger&.warn("zeromesh: #{why}; using #{@endpoints[@current]}")
        end
      end
      moved!(st, refused)
    end

    def moved!(st, refused = nil)
      was_live = st.monitor.ever_live?
      fresh = @lock.synchronize { replace_state(st) }
      raise Moved.new(st.endpoint, fresh.endpoint, was_live, refused)
    end

    def decode(frames)
      Codec.unpack(frames)
    rescue ProtocolError => e
      @logger&.warn("zeromesh: dropping a malformed message from the broker: #{e.message}")
      nil
    end

    def dispatch(env, waiters)
      case env.command
      when Wire::CONFIRM
        # duplicates: pushed id -> the job holding its unique key (that push queued nothing).
        duplicates = env.header["duplicates"] || {}
        env.header["ids"].each do |id|
          holder = duplicates[id]
          waiters[id]&.on_confirm(id, holder.is_a?(String) && !holder.empty? ? holder : nil)
        end
        # A message id here confirms every job that message carried (SPEC.md section 6, CONFIRM).
        env.header["batches"]&.each { |message_id| waiters[message_id]&.on_confirm_batch(message_id) }
      when Wire::REPLY
        env.items.each { |header, body| waiters[header["re"]]&.on_reply(header, body) }
      when Wire::ERROR
        # A ping refused (forbidden: its key was removed) is answered under its own id.
        re = env.header["re"]
        waiter = re && (waiters[re] || waiters[PING_PREFIX + re])
        if waiter
          waiter.on_error(env.header)
        elsif re.nil? || env.header["code"] == Wire::E_FORBIDDEN
          # Also what nobody waits for but the user must hear of: a publish outside the key's roles.
          @logger&.warn("zeromesh: broker error #{env.header["code"]}: #{env.header["message"]}")
        end
      when Wire::HEARTBEAT
        # A HEARTBEAT answers a ping and names it in re; from a broker that
        # does not say (re is recent), it wakes every ping.
        re = env.header["re"]
        if re
          waiters[PING_PREFIX + re]&.on_reply(env.header, "".b)
        else
          waiters.each { |key, waiter| waiter.on_reply(env.header, "".b) if key.start_with?(PING_PREFIX) }
        end
      end
    end
  end
end
