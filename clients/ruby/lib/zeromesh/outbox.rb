# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "securerandom"
require_relative "sockets"

module Zeromesh
  # Handler threads -> the worker's I/O thread: a list under a Mutex, and an
  # inproc doorbell that wakes the I/O thread's poll.
  #
  # The bell rings only when the list was empty, so under load one wake-up
  # serves many results. The I/O thread drains the bell before #take, so no
  # result is ever left without a ring after it.
  class Outbox
    def initialize(ctx)
      @ctx = ctx
      @address = "inproc://zeromesh-worker-#{SecureRandom.hex(8)}"
      @items = []
      @lock = Mutex.new
      @bell = nil
      @closed = false
    end

    # Create both ends (in the I/O thread); returns the PULL end to poll.
    def open
      pull = Sockets.socket(@ctx, ZMQ::PULL)
      Sockets.check(pull.bind(@address), "bind #{@address}")
      bell = Sockets.socket(@ctx, ZMQ::PUSH)
      Sockets.set(bell, ZMQ::SNDHWM, 1)
      Sockets.connect(bell, @address)
      @lock.synchronize { @bell = bell }
      pull
    end

    # From any thread. The one PUSH socket is shared, but only under the lock:
    # the full memory barrier ZeroMQ asks for when a socket changes threads.
    def put(item)
      @lock.synchronize do
        return if @closed

        was_empty = @items.empty?
        @items << item
        Sockets.send_frames(@bell, ["".b]) if was_empty && @bell # false: a ring is already pending
      end
    end

    def take
      @lock.synchronize do
        items = @items
        @items = []
        items
      end
    end

    # Refuse further puts; returns what was never taken.
    def close
      @lock.synchronize do
        @closed = true
        @bell&.close
        @bell = nil
        items = @items
        @items = []
        items
      end
    end
  end
end
