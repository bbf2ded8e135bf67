# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "securerandom"
require "ffi-rzmq"
require_relative "errors"
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
  # It also watches for refused handshakes (SPEC 14.4): libzmq retries a
  # refused CURVE handshake for ever and a send never fails, so the only sign
  # is the monitor's HANDSHAKE_FAILED_* events. An address whose handshake
  # failed is "refused" until one succeeds there. One monitor may watch a
  # socket connected to several addresses (a SUB): refusals are per address.
  # HANDSHAKE_FAILED_NO_DETAIL is also what a connection cut during its
  # handshake reports (a broker restarting, another program on the port): it
  # counts only twice in a row with no success between (a wrong server key
  # fails every retry alike).
  #
  # Read it from the thread that owns the socket (both are that thread's),
  # and keep reading it: a monitor nobody reads can hold up the handshakes
  # of the socket it watches.
  class LinkMonitor
    EVENT_CONNECTED = 0x0001
    EVENT_DISCONNECTED = 0x0200
    EVENT_HANDSHAKE_FAILED_NO_DETAIL = 0x0800
    EVENT_HANDSHAKE_SUCCEEDED = 0x1000
    EVENT_HANDSHAKE_FAILED_PROTOCOL = 0x2000
    EVENT_HANDSHAKE_FAILED_AUTH = 0x4000
    NO_DETAIL_STREAK = 2

    # What each failed handshake means, as AuthenticationError says it.
    REFUSALS = {
      EVENT_HANDSHAKE_FAILED_AUTH => AuthenticationError::KEY_NOT_ALLOWED,
      EVENT_HANDSHAKE_FAILED_PROTOCOL => AuthenticationError::HANDSHAKE_FAILED,
      EVENT_HANDSHAKE_FAILED_NO_DETAIL => AuthenticationError::HANDSHAKE_FAILED
    }.freeze

    # libzmq 4.3 and later report handshakes (succeeded and failed).
    HANDSHAKE_EVENTS = begin
      version = ::LibZMQ.version
      version[:major] > 4 || (version[:major] == 4 && version[:minor] >= 3)
    end
    # The event that makes a link live: a finished handshake where libzmq reports it.
    LIVE_EVENT = HANDSHAKE_EVENTS ? EVENT_HANDSHAKE_SUCCEEDED : EVENT_CONNECTED
    EVENTS = LIVE_EVENT | EVENT_DISCONNECTED | (HANDSHAKE_EVENTS ? REFUSALS.keys.reduce(:|) : 0)

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

    # sock: the socket to watch (before it connects, so no event is missed).
    def initialize(ctx, sock, now, reached = Reached.new)
      @sock = sock
      @address = "inproc://zeromesh-monitor-#{SecureRandom.hex(8)}"
      Sockets.check(::LibZMQ.zmq_socket_monitor(sock.socket, @address, EVENTS), "monitor the socket for #{@address}")
      @pair = Sockets.socket(ctx, ZMQ::PAIR)
      Sockets.connect(@pair, @address)
      @refused = {} # address -> AuthenticationError, until a handshake there succeeds
      @cuts = Hash.new(0) # address -> NO_DETAIL failures in a row
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

    # The AuthenticationError of a refused address (the first, when several are), or nil.
    def refusal
      @refused.each_value.first
    end

    # Read every event waiting; now is when they are taken to have happened.
    # Returns the AuthenticationErrors of addresses refused just now that
    # were not refused before (so a caller can report each refusal once).
    def drain(now)
      fresh = []
      while (frames = Sockets.recv_frames(@pair))
        event = frames[0].unpack1("S")
        address = frames[1].to_s.dup.force_encoding(Encoding::UTF_8)
        if event == LIVE_EVENT
          @live = true
          @ever_live = true
          @reached.ever = true
          @refused.delete(address)
          @cuts.delete(address)
        elsif event == EVENT_DISCONNECTED && @live
          @live = false
          @down_since = now
        elsif (reason = REFUSALS[event])
          if event == EVENT_HANDSHAKE_FAILED_NO_DETAIL
            @cuts[address] += 1
            next if @cuts[address] < NO_DETAIL_STREAK
          else
            @cuts.delete(address)
          end
          fresh << (@refused[address] = AuthenticationError.new(address, reason)) unless @refused.key?(address)
        end
      end
      fresh
    end

    # When a call that began at since has waited long enough without a live link
    # (Float::INFINITY while live): timeout seconds on a link that never was live,
    # at least RECONNECT_GRACE_S on one that was.
    def unreachable_at(since, timeout)
      return Float::INFINITY if @live

      [@down_since, since].max + (@reached.ever ? [timeout, RECONNECT_GRACE_S].max : timeout)
    end

    # Before the watched socket is closed: libzmq goes on sending the events of a
    # closing socket (its lingering connections, MONITOR_STOPPED) to the monitor,
    # and with nobody at the other end that send holds up the context's I/O
    # thread, and so every socket of the context. Stopping the monitor first
    # leaves nothing to send.
    def close
      ::LibZMQ.zmq_socket_monitor(@sock.socket, nil, 0) if @sock.socket
      @pair.close
    end
  end
end
