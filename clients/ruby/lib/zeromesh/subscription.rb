# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "clock"
require_relative "codec"
require_relative "endpoints"
require_relative "link_monitor"
require_relative "messages"
require_relative "sockets"

module Zeromesh
  # Decides whether an event proves that earlier ones were missed (SPEC 7), per broker.
  #
  # Within one broker epoch each topic counts 1, 2, 3...: a jump means loss.
  # A new epoch means that broker restarted; if this subscriber had seen
  # anything from it before, it cannot know what the old broker published
  # last, so the first event of the new epoch is a gap too. The first event
  # of a topic, and the first from a broker, is not a gap: earlier events
  # predate the subscription. Events name their broker (`broker`, "" from
  # brokers that do not), since a subscriber hears every broker of a mesh.
  class GapTracker
    # What one broker has shown this subscriber: its epoch and each topic's last seq.
    BrokerSeen = Struct.new(:epoch, :last)

    def initialize
      @brokers = {}
    end

    def observe(topic, seq, epoch, broker = "")
      seen = @brokers[broker]
      if seen.nil?
        seen = @brokers[broker] = BrokerSeen.new(epoch, {})
        gap = false
      elsif epoch != seen.epoch
        gap = true
        seen.epoch = epoch
        seen.last = {}
      else
        last = seen.last[topic]
        gap = !last.nil? && seq != last + 1
      end
      seen.last[topic] = seq
      gap
    end
  end

  # Events whose topic starts with one of the prefixes ("" = every topic),
  # from every PUB endpoint given (one SUB socket connected to each: every
  # broker of a mesh publishes what reaches it once, so each event arrives
  # once). Read it from one thread at a time; #close
  # works from any.
  #
  # ZeroMQ PUB/SUB drops rather than blocks, and a new SUB misses what is
  # published before its subscription reaches the broker (the slow joiner):
  # watch Event#gap?.
  #
  # A PUB endpoint that refuses the handshake (no subscriber key, CURVE on
  # one side only, a wrong server key) is logged at ERROR and raised as
  # AuthenticationError from the next #next, once per refusal: the socket
  # keeps trying, and a handshake that succeeds there later clears it.
  class Subscription
    include Enumerable

    # Longest single wait inside #each, so #close from another thread is noticed.
    POLL_SLICE_S = 0.2

    attr_reader :endpoints

    # endpoint: one PUB endpoint, a comma-separated list or an Array (Endpoints.parse).
    # curve: Curve::Settings (nil: no CURVE), a broker key per endpoint in order or one for all.
    def initialize(ctx, endpoint, prefixes = [], logger: nil, on_close: nil, curve: nil)
      @endpoints = Endpoints.parse(endpoint, "PUB endpoint")
      @logger = logger
      @on_close = on_close
      @sock = Sockets.sub_socket(ctx)
      @monitor = LinkMonitor.new(ctx, @sock, Clock.now)
      @poller = ZMQ::Poller.new
      @poller.register_readable(@sock)
      @poller.register_readable(@monitor.pair)
      @refusals = [] # AuthenticationErrors not yet raised
      begin
        @endpoints.each_with_index do |pub, index|
          curve&.apply(@sock, index)
          Sockets.connect(@sock, pub)
        end
      rescue Error
        close_sockets
        raise
      end
      @gaps = GapTracker.new
      @lock = Mutex.new
      @reading = false
      @closed = false
      (prefixes.empty? ? [""] : prefixes).each { |prefix| subscribe(prefix) }
    end

    def subscribe(prefix)
      Sockets.set(@sock, ZMQ::SUBSCRIBE, prefix.to_s.b)
    end

    def unsubscribe(prefix)
      Sockets.set(@sock, ZMQ::UNSUBSCRIBE, prefix.to_s.b)
    end

    # The next Event, or nil if none arrives within timeout seconds (nil: wait until closed).
    def next(timeout: nil)
      deadline = timeout && (Clock.now + timeout)
      @lock.synchronize do
        return nil if @closed

        @reading = true
      end
      begin
        read_until(deadline)
      ensure
        @lock.synchronize do
          @reading = false
          close_sockets if @closed
        end
      end
    end

    # Yield events until #close (from another thread, or from the block) or a break.
    def each
      return enum_for(:each) unless block_given?

      while (event = self.next)
        yield event
      end
    end

    # The PUB endpoints as given (comma-separated).
    def endpoint
      @endpoints.join(",")
    end

    def closed?
      @closed
    end

    # Safe from any thread: a socket being read is closed by its reader, at
    # most POLL_SLICE_S later (closing it under a poll would be undefined).
    def close
      @lock.synchronize do
        return if @closed

        @closed = true
        close_sockets unless @reading
      end
      @on_close&.call(self)
    end

    private

    def read_until(deadline)
      read_events(deadline)
    rescue Error
      raise unless @closed # the context was terminated under us by Client#close

      nil
    end

    def read_events(deadline)
      until @closed
        check_refused
        remaining = deadline ? deadline - Clock.now : POLL_SLICE_S
        return nil if remaining.negative?

        if Sockets.poll(@poller, [remaining, POLL_SLICE_S].min).positive? && @poller.readables.include?(@sock)
          frames = Sockets.recv_frames(@sock)
          event = frames && to_event(frames)
          return event if event
        elsif deadline && Clock.now >= deadline
          check_refused
          return nil
        end
      end
      nil
    end

    # Raise a refusal the monitor saw (each once), after logging it.
    def check_refused
      @monitor.drain(Clock.now).each do |refused|
        @logger&.error("zeromesh: #{refused.message}")
        @refusals << refused
      end
      raise @refusals.shift unless @refusals.empty?
    end

    def close_sockets
      @monitor.close
      @sock.close
    end

    def to_event(frames)
      topic, header, body = Codec.unpack_event(frames)
      seq = header["seq"]
      epoch = header["epoch"]
      broker = header["broker"] || ""
      Event.new(topic: topic, body: body, headers: header["headers"] || {}, seq: seq, epoch: epoch,
                id: header["id"], broker: broker, gap: @gaps.observe(topic, seq, epoch, broker))
    rescue ProtocolError => e
      @logger&.warn("zeromesh: dropping a malformed event from #{endpoint}: #{e.message}")
      nil
    end
  end
end
