# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "base64"
require "json"
require_relative "errors"
require_relative "wire"

module Zeromesh
  # Elements of the Redis lists of an envelope queue: one JSON object per job,
  # readable and writable with redis-cli and jq alone:
  #   {"id", "body" | "body_b64", "headers"?, "trace"?, "attempt"?, "error"?, "queue"?, "dead_ms"?}
  # (the same rules as the broker's protocol/envelope.py). A raw queue's
  # elements are the body bytes themselves and never pass through here.
  module RedisEnvelope
    # One decoded element. attempt counts the deliveries that failed so far.
    Element = Struct.new(:id, :body, :headers, :trace, :attempt, :error, :queue, :dead_ms, keyword_init: true)

    module_function

    # One JSON line; the body as text when it is valid UTF-8, else base64.
    # A dead letter has queue: and dead_ms: (when it was dead-lettered, ms since the epoch).
    def encode(id:, body:, headers: nil, trace: nil, attempt: 0, error: nil, queue: nil, dead_ms: nil)
      env = {}
      env["id"] = id if id
      text = body.dup.force_encoding(Encoding::UTF_8)
      if text.valid_encoding?
        env["body"] = text
      else
        env["body_b64"] = Base64.strict_encode64(body)
      end
      env["headers"] = jsonable(headers) if headers && !headers.empty?
      env["trace"] = trace if trace && trace != id
      env["attempt"] = attempt if attempt&.positive?
      env["error"] = error if error && !error.empty?
      env["queue"] = queue if queue
      env["dead_ms"] = dead_ms if dead_ms
      JSON.generate(env)
    end

    # Parse an element; ProtocolError(bad_header, "malformed envelope: ...") when it is not one.
    def decode(raw)
      text = raw.dup.force_encoding(Encoding::UTF_8)
      malformed!("not UTF-8") unless text.valid_encoding?
      env = begin
        JSON.parse(text)
      rescue JSON::ParserError => e
        malformed!("not JSON (#{e.message.lines.first&.strip})")
      end
      malformed!("not a JSON object") unless env.is_a?(Hash)

      Element.new(id: string_field(env, "id", bounded: true), body: body_of(env),
                  headers: typed(env, "headers", Hash, "an object"), trace: string_field(env, "trace"),
                  attempt: attempt_of(env), error: string_field(env, "error") || "", queue: string_field(env, "queue"),
                  # informational: another type is ignored, as SPEC 16.2 says
                  dead_ms: env["dead_ms"].is_a?(Integer) ? env["dead_ms"] : nil)
    end

    def body_of(env)
      text = env["body"]
      b64 = env["body_b64"]
      malformed!("needs exactly one of body and body_b64") if text.nil? == b64.nil?
      return typed(env, "body", String, "a string").b if text

      begin
        Base64.strict_decode64(typed(env, "body_b64", String, "a string"))
      rescue ArgumentError
        malformed!("body_b64 is not base64")
      end
    end

    def attempt_of(env)
      attempt = env.fetch("attempt", 0)
      malformed!("attempt must be a non-negative integer") unless attempt.is_a?(Integer) && attempt >= 0

      attempt
    end

    def string_field(env, key, bounded: false)
      value = typed(env, key, String, "a string")
      if bounded && value && !value.bytesize.between?(1, Wire::MAX_NAME_BYTES)
        malformed!("#{key} must be 1..#{Wire::MAX_NAME_BYTES} bytes")
      end
      value
    end

    def typed(env, key, type, what)
      value = env[key]
      malformed!("#{key} must be #{what}") unless value.nil? || value.is_a?(type)
      value
    end

    def malformed!(why)
      raise ProtocolError.new(Wire::E_BAD_HEADER, "malformed envelope: #{why}")
    end

    # JSON cannot hold bytes: binary Strings in headers are stored as base64 (as the broker does).
    def jsonable(value)
      case value
      when Hash then value.to_h { |k, v| [k.to_s, jsonable(v)] }
      when Array then value.map { |v| jsonable(v) }
      when String then value.encoding == Encoding::BINARY ? Base64.strict_encode64(value) : value
      else value
      end
    end
  end
end
