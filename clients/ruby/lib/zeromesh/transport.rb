# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "clock"
require_relative "codec"
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
    attr_reader :header, :body, :error

    def initialize
      @done = false
    end

    def done?
      @done
    end
    alias wake? done?

    def on_confirm(_id)
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

  # How a Client talks to the broker: one DEALER per thread. ZeroMQ sockets
  # are not thread-safe, and each call reads only its own thread's socket, so
  # threads never steal each other's answers.
  #
  # Each DEALER has a LinkMonitor. A call passes since (when it began) to
  # #send and #wait; once it has waited connect_timeout seconds with no live
  # connection, they raise UnreachableError. A connected broker that is merely
  # slow never trips it: the call then gets its whole deadline.
  class Transport
    # Waiters for a HEARTBEAT answer are registered under keys with this prefix.
    PING_PREFIX = "ping:"
    # Messages handled per wake-up before looking at the caller's waiter again.
    DRAIN_MAX = 1000

    attr_reader :connect_timeout

    State = Struct.new(:thread, :sock, :monitor, :poller, :waiters)

    # connect_timeout: seconds (nil: no limit). linger: seconds #close lets what was sent go on leaving.
    def initialize(ctx, endpoint, logger: nil, connect_timeout: 1.0, linger: 1.0)
      @ctx = ctx
      @endpoint = endpoint
      @logger = logger
      @connect_timeout = connect_timeout
      @reached = LinkMonitor::Reached.new
      @linger_ms = (linger * 1000).round
      @lock = Mutex.new
      @states = {}
      @closed = false
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
    # deadline, UnreachableError (see the class comment) for a call begun at since.
    def send(frames, deadline, since: nil)
      st = state
      until Sockets.send_frames(st.sock, frames)
        now = Clock.now
        check_reachable(st, now, since)
        remaining = deadline - now
        if remaining <= 0
          raise TimeoutError, "could not queue a message for #{@endpoint} (send queue full: is the broker down?)"
        end

        poller = ZMQ::Poller.new
        poller.register_writable(st.sock)
        Sockets.poll(poller, [remaining, 0.1].min)
        st.monitor.drain(Clock.now)
      end
    end

    # Read and dispatch until waiter.wake? (true) or until passes (false).
    # With since (when the call began): UnreachableError as the class comment says.
    def wait(waiter, until_time, since: nil)
      st = state
      until waiter.wake?
        now = Clock.now
        st.monitor.drain(now)
        check_reachable(st, now, since)
        return false if now >= until_time

        wake = until_time
        wake = [wake, st.monitor.unreachable_at(since, @connect_timeout)].min if since && @connect_timeout
        next unless Sockets.poll(st.poller, wake - now).positive? && st.poller.readables.include?(st.sock)

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
        @states.each_value { |st| close_state(st) }
        @states.clear
      end
    end

    private

    def state
      key = Thread.current
      @lock.synchronize do
        raise Error, "the client is closed" if @closed

        @states[key] ||= begin
          # Sockets of threads that have ended are nobody's now: close them here.
          @states.each { |thread, st| close_state(st) unless thread.alive? }
          @states.select! { |thread, _| thread.alive? }
          new_state(key)
        end
      end
    end

    # The monitor watches the DEALER from before it connects, so no event is missed.
    def new_state(thread)
      sock = Sockets.socket(@ctx, ZMQ::DEALER)
      monitor = LinkMonitor.new(@ctx, sock, Clock.now, @reached)
      Sockets.connect_dealer(@ctx, @endpoint, sock: sock)
      poller = ZMQ::Poller.new
      poller.register_readable(sock)
      poller.register_readable(monitor.pair)
      State.new(thread, sock, monitor, poller, {})
    rescue Error
      monitor&.close
      sock&.close
      raise
    end

    def close_state(st)
      st.monitor.close
      Sockets.set(st.sock, ZMQ::LINGER, @linger_ms)
      st.sock.close
    end

    def check_reachable(st, now, since)
      return unless since && @connect_timeout
      return if now < st.monitor.unreachable_at(since, @connect_timeout)

      raise UnreachableError.new(@endpoint, @connect_timeout)
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
        env.header["ids"].each { |id| waiters[id]&.on_confirm(id) }
        # A message id here confirms every job that message carried (SPEC.md section 6, CONFIRM).
        env.header["batches"]&.each { |message_id| waiters[message_id]&.on_confirm_batch(message_id) }
      when Wire::REPLY
        env.items.each { |header, body| waiters[header["re"]]&.on_reply(header, body) }
      when Wire::ERROR
        re = env.header["re"]
        waiter = re && waiters[re]
        if waiter
          waiter.on_error(env.header)
        elsif re.nil?
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
