# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "ffi-rzmq"
require_relative "errors"
require_relative "nonblocking_zmq"

module Zeromesh
  # ffi-rzmq with the options every zeromesh peer sets, and its result codes
  # turned into return values and exceptions. Sends and receives never block
  # (NonblockingZMQ, which keeps the GVL); all waiting is in poll, which
  # releases the GVL so a waiting thread never stalls the others. A poll
  # cannot be interrupted, so every poll here is bounded.
  module Sockets
    # First reconnect attempt after a broker restart comes quickly...
    RECONNECT_IVL_MS = 100
    # ...and backs off to at most this.
    RECONNECT_IVL_MAX_MS = 1500
    HEARTBEAT_IVL_MS = 1000
    HEARTBEAT_TIMEOUT_MS = 3000
    # Messages queued per socket direction.
    HWM = 10_000
    # Subscribers buffer more: a slow reader drops events (seen as gaps) rather than stalling.
    SUB_RCVHWM = 100_000

    module_function

    def new_context
      ZMQ::Context.new
    rescue ZMQ::ContextError => e
      raise Error, "cannot create a ZeroMQ context: #{e.message}"
    end

    # A DEALER connected to the broker (sock: one made by #socket, e.g. to
    # monitor it first). libzmq keeps queued messages across reconnects.
    def connect_dealer(ctx, endpoint, sock: nil)
      sock ||= socket(ctx, ZMQ::DEALER)
      set(sock, ZMQ::SNDHWM, HWM)
      set(sock, ZMQ::RCVHWM, HWM)
      connect(sock, endpoint)
    end

    # A SUB with the subscriber's options, to connect to every PUB endpoint
    # (libzmq fair-queues what they publish).
    def sub_socket(ctx)
      sock = socket(ctx, ZMQ::SUB)
      set(sock, ZMQ::RCVHWM, SUB_RCVHWM)
      sock
    end

    def socket(ctx, type)
      sock = ctx.socket(type)
      raise Error, "cannot create a ZeroMQ socket (#{ZMQ::Util.error_string})" unless sock

      set(sock, ZMQ::LINGER, 0)
      set(sock, ZMQ::RECONNECT_IVL, RECONNECT_IVL_MS)
      set(sock, ZMQ::RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
      # ZMTP pings: a link cut without a reset sends nothing back; after the timeout libzmq drops
      # the connection, the link monitor sees it, and clients move on (SPEC 2.4).
      set_int(sock, ZMQ::HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
      set_int(sock, ZMQ::HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
      sock
    end

    def connect(sock, endpoint)
      check(sock.connect(endpoint), "connect to #{endpoint}") { sock.close }
      sock
    end

    # An int option ffi-rzmq's table does not know (libzmq 4.2+ heartbeats): set it directly.
    def set_int(sock, option, value)
      pointer = FFI::MemoryPointer.new(:int)
      pointer.write_int(value)
      check(::LibZMQ.zmq_setsockopt(sock.socket, option, pointer, pointer.size), "setsockopt #{option}")
    end

    def set(sock, option, value)
      check(sock.setsockopt(option, value), "setsockopt #{option}")
    end

    # Send a multipart message without blocking. false when the send queue is
    # full (EAGAIN); libzmq sends a multipart message whole or not at all.
    def send_frames(sock, frames)
      result = NonblockingZMQ.send_frames(sock.socket, frames)
      return true if result == :sent
      return false if result == :again

      raise Error, "send failed: #{strerror(result)}"
    end

    # Receive one multipart message (binary Strings) without blocking; nil when none is waiting.
    def recv_frames(sock)
      result = NonblockingZMQ.recv_frames(sock.socket)
      return result if result.is_a?(Array)
      return nil if result == :again

      raise Error, "receive failed: #{strerror(result)}"
    end

    def strerror(errno)
      ::LibZMQ.zmq_strerror(errno).read_string
    end

    # Wait up to timeout_s (>= 0) for the socket to become readable.
    def readable?(sock, timeout_s)
      poller = ZMQ::Poller.new
      poller.register_readable(sock)
      poll(poller, timeout_s).positive?
    end

    # zmq_poll with a timeout in seconds; the number of ready sockets (0 on EINTR).
    def poll(poller, timeout_s)
      rc = poller.poll((timeout_s * 1000).ceil.clamp(0, 2**31 - 1))
      return rc if rc >= 0
      return 0 if ZMQ::Util.errno == ZMQ::EINTR

      raise Error, "poll failed: #{ZMQ::Util.error_string}"
    end

    def check(rc, what)
      return rc if ZMQ::Util.resultcode_ok?(rc)

      message = ZMQ::Util.error_string
      yield if block_given?
      raise Error, "#{what} failed: #{message}"
    end
  end
end
