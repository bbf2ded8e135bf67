# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "clock"
require_relative "codec"
require_relative "errors"
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
  class Transport
    # Waiters for a HEARTBEAT answer are registered under keys with this prefix.
    PING_PREFIX = "ping:"
    # Messages handled per wake-up before looking at the caller's waiter again.
    DRAIN_MAX = 1000

    State = Struct.new(:thread, :sock, :waiters)

    def initialize(ctx, endpoint, logger: nil)
      @ctx = ctx
      @endpoint = endpoint
      @logger = logger
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

    # Queue frames for sending; TimeoutError if the send queue stays full until deadline.
    def send(frames, deadline)
      sock = state.sock
      until Sockets.send_frames(sock, frames)
        remaining = deadline - Clock.now
        if remaining <= 0
          raise TimeoutError, "could not queue a message for #{@endpoint} (send queue full: is the broker down?)"
        end

        poller = ZMQ::Poller.new
        poller.register_writable(sock)
        Sockets.poll(poller, [remaining, 0.1].min)
      end
    end

    # Read and dispatch until waiter.wake? (true) or until passes (false).
    def wait(waiter, until_time)
      st = state
      until waiter.wake?
        remaining = until_time - Clock.now
        return false if remaining <= 0
        next unless Sockets.readable?(st.sock, remaining)

        DRAIN_MAX.times do
          frames = Sockets.recv_frames(st.sock) or break
          env = decode(frames)
          dispatch(env, st.waiters) if env
        end
      end
      true
    end

    def close
      @lock.synchronize do
        @closed = true
        @states.each_value { |st| st.sock.close }
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
          @states.each { |thread, st| st.sock.close unless thread.alive? }
          @states.select! { |thread, _| thread.alive? }
          State.new(key, Sockets.connect_dealer(@ctx, @endpoint), {})
        end
      end
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
