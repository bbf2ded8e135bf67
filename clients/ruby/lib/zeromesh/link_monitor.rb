# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "securerandom"
require "ffi-rzmq"
require_relative "sockets"

module Zeromesh
  # Whether a DEALER has a live connection to the broker, from libzmq's socket
  # monitor (zmq_socket_monitor): libzmq publishes the socket's connection
  # events on an inproc PAIR, which this reads without blocking.
  #
  # Each event is two frames: 6 bytes (a native-endian uint16 event id and a
  # uint32 value), then the endpoint. The link is live after a ZMTP handshake
  # succeeded (libzmq 4.3+; TCP connected on older ones) and not live at start
  # and after a disconnect, so a port where nothing listens, a host that drops
  # packets and a broker that went away all read as "not live".
  #
  # Read it from the thread that owns the DEALER (both are that thread's).
  class LinkMonitor
    EVENT_CONNECTED = 0x0001
    EVENT_DISCONNECTED = 0x0200
    EVENT_HANDSHAKE_SUCCEEDED = 0x1000

    # The event that makes a link live: a finished handshake where libzmq reports it.
    LIVE_EVENT = begin
      version = ::LibZMQ.version
      if version[:major] > 4 || (version[:major] == 4 && version[:minor] >= 3)
        EVENT_HANDSHAKE_SUCCEEDED
      else
        EVENT_CONNECTED
      end
    end

    # Once a link was live and went down, calls allow the broker this long to come
    # back (a restart; pushes resend across it) before they call it unreachable.
    RECONNECT_GRACE_S = 5.0

    attr_reader :pair, :down_since

    # Whether any socket of one client ever reached the broker: shared by its
    # monitors, so a new thread's socket during a restart gets the reconnect grace.
    class Reached
      attr_accessor :ever

      def initialize
        @ever = false
      end
    end

    # sock: the DEALER to watch (before it connects, so no event is missed).
    def initialize(ctx, sock, now, reached = Reached.new)
      @address = "inproc://zeromesh-monitor-#{SecureRandom.hex(8)}"
      Sockets.check(::LibZMQ.zmq_socket_monitor(sock.socket, @address, LIVE_EVENT | EVENT_DISCONNECTED),
                    "monitor the socket for #{@address}")
      @pair = Sockets.socket(ctx, ZMQ::PAIR)
      Sockets.connect(@pair, @address)
      @live = false
      @ever_live = false
      @reached = reached
      @down_since = now
    end

    def live?
      @live
    end

    # Whether this socket's link was ever live (so what was sent on it may have arrived).
    def ever_live?
      @ever_live
    end

    # Read every event waiting; now is when they are taken to have happened.
    def drain(now)
      while (frames = Sockets.recv_frames(@pair))
        event = frames[0].unpack1("S")
        if event == LIVE_EVENT
          @live = true
          @ever_live = true
          @reached.ever = true
        elsif event == EVENT_DISCONNECTED && @live
          @live = false
          @down_since = now
        end
      end
    end

    # When a call that began at since has waited long enough without a live link
    # (Float::INFINITY while live): timeout seconds on a link that never was live,
    # at least RECONNECT_GRACE_S on one that was.
    def unreachable_at(since, timeout)
      return Float::INFINITY if @live

      [@down_since, since].max + (@reached.ever ? [timeout, RECONNECT_GRACE_S].max : timeout)
    end

    def close
      @pair.close
    end
  end
end
