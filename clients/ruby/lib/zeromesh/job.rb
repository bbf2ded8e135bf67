# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "clock"

module Zeromesh
  # What a handler receives: one job (from a queue) or one request (for a service).
  #
  # kind is :job (return to ACK, raise to NACK) or :request (the return value
  # is the reply, an exception the remote error). #cancelled? turns true when
  # the broker cancels a request (the caller gave up or its deadline passed):
  # a long handler may check it and stop early.
  class Job
    attr_reader :kind, :name, :id, :body, :headers, :attempt, :trace, :error,
                :received_at, :lease_s, :timeout_s

    def initialize(kind, name, header, body, results)
      @kind = kind
      @name = name
      @id = header["id"]
      @body = body
      @headers = header["headers"] || {}
      @attempt = header["attempt"] || 1
      @trace = header["trace"] || @id
      @error = header["error"]
      @received_at = Clock.now
      # Jobs have a lease, requests a deadline; both in seconds from receipt.
      @lease_s = header["lease_ms"] && header["lease_ms"] / 1000.0
      @timeout_s = header["timeout_ms"] && header["timeout_ms"] / 1000.0
      @results = results
      @cancelled = false
      @abandoned = false
    end

    def job?
      @kind == :job
    end

    def request?
      @kind == :request
    end

    # The body as UTF-8 text.
    def text
      body.dup.force_encoding(Encoding::UTF_8)
    end

    def cancelled?
      @cancelled
    end

    # Called by the worker's I/O thread on CANCEL.
    def cancel!
      @cancelled = true
    end

    # The worker left the connection this came on: not to be started, its result dropped.
    def abandoned?
      @abandoned
    end

    # Called by the worker's I/O thread.
    def abandon!
      @abandoned = true
      @cancelled = true # a long handler that checks cancelled? may stop early
    end

    # Ask the broker to keep this job leased to us for seconds from now (EXTEND).
    def extend_lease(seconds)
      @results.put([:extend, self, [1, (seconds * 1000).to_i].max])
      self
    end

    # job.extend(seconds) is extend_lease; job.extend(SomeModule) is still Object#extend.
    def extend(*args)
      args.length == 1 && args[0].is_a?(Numeric) ? extend_lease(args[0]) : super
    end

    def inspect
      "#<Zeromesh::Job #{@kind} #{@name.inspect} id=#{@id.inspect} attempt=#{@attempt}>"
    end
    alias to_s inspect
  end
end
