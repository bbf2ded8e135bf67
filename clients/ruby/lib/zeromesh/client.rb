# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "msgpack"
require_relative "admin_calls"
require_relative "clock"
require_relative "codec"
require_relative "curve"
require_relative "defaults"
require_relative "endpoints"
require_relative "errors"
require_relative "ids"
require_relative "job_options"
require_relative "logging"
require_relative "messages"
require_relative "push_window"
require_relative "pushing"
require_relative "sockets"
require_relative "subscription"
require_relative "tracing"
require_relative "transport"

module Zeromesh
  # A connection to a broker: push, request, publish, subscribe, admin.
  # Usable from many threads at once (each thread gets its own DEALER).
  #
  # Given a list of brokers, it uses one at a time, starting on a random one,
  # and moves to the next when its own has had no live connection for
  # failover_s (see Transport): unconfirmed pushes go again with the same ids;
  # a request in flight fails with UnreachableError unless idempotent: true.
  # Subscriptions hear every PUB endpoint of the list.
  #
  #   client = Zeromesh::Client.new
  #   id = client.push("thumbs", "cat.png")
  #   ids = client.push_many("thumbs", %w[a.png b.png c.png])
  #   reply = client.request("resize", "cat.png", timeout: 2)
  #   client.push("cards", card, at: Time.new(2026, 12, 25, 8, 0, 0, "+01:00"))
  #   client.close
  class Client
    include AdminCalls # pause, resume, purge_queue, scheduled, cancel, schedules, status
    include Pushing # the sending loops of push and push_many

    attr_reader :endpoints, :pub_endpoints

    # endpoint / pub_endpoint default to ZEROMESH_BROKER / ZEROMESH_PUB, then
    # to the defaults; each is one endpoint or a comma-separated list (or an
    # Array); this is the only place the client reads the environment.
    # context: a ZMQ::Context to share (the client then leaves it running).
    # request_margin: seconds to wait past a request's timeout for the broker's
    # own timeout ERROR before giving up locally.
    # connect_timeout: push, push_many, request, admin and ping raise
    # UnreachableError once they have waited this many seconds without a live
    # connection to the broker (nil: wait out their whole deadline).
    # linger: #close first lets what was already sent (publishes, pushes)
    # leave, for at most this many seconds.
    # failover_s: with several brokers, seconds without a live connection to
    # the one in use before moving to the next (ZEROMESH_FAILOVER_S, 3.0).
    # curve_server, curve_secret: CURVE (SPEC 14.4), default
    # ZEROMESH_CURVE_SERVER and ZEROMESH_CURVE_SECRET: the broker's public key
    # (40 Z85 characters or a certificate file; or a comma-separated list, one
    # per endpoint in order, for endpoint and pub_endpoint alike) and the path
    # of this client's NAME.key_secret. Both unset: no CURVE. CertificateError
    # when they cannot be used. A broker that refuses the handshake fails the
    # calls waiting for it at once with AuthenticationError.
    def initialize(endpoint: ENV["ZEROMESH_BROKER"] || Defaults::BROKER_ENDPOINT,
                   pub_endpoint: ENV["ZEROMESH_PUB"] || Defaults::PUB_ENDPOINT,
                   context: nil, logger: nil, admin_timeout: 5.0,
                   request_margin: Defaults::REQUEST_MARGIN_S,
                   connect_timeout: Defaults::CONNECT_TIMEOUT_S, linger: Defaults::LINGER_S,
                   failover_s: Client.env_seconds("ZEROMESH_FAILOVER_S", Defaults::FAILOVER_S),
                   curve_server: ENV["ZEROMESH_CURVE_SERVER"], curve_secret: ENV["ZEROMESH_CURVE_SECRET"])
      check_seconds(connect_timeout, "connect_timeout", allow_nil: true)
      check_seconds(linger, "linger")
      check_seconds(failover_s, "failover_s")
      @endpoints = Endpoints.parse(endpoint, "endpoint")
      @pub_endpoints = Endpoints.parse(pub_endpoint, "PUB endpoint")
      @curve = Curve.settings(curve_server, curve_secret, @endpoints.size)
      if @curve && @curve.server_keys.size > 1 && @pub_endpoints.size != @curve.server_keys.size
        raise CertificateError, "#{Curve::SERVER_SETTING} lists #{@curve.server_keys.size} keys, one per broker " \
                                "endpoint, but there are #{@pub_endpoints.size} PUB endpoints: list them in the same order"
      end
      @logger = logger || (@endpoints.size > 1 ? Zeromesh.logger(progname: "zeromesh") : nil)
      @admin_timeout = admin_timeout
      @request_margin = request_margin
      @own_context = context.nil?
      @ctx = context || Sockets.new_context
      @transport = Transport.new(@ctx, @endpoints, logger: @logger, connect_timeout: connect_timeout, linger: linger,
                                                   failover_s: failover_s, curve: @curve)
      @ids = IdGenerator.new
      @lock = Mutex.new
      @subscriptions = []
      @closed = false
    end

    # Seconds from the environment variable name, else default; ArgumentError when not a number.
    def self.env_seconds(name, default)
      value = ENV[name]
      return default if value.nil? || value.strip.empty?

      Float(value)
    rescue ArgumentError
      raise ArgumentError, "#{name} must be a number of seconds, not #{value.inspect}"
    end

    # The broker in use now (one of #endpoints).
    def endpoint
      @transport.endpoint
    end

    # The PUB endpoints as given (comma-separated).
    def pub_endpoint
      @pub_endpoints.join(",")
    end

    # -- work queues ---------------------------------------------------------

    # Queue one job; returns its id once the broker confirmed it. Resends the
    # same id every PUSH_RESEND_S while unconfirmed (the broker queues it once).
    # delay (seconds, >= 0) or at (a Time, any offset) schedules it for then:
    # it waits in the broker's Redis from the confirmation on (SPEC.md 16.5).
    # unique_key: queue it only if no other job holds the key, which this one
    # then holds until it is done, or for unique_ttl seconds from the push;
    # when another job holds it, nothing is queued and that job's id is
    # returned (SPEC.md 16.6). Both need a broker with Redis (else RemoteError
    # "unavailable"). ArgumentError / TypeError for bad options, before
    # anything is sent. Raises QueueFullError / RemoteError when refused,
    # TimeoutError when unconfirmed after timeout seconds, UnreachableError
    # when no connection to the broker was live for connect_timeout seconds.
    # trace: the trace the job joins (1..255 bytes), with parent: the id of
    # the message it came from; by default, inside a Worker's handler, the
    # handled message's trace and id (Tracing), else none: it starts its own.
    def push(queue, body, headers: nil, timeout: Defaults::PUSH_TIMEOUT_S, trace: nil, parent: nil,
             delay: nil, at: nil, unique_key: nil, unique_ttl: nil)
      id = @ids.call
      header = { "id" => id, "queue" => Messages.name(queue, "queue") }.merge!(Tracing.fields(trace, parent))
      wire_headers = Messages.headers(headers)
      header["headers"] = wire_headers if wire_headers
      # A unique push always goes as a PUSH item, as here: the broker checks keys on PUSH alone.
      header.merge!(JobOptions.later(delay, at), JobOptions.unique(unique_key, unique_ttl))
      frames = Codec.pack_item(Wire::PUSH, header, Messages.body(body))
      send_push(id, queue, frames, timeout)
    end

    # Queue many jobs, pipelined; returns their ids, in the order of bodies,
    # once the broker confirmed every one. delay or at schedules every one of
    # them for then, as in #push. Up to window jobs are unconfirmed at
    # once, sent batch per message: PUSH_PACKED (one frame for all bodies)
    # while the message's bodies fit in 1 MiB, else PUSH_BATCH; for an older
    # broker that answers unknown_command, PUSH_BATCH and then PUSH (see
    # PushWindow). Unconfirmed jobs go again with the same ids every
    # PUSH_RESEND_S. On the first refusal nothing more is sent; once what was
    # sent is settled that error is raised (QueueFullError, RemoteError, ...).
    # timeout is the longest wait without any confirmation; then TimeoutError.
    # UnreachableError when no connection to the broker was live for
    # connect_timeout seconds. Every Zeromesh::Error raised here has #accepted,
    # the ids the broker confirmed (those jobs stay queued), and #unconfirmed,
    # the [id, body] pairs it did not confirm, in the order of bodies: resend
    # those (the same ids are safe to send again). trace: and parent: as in #push.
    def push_many(queue, bodies, headers: nil, window: 5000, batch: 250, timeout: Defaults::PUSH_TIMEOUT_S, trace: nil,
                  parent: nil, delay: nil, at: nil)
      base = { "queue" => Messages.name(queue, "queue") }.merge!(Tracing.fields(trace, parent))
      wire_headers = Messages.headers(headers)
      base["headers"] = wire_headers if wire_headers
      base.merge!(JobOptions.later(delay, at)) # at_ms in each batch's header, or each PUSH item's
      PushWindow.check_sizes(window, batch)
      # Every body checked before the first is sent.
      bodies = bodies.map { |body| Messages.body(body) }
      return [] if bodies.empty?

      ids = Array.new(bodies.size) { @ids.call }
      win = PushWindow.new(ids, window: window, batch: batch, resend_s: Defaults::PUSH_RESEND_S, new_id: @ids)
      begin
        run_window(win, base, bodies, timeout)
      rescue Error => e
        accepted = win.accepted
        confirmed = accepted.to_h { |id| [id, true] }
        unconfirmed = ids.each_index.reject { |i| confirmed[ids[i]] }.map { |i| [ids[i], bodies[i]] }
        e = e.with_jobs(unconfirmed.size) if e.is_a?(UnreachableError)
        e.accepted ||= accepted
        e.unconfirmed ||= unconfirmed
        raise e
      end
      ids
    end

    # -- request/reply -------------------------------------------------------

    # The reply body (a binary String) of one worker of service. See #request_full.
    def request(service, body = "", timeout: Defaults::REQUEST_TIMEOUT_S, wait: false, headers: nil, trace: nil,
                parent: nil, idempotent: false)
      request_full(service, body, timeout: timeout, wait: wait, headers: headers, trace: trace, parent: parent,
                   idempotent: idempotent).body
    end

    # Ask one worker of service; returns a Reply (body, headers). Raises
    # NoRespondersError at once when nobody serves it (unless wait: true, which
    # queues the request until a worker registers), RemoteError with the
    # handler's exception name, message and traceback, TimeoutError when
    # the broker's deadline passes or nothing comes back within timeout plus
    # the margin (then a CANCEL is sent), and UnreachableError when no
    # connection to the broker was live for connect_timeout seconds.
    # With several brokers, a request in flight when the client moves to
    # another fails with UnreachableError, unless idempotent: true (running it
    # twice does no harm): then it goes to the new broker under a new id with
    # what is left of timeout. trace: and parent: as in #push.
    def request_full(service, body = "", timeout: Defaults::REQUEST_TIMEOUT_S, wait: false, headers: nil, trace: nil,
                     parent: nil, idempotent: false)
      header = { "service" => Messages.name(service, "service") }
      header["wait"] = true if wait
      wire_headers = Messages.headers(headers)
      header["headers"] = wire_headers if wire_headers
      header.merge!(Tracing.fields(trace, parent))
      body = Messages.body(body)
      rid = nil
      answer = call(timeout + @request_margin, idempotent: idempotent) do |deadline|
        rid = @ids.call
        left_ms = ((deadline - @request_margin - Clock.now) * 1000).to_i
        [rid, Codec.pack_item(Wire::REQUEST, header.merge("id" => rid, "timeout_ms" => [1, left_ms].max), body)]
      end
      if answer.nil?
        cancel_request(rid)
        raise TimeoutError, "no answer from #{service.inspect} within #{timeout}s (is the broker at #{endpoint} up?)"
      end
      Reply.new(answer[1], answer[0]["headers"] || {})
    end

    # -- pub/sub -------------------------------------------------------------

    # Publish one event (at-most-once, never confirmed); returns its id.
    # It leaves in the background; #close waits up to linger for it.
    def publish(topic, body, headers: nil, timeout: 1.0)
      id = @ids.call
      header = { "id" => id, "topic" => Messages.name(topic, "topic") }
      wire_headers = Messages.headers(headers)
      header["headers"] = wire_headers if wire_headers
      frames = Codec.pack_item(Wire::PUBLISH, header, Messages.body(body))
      misses = []
      begin
        @transport.send(frames, Clock.now + timeout)
      rescue Transport::Moved => e
        misses = after_move(e, misses) # the broker left refused us: nothing reached it
        retry
      end
      id
    end

    # Events whose topic starts with one of prefixes (none: every topic).
    # With a block: yields each Event until the block breaks or the
    # subscription is closed, then closes it. Without: returns the
    # Subscription (#next(timeout:), #each, #close).
    def subscribe(*prefixes, pub_endpoint: @pub_endpoints)
      sub = @lock.synchronize do
        raise Error, "the client is closed" if @closed

        Subscription.new(@ctx, pub_endpoint, prefixes.map(&:to_s), logger: @logger, curve: @curve,
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
      header = { "op" => op.to_s }
      header["args"] = Messages.wire_value(args) unless args.empty?
      answer = call(@admin_timeout) do
        rid = @ids.call
        [rid, Codec.pack_control(Wire::ADMIN, header.merge("id" => rid))]
      end
      raise TimeoutError, "admin #{op}: no answer from #{endpoint} within #{@admin_timeout}s" if answer.nil?

      result = answer[1].empty? ? {} : MessagePack.unpack(answer[1])
      raise Error, "admin #{op}: the broker answered a #{result.class}, not a map" unless result.is_a?(Hash)

      result
    end

    # Round trip to the broker; returns its epoch. Everything this thread sent before has arrived.
    def ping(timeout: 5.0)
      # Harmless to repeat: a ping is resent to the next broker after a move.
      answer = call(timeout, idempotent: true) do
        id = @ids.call
        [Transport::PING_PREFIX + id, Codec.pack_control(Wire::HEARTBEAT, { "id" => id })]
      end
      raise TimeoutError, "no answer from the broker at #{endpoint} within #{timeout}s" if answer.nil?

      answer[0]["epoch"].to_s
    end

    # -- lifetime ------------------------------------------------------------

    # Close every socket (subscriptions included) and, if the client made it,
    # the context: that waits until what was sent (publishes, pushes) has left,
    # for at most linger seconds. With a shared context, it goes on leaving
    # in the background for that long.
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

    # Send what make gives ([key, frames], from the call's deadline) and wait
    # for the REPLY or ERROR whose re is key. Returns [header, body] of the
    # REPLY, raises the ERROR, nil on timeout. When the client moves to
    # another broker meanwhile: the same frames go again if the broker left
    # never had a live connection (they cannot have arrived); else
    # UnreachableError, or, when idempotent, make's next [key, frames].
    def call(wait_s, idempotent: false, &make)
      since = Clock.now
      deadline = since + wait_s
      key, frames = make.call(deadline)
      misses = []
      loop do
        waiter = Waiter.new
        sent_key = key
        @transport.register([sent_key], waiter)
        begin
          @transport.send(frames, deadline, since: since)
          return nil unless @transport.wait(waiter, deadline, since: since)
          raise Zeromesh.error_from_header(waiter.error) if waiter.error

          return [waiter.header, waiter.body]
        rescue Transport::Moved => e
          misses = after_move(e, misses)
          next unless e.was_live
          unless idempotent
            raise UnreachableError.new(e.from, text: "broker #{e.from} lost with the request in flight; " \
                                                     "not resent (not idempotent)")
          end
          return nil if Clock.now >= deadline

          key, frames = make.call(deadline)
        ensure
          @transport.unregister([sent_key])
        end
      end
    end

    # Count a move for a call (misses: the moves since a live connection):
    # once it has moved across the whole list without finding a live
    # connection, AuthenticationError when a broker refused it, else
    # UnreachableError (a broker whose link had been live starts the count afresh).
    def after_move(moved, misses)
      misses = moved.was_live ? [] : misses + [moved]
      if misses.size >= @endpoints.size
        raise misses.map(&:refused).compact.last || UnreachableError.all(@endpoints)
      end

      misses
    end

    def cancel_request(rid)
      @transport.send(Codec.pack_control(Wire::CANCEL, { "id" => @ids.call, "re" => rid }), Clock.now + 0.1)
    rescue Error
      nil # best effort: the broker times the request out anyway
    end

    def check_seconds(value, name, allow_nil: false)
      return if value.nil? && allow_nil
      return if value.is_a?(Numeric) && value >= 0 && value.finite?

      raise ArgumentError, "#{name} must be a number of seconds >= 0#{allow_nil ? " or nil" : ""}, not #{value.inspect}"
    end

    def forget_subscription(sub)
      @lock.synchronize { @subscriptions.delete(sub) }
    end
  end
end
