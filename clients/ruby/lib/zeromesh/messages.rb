# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "wire"

module Zeromesh
  # A reply body (binary String) with the headers the handler attached.
  # A request handler may return one instead of a plain String.
  Reply = Struct.new(:body, :headers) do
    def initialize(body, headers = {})
      super(Messages.body(body), headers || {})
    end

    def text
      body.dup.force_encoding(Encoding::UTF_8)
    end
  end

  # One event from the PUB endpoint. gap is true when this subscriber has
  # certainly missed events before this one (see GapTracker); broker names
  # the broker that published it ("" from a broker that does not say).
  Event = Struct.new(:topic, :body, :headers, :seq, :epoch, :id, :gap, :broker, keyword_init: true) do
    alias_method :gap?, :gap

    def text
      body.dup.force_encoding(Encoding::UTF_8)
    end
  end

  # The rules for what users hand in: bodies, names and application headers.
  module Messages
    module_function

    # Bodies travel as one opaque frame: a String as its bytes, nil as empty.
    def body(value)
      case value
      when nil then "".b
      when String then value
      else raise TypeError, "a body must be a String (or nil), not #{value.class}"
      end
    end

    # A queue, service or topic name: 1 to 255 bytes of UTF-8 (SPEC.md section 4).
    def name(value, what = "name")
      str = value.is_a?(Symbol) ? value.to_s : value
      raise TypeError, "#{what} must be a String, not #{value.class}" unless str.is_a?(String)

      str = utf8_view(str)
      unless str.valid_encoding? && str.bytesize.between?(1, Wire::MAX_NAME_BYTES)
        raise ArgumentError, "#{what} #{str.inspect} must be 1..#{Wire::MAX_NAME_BYTES} bytes of UTF-8"
      end

      str
    rescue EncodingError => e
      raise ArgumentError, "#{what} is not convertible to UTF-8: #{e.message}"
    end

    # Application headers as the wire wants them: String keys at every depth
    # (Symbols are converted), nil for none. Binary Strings travel as msgpack
    # bin, other Strings as str and must then be valid UTF-8.
    def headers(value)
      return nil if value.nil? || value.empty?
      raise TypeError, "headers must be a Hash, not #{value.class}" unless value.is_a?(Hash)

      wire_value(value)
    end

    def wire_value(value)
      case value
      when Hash
        value.to_h do |k, v|
          key = k.is_a?(Symbol) ? k.to_s : k
          raise ArgumentError, "header keys must be Strings or Symbols, not #{k.inspect}" unless key.is_a?(String)

          [utf8(key), wire_value(v)]
        end
      when Array then value.map { |v| wire_value(v) }
      when String then value.encoding == Encoding::BINARY ? value : utf8(value)
      else value
      end
    end

    def utf8(str)
      out = utf8_view(str)
      raise ArgumentError, "#{str.inspect} is not valid UTF-8 (use a binary String for bytes)" unless out.valid_encoding?

      out
    end

    # The same text as UTF-8: binary Strings (from sockets, Socket.gethostname,
    # files read "rb") are taken to hold UTF-8 bytes, others are transcoded.
    # Without this a binary String would travel as msgpack bin, not str.
    def utf8_view(str)
      str.encoding == Encoding::BINARY ? str.dup.force_encoding(Encoding::UTF_8) : str.encode(Encoding::UTF_8)
    end
  end
end
