# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "msgpack"
require_relative "codec"

module Zeromesh
  # The decoded-JSON mapping of protocol/vectors/README.md, used by
  # bin/zeromesh-conformance and the codec tests.
  module Conformance
    module_function

    # Decode a vector's frames with the codec into the shape of its "decoded".
    # Raises ProtocolError for input the codec refuses.
    def decode(vector)
      frames = vector.fetch("frames_hex").map { |hex| [hex].pack("H*") }
      if vector.fetch("endpoint", "broker") == "pub"
        topic, header, body = Codec.unpack_event(frames)
        return { "topic" => topic, "header" => to_json(header), "body_hex" => body.unpack1("H*") }
      end

      env = Codec.unpack(frames, max_body: vector["max_body"])
      if env.item?
        { "command" => env.name,
          "items" => env.items.map { |h, b| { "header" => to_json(h), "body_hex" => b.unpack1("H*") } } }
      elsif env.batch? || env.packed?
        { "command" => env.name, "header" => to_json(env.header),
          "bodies_hex" => env.items.map { |b| b.unpack1("H*") } }
      else
        { "command" => env.name, "header" => to_json(env.header) }
      end
    end

    # Encode a vector's "decoded" with the codec: the frames as hex.
    def encode(vector)
      decoded = vector.fetch("decoded")
      frames =
        if vector.fetch("endpoint", "broker") == "pub"
          Codec.pack_event(decoded["topic"], from_json(decoded["header"]), [decoded["body_hex"]].pack("H*"))
        elsif decoded.key?("items")
          items = decoded["items"].map { |i| [from_json(i["header"]), [i["body_hex"]].pack("H*")] }
          Codec.pack_items(Wire::COMMANDS_BY_NAME.fetch(decoded["command"]), items)
        elsif decoded.key?("bodies_hex")
          encode_bodies(Wire::COMMANDS_BY_NAME.fetch(decoded["command"]), from_json(decoded["header"]),
                        decoded["bodies_hex"].map { |hex| [hex].pack("H*") })
        else
          Codec.pack_control(Wire::COMMANDS_BY_NAME.fetch(decoded["command"]), from_json(decoded["header"]))
        end
      frames.map { |f| f.unpack1("H*") }
    end

    # A batch command as it is; a packed command through Codec.pack_packed,
    # which computes "sizes" from the bodies (so the decoded sizes must agree).
    def encode_bodies(command, header, bodies)
      return Codec.pack_batch(command, header, bodies) unless Wire::PACKED_COMMANDS.include?(command)

      sizes = header.delete("sizes")
      raise ArgumentError, "sizes #{sizes.inspect} do not match the bodies" if sizes != bodies.map(&:bytesize)

      Codec.pack_packed(command, header, bodies)
    end

    # msgpack value -> JSON value: bin -> {"$bin": hex}, ext -> {"$ext": [type, hex]}.
    def to_json(value)
      case value
      when Hash then value.to_h { |k, v| [k, to_json(v)] }
      when Array then value.map { |v| to_json(v) }
      when String then value.encoding == Encoding::BINARY ? { "$bin" => value.unpack1("H*") } : value
      when MessagePack::ExtensionValue then { "$ext" => [value.type, value.payload.unpack1("H*")] }
      else value
      end
    end

    # The inverse of to_json.
    def from_json(value)
      case value
      when Hash
        return [value["$bin"]].pack("H*") if value.keys == ["$bin"]
        return MessagePack::ExtensionValue.new(value["$ext"][0], [value["$ext"][1]].pack("H*")) if value.keys == ["$ext"]

        value.to_h { |k, v| [k, from_json(v)] }
      when Array then value.map { |v| from_json(v) }
      else value
      end
    end
  end
end
