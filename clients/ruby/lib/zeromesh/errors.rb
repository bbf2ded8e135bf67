# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  # Root of every zeromesh error. #code is the protocol's error code (SPEC.md section 9).
  # Set when Client#push_many fails, nil otherwise: #accepted, the ids of the
  # jobs the broker did confirm (they stay queued), in push order; and
  # #unconfirmed, the jobs it did not confirm, in push order, as [id, body]
  # pairs: what to send again.
  class Error < StandardError
    attr_accessor :accepted, :unconfirmed

    def code
      "error"
    end
  end

  # Bytes on the wire that do not follow protocol/SPEC.md; code is bad_frame,
  # bad_version, unknown_command, bad_header or too_large.
  class ProtocolError < Error
    attr_reader :code, :detail

    def initialize(code, detail)
      @code = code
      @detail = detail
      super("#{code}: #{detail}")
    end
  end

  # A deadline passed: the broker answered `timeout`, or nothing came back in time.
  class TimeoutError < Error
    def code
      "timeout"
    end
  end

  # Nothing answered at the transport level: no live connection to the broker
  # for connect_timeout seconds while a call waited (Client.new(connect_timeout:)),
  # or, with a list of brokers, none of them reachable, or the broker lost
  # with a request in flight that was not marked idempotent. Raised at once
  # then, rather than after the call's whole deadline.
  class UnreachableError < Error
    attr_reader :endpoint

    # jobs: how many pushes were left unconfirmed (said in the message), if any.
    # text: what happened, when not "no connection to endpoint for seconds".
    def initialize(endpoint, seconds = nil, jobs: nil, text: nil)
      @endpoint = endpoint
      @text = text || "cannot reach the broker at #{endpoint}: no connection for #{seconds}s"
      super("#{@text}#{jobs ? " (#{jobs} job(s) not confirmed)" : ""}")
    end

    # The same failure, saying how many pushes it left unconfirmed.
    def with_jobs(jobs)
      UnreachableError.new(@endpoint, jobs: jobs, text: @text)
    end

    # Every broker of the list was tried without a live connection.
    def self.all(endpoints)
      new(endpoints.join(","), text: "cannot reach any broker of #{endpoints.join(",")}")
    end

    def code
      "unreachable"
    end
  end

  # The broker refused this client's ZeroMQ handshake (SPEC 14.4): its key is
  # not among the broker's clients, or only one side uses CURVE, or the
  # client has a wrong idea of the broker's public key. libzmq would retry
  # for ever without a word, so calls waiting for that broker fail with this
  # at once. endpoint: the broker's address.
  class AuthenticationError < Error
    # ZAP said no (HANDSHAKE_FAILED_AUTH): the key is unknown or was removed.
    KEY_NOT_ALLOWED = "key not allowed"
    # HANDSHAKE_FAILED_PROTOCOL or _NO_DETAIL: the two sides disagree on the mechanism or the keys.
    HANDSHAKE_FAILED = "handshake failed (CURVE on one side only, or a wrong server public key)"

    attr_reader :endpoint

    def initialize(endpoint, reason)
      @endpoint = endpoint
      super("authentication refused by the broker at #{endpoint}: #{reason}")
    end

    def code
      "unauthenticated"
    end
  end

  # A CURVE setting (curve_server, curve_secret, ZEROMESH_CURVE_*) that cannot
  # be used: one without the other, a missing or malformed certificate, a key
  # that is not 40 Z85 characters, a list of keys that does not match the endpoints.
  class CertificateError < Error
    def code
      "bad_certificate"
    end
  end

  # Redis holds a pushed job on its primary but on fewer replicas than a push needs
  # (RedisQueue#push, WAIT): not confirmed, since a failover now could lose it.
  class UnavailableError < Error
    def code
      "unavailable"
    end
  end

  # The broker or a remote handler answered ERROR. name, message and
  # remote_traceback are the triple any language can show: #message is the
  # ERROR's message field as sent, #to_s the whole line "code: name: message".
  class RemoteError < Error
    attr_reader :code, :name, :message, :remote_traceback

    def initialize(code, message, name: "", traceback: "")
      @code = code.to_s
      @name = name.to_s
      @message = message.to_s
      @remote_traceback = traceback.to_s
      super("#{@code}: #{@name.empty? ? "" : "#{@name}: "}#{@message}")
    end

    # Ruby 3.2+ prints an uncaught exception with this: show code and name too.
    def detailed_message(**)
      "#{self} (#{self.class})"
    end
  end

  # No worker serves the service (code no_responders).
  class NoRespondersError < RemoteError; end

  # The queue or service is at its limit (code queue_full); try again later.
  class QueueFullError < RemoteError; end

  # The broker refused a command outside this client's key's roles, or from a
  # key removed meanwhile (code forbidden); nothing changed. #message names
  # the key, the command and the name ("key NAME may not ...").
  class ForbiddenError < RemoteError; end

  # Raise from a job handler to dead-letter the job at once (NACK with retry false).
  class DeadLetter < StandardError; end

  # Raise from a job handler to have the job tried again in so many seconds,
  # instead of after the queue's backoff (NACK retry_in_ms). The job still
  # counts an attempt: at the queue's max_attempts it is dead-lettered.
  #
  #   raise Zeromesh::Retry.new(in: 30)                       # "Zeromesh::Retry: retry in 30s"
  #   raise Zeromesh::Retry.new("mail provider busy", in: 30)
  class Retry < StandardError
    # Seconds to wait before the next attempt.
    attr_reader :retry_in

    # in: is a keyword Ruby reserves, hence read through the binding.
    def initialize(message = nil, in:)
      seconds = binding.local_variable_get(:in)
      unless seconds.is_a?(Numeric) && seconds.real? && (seconds.is_a?(Integer) || seconds.finite?) && seconds >= 0
        raise ArgumentError, "Retry in: must be a number of seconds, 0 or more, not #{seconds.inspect}"
      end

      @retry_in = seconds
      super(message || "retry in #{seconds}s")
    end

    # The wait as NACK retry_in_ms.
    def retry_in_ms
      (retry_in.to_r * 1000).to_i
    end
  end

  # The exception an ERROR header stands for (returned, not raised, so callers clean up first).
  def self.error_from_header(header)
    code = (header["code"] || "error").to_s
    message = header["message"].to_s
    return TimeoutError.new(message.empty? ? "the broker's deadline passed" : message) if code == Wire::E_TIMEOUT

    cls = { Wire::E_NO_RESPONDERS => NoRespondersError, Wire::E_QUEUE_FULL => QueueFullError,
            Wire::E_FORBIDDEN => ForbiddenError }.fetch(code, RemoteError)
    cls.new(code, message, name: header["name"].to_s, traceback: header["traceback"].to_s)
  end
end
