# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "msgpack"
require_relative "clock"
require_relative "codec"
require_relative "defaults"
require_relative "errors"
require_relative "ids"
require_relative "messages"
require_relative "sockets"
require_relative "subscription"
require_relative "transport"

module Zeromesh
  # A connection to one broker: push, request, publish, subscribe, admin.
  # Usable from many threads at once (each thread gets its own DEALER).
  #
  #   client = Zeromesh::Client.new
  #   id = client.push("thumbs", "cat.png")
  #   reply = client.request("resize", "cat.png", timeout: 2)
  #   client.close
  class Client
    attr_reader :endpoint, :pub_endpoint

    # endpoint / pub_endpoint default to ZEROMESH_BROKER / ZEROMESH_PUB, then
    # to the defaults; this is the only place the client reads the environment.
    # context: a ZMQ::Context to share (the client then leaves it running).
    # request_margin: seconds to wait past a request's timeout for the broker's
    # own timeout ERROR before giving up locally.
    def initialize(endpoint: ENV["ZEROMESH_BROKER"] || Defaults::BROKER_ENDPOINT,
                   pub_endpoint: ENV["ZEROMESH_PUB"] || Defaults::PUB_ENDPOINT,
                   context: nil, logger: nil, admin_timeout: 5.0,
                   request_margin: Defaults::REQUEST_MARGIN_S)
      @endpoint = endpoint
      @pub_endpoint = pub_endpoint
      @logger = logger
      @admin_timeout = admin_timeout
      @request_margin = request_margin
      @own_context = context.nil?
      @ctx = context || Sockets.new_context
      @transport = Transport.new(@ctx, endpoint, logger: logger)
      @ids = IdGenerator.new
      @lock = Mutex.new
      @subscriptions = []
      @closed = false
    end

    # -- work queues ---------------------------------------------------------

    # Queue one job; returns its id once the broker confirmed it. Resends the
    # same id every PUSH_RESEND_S while unconfirmed (the broker queues it once).
    # Raises QueueFullError / RemoteError when refused, TimeoutError when
    # unconfirmed after timeout seconds.
    def push(queue, body, headers: nil, timeout: Defaults::PUSH_TIMEOUT_S, trace: nil)
      id = @ids.call
      header = { "id" => id, "queue" => Messages.name(queue, "queue") }
      header["trace"] = Messages.name(trace, "trace") if trace
      wire_headers = Messages.headers(headers)
      header["headers"] = wire_headers if wire_headers
      frames = Codec.pack_item(Wire::PUSH, header, Messages.body(body))

      waiter = Waiter.new
      @transport.register([id], waiter)
      begin
        deadline = Clock.now + timeout
        loop do
          @transport.send(frames, deadline)
          break if @transport.wait(waiter, [deadline, Clock.now + Defaults::PUSH_RESEND_S].min)

          if Clock.now >= deadline
            raise TimeoutError, "push #{id} to #{queue.inspect} unconfirmed after #{timeout}s " \
                                "(is the broker at #{@endpoint} up?)"
          end
        end
      ensure
        @transport.unregister([id])
      end
      raise Zeromesh.error_from_header(waiter.error) if waiter.error

      id
    end

    # -- request/reply -------------------------------------------------------

    # The reply body (a binary String) of one worker of service. See #request_full.
    def request(service, body = "", timeout: Defaults::REQUEST_TIMEOUT_S, wait: false, headers: nil)
      request_full(service, body, timeout: timeout, wait: wait, headers: headers).body
    end

    # Ask one worker of service; returns a Reply (body, headers). Raises
    # NoRespondersError at once when nobody serves it (unless wait: true, which
    # queues the request until a worker registers), RemoteError with the
    # handler's exception name, message and traceback, and TimeoutError when
    # the broker's deadline passes or nothing comes back within timeout plus
    # the margin (then a CANCEL is sent).
    def request_full(service, body = "", timeout: Defaults::REQUEST_TIMEOUT_S, wait: false, headers: nil, trace: nil)
      rid = @ids.call
      header = { "id" => rid, "service" => Messages.name(service, "service"),
                 "timeout_ms" => [1, (timeout * 1000).to_i].max }
      header["wait"] = true if wait
      wire_headers = Messages.headers(headers)
      header["headers"] = wire_headers if wire_headers
      header["trace"] = Messages.name(trace, "trace") if trace
      answer = call(rid, Codec.pack_item(Wire::REQUEST, header, Messages.body(body)), timeout + @request_margin)
      if answer.nil?
        cancel(rid)
        raise TimeoutError, "no answer from #{service.inspect} within #{timeout}s (is the broker at #{@endpoint} up?)"
      end
      Reply.new(answer[1], answer[0]["headers"] || {})
    end

    # -- pub/sub -------------------------------------------------------------

    # Publish one event (at-most-once, never confirmed); returns its id.
    def publish(topic, body, headers: nil, timeout: 1.0)
      id = @ids.call
      header = { "id" => id, "topic" => Messages.name(topic, "topic") }
      wire_headers = Messages.headers(headers)
      header["headers"] = wire_headers if wire_headers
      @transport.send(Codec.pack_item(Wire::PUBLISH, header, Messages.body(body)), Clock.now + timeout)
      id
    end

    # Events whose topic starts with one of prefixes (none: every topic).
    # With a block: yields each Event until the block breaks or the
    # subscription is closed, then closes it. Without: returns the
    # Subscription (#next(timeout:), #each, #close).
    def subscribe(*prefixes, pub_endpoint: @pub_endpoint)
      sub = @lock.synchronize do
        raise Error, "the client is closed" if @closed

        Subscription.new(@ctx, pub_endpoint, prefixes.map(&:to_s), logger: @logger,
                                                                   on_close: method(:forget_subscription)).tap do |s|
          @subscriptions << s
        end
      end
      return sub unless block_given?

      begin
        sub.each { |event| yield event }
      ensure
        sub.close
      end
    end

    # -- admin ---------------------------------------------------------------

    # Run an admin operation (SPEC.md section 12); returns the reply map.
    def admin(op, **args)
      rid = @ids.call
      header = { "id" => rid, "op" => op.to_s }
      header["args"] = Messages.wire_value(args) unless args.empty?
      answer = call(rid, Codec.pack_control(Wire::ADMIN, header), @admin_timeout)
      raise TimeoutError, "admin #{op}: no answer from #{@endpoint} within #{@admin_timeout}s" if answer.nil?

      result = answer[1].empty? ? {} : MessagePack.unpack(answer[1])
      raise Error, "admin #{op}: the broker answered a #{result.class}, not a map" unless result.is_a?(Hash)

      result
    end

    def status
      admin("status")
    end

    # Round trip to the broker; returns its epoch. Everything this thread sent before has arrived.
    def ping(timeout: 5.0)
      id = @ids.call
      key = Transport::PING_PREFIX + id
      answer = call(key, Codec.pack_control(Wire::HEARTBEAT, { "id" => id }), timeout)
      raise TimeoutError, "no answer from the broker at #{@endpoint} within #{timeout}s" if answer.nil?

      answer[0]["epoch"].to_s
    end

    # -- lifetime ------------------------------------------------------------

    # Close every socket (subscriptions included) and, if the client made it, the context.
    def close
      subs = @lock.synchronize do
        return if @closed

        @closed = true
        @subscriptions.dup
      end
      subs.each(&:close)
      @transport.close
      @ctx.terminate if @own_context
    end

    def closed?
      @closed
    end

    private

    # Send frames and wait for the REPLY or ERROR whose re is key.
    # Returns [header, body] of the REPLY, raises the ERROR, nil on timeout.
    def call(key, frames, wait_s)
      waiter = Waiter.new
      @transport.register([key], waiter)
      deadline = Clock.now + wait_s
      begin
        @transport.send(frames, deadline)
        return nil unless @transport.wait(waiter, deadline)
      ensure
        @transport.unregister([key])
      end
      raise Zeromesh.error_from_header(waiter.error) if waiter.error

      [waiter.header, waiter.body]
    end

    def cancel(rid)
      @transport.send(Codec.pack_control(Wire::CANCEL, { "id" => @ids.call, "re" => rid }), Clock.now + 0.1)
    rescue Error
      nil # best effort: the broker times the request out anyway
    end

    def forget_subscription(sub)
      @lock.synchronize { @subscriptions.delete(sub) }
    end
  end
end
