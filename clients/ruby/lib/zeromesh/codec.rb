# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "msgpack"
require_relative "errors"
require_relative "msgpack_reader"
require_relative "wire"

module Zeromesh
  # A decoded broker-endpoint message. For an item command, items holds the
  # [header, body] pairs and header is the first one's; for a batch or packed
  # command items holds the bodies, one per id in header["ids"]; for a control
  # command items is empty.
  Envelope = Struct.new(:command, :header, :items) do
    def name
      Wire::COMMAND_NAMES.fetch(command)
    end

    def item?
      Wire::ITEM_COMMANDS.include?(command)
    end

    def batch?
      Wire::BATCH_COMMANDS.include?(command)
    end

    # Packed commands decode to the same shape as batch commands: the header
    # (with its sizes) and the bodies already cut apart.
    def packed?
      Wire::PACKED_COMMANDS.include?(command)
    end
  end

  # Bytes <-> messages for ZMSH/1 (protocol/SPEC.md sections 3, 4, 7 and 10).
  # The only code that builds or parses frames. Headers are Hashes with
  # String keys; bodies are binary Strings the broker never decodes.
  module Codec
    STR = :str
    INT = :int
    BOOL = :bool
    MAP = :map
    STRLIST = :strlist
    INTLIST = :intlist

    # Header ints are msgpack ints, 0 to 2^64-1 (SPEC.md section 4).
    MAX_INT = (1 << 64) - 1

    # command -> [required fields, optional fields], each {name => type} (SPEC.md section 6).
    SCHEMAS = {
      Wire::PUSH => [{ "id" => STR, "queue" => STR },
                     { "trace" => STR, "parent" => STR, "headers" => MAP, "at_ms" => INT, "unique_key" => STR,
                       "unique_ttl_ms" => INT }],
      Wire::CONFIRM => [{ "id" => STR, "ids" => STRLIST }, { "batches" => STRLIST, "duplicates" => MAP }],
      Wire::JOB => [{ "id" => STR, "queue" => STR, "attempt" => INT, "trace" => STR, "lease_ms" => INT },
                    { "error" => STR, "headers" => MAP }],
      Wire::ACK => [{ "id" => STR, "ids" => STRLIST }, {}],
      Wire::NACK => [{ "id" => STR, "re" => STR, "error" => STR }, { "retry" => BOOL, "retry_in_ms" => INT }],
      Wire::REQUEST => [{ "id" => STR, "service" => STR, "timeout_ms" => INT },
                        { "trace" => STR, "parent" => STR, "wait" => BOOL, "headers" => MAP, "attempt" => INT, "error" => STR }],
      Wire::REPLY => [{ "id" => STR, "re" => STR }, { "headers" => MAP }],
      Wire::ERROR => [{ "id" => STR, "code" => STR, "message" => STR }, { "re" => STR, "name" => STR, "traceback" => STR }],
      Wire::PUBLISH => [{ "id" => STR, "topic" => STR }, { "headers" => MAP, "seq" => INT, "epoch" => STR }],
      Wire::READY => [{ "id" => STR, "names" => STRLIST, "credit" => INT },
                      { "label" => STR, "lang" => STR, "host" => STR, "batch" => BOOL, "packed" => BOOL }],
      Wire::CREDIT => [{ "id" => STR, "credit" => INT }, {}],
      Wire::HEARTBEAT => [{ "id" => STR }, { "epoch" => STR, "re" => STR }],
      Wire::DISCONNECT => [{ "id" => STR }, { "reason" => STR }],
      Wire::EXTEND => [{ "id" => STR, "ids" => STRLIST, "lease_ms" => INT }, {}],
      Wire::CANCEL => [{ "id" => STR, "re" => STR }, {}],
      Wire::ADMIN => [{ "id" => STR, "op" => STR }, { "args" => MAP }],
      Wire::PUSH_BATCH => [{ "id" => STR, "queue" => STR, "ids" => STRLIST },
                           { "trace" => STR, "parent" => STR, "headers" => MAP, "at_ms" => INT }],
      Wire::JOB_BATCH => [{ "id" => STR, "queue" => STR, "lease_ms" => INT, "ids" => STRLIST }, { "headers" => MAP }],
      Wire::PUSH_PACKED => [{ "id" => STR, "queue" => STR, "ids" => STRLIST, "sizes" => INTLIST },
                            { "trace" => STR, "parent" => STR, "headers" => MAP, "at_ms" => INT }],
      Wire::JOB_PACKED => [{ "id" => STR, "queue" => STR, "lease_ms" => INT, "ids" => STRLIST, "sizes" => INTLIST },
                           { "headers" => MAP }]
    }.freeze

    # Fields that name things or identify messages: 1 to 255 bytes.
    BOUNDED = %w[id re queue service topic trace parent].freeze

    COMMAND_FRAMES = Wire::COMMAND_NAMES.keys.to_h do |code|
      [code, [0x5A, 0x4D, Wire::VERSION, code].pack("C4").freeze]
    end.freeze

    module_function

    def command_frame(command)
      COMMAND_FRAMES.fetch(command)
    end

    def pack_header(header)
      MessagePack.pack(header)
    end

    # Frames of a control command: the command frame and one header.
    def pack_control(command, header)
      [command_frame(command), pack_header(header)]
    end

    # Frames of an item command carrying one or more [header, body] pairs.
    def pack_items(command, items)
      frames = [command_frame(command)]
      items.each do |header, body|
        frames << pack_header(header) << body
      end
      frames
    end

    def pack_item(command, header, body)
      [command_frame(command), pack_header(header), body]
    end

    # Frames of a batch command: one header whose "ids" name the bodies, in order.
    def pack_batch(command, header, bodies)
      [command_frame(command), pack_header(header), *bodies]
    end

    # Frames of a packed command: the header plus "sizes" (added last), and the
    # bodies back to back in one frame. Each body as bytes, so that bodies of
    # different encodings join without Encoding::CompatibilityError.
    def pack_packed(command, header, bodies)
      sized = header.merge("sizes" => bodies.map(&:bytesize))
      [command_frame(command), pack_header(sized), bodies.map(&:b).join.force_encoding(Encoding::BINARY)]
    end

    # Decode a broker-endpoint message (routing id removed), checking in the
    # order of SPEC.md section 10. Raises ProtocolError with the error code.
    def unpack(frames, max_body: nil)
      if frames.length < 2
        raise ProtocolError.new(Wire::E_BAD_FRAME, "message has #{frames.length} frame(s); need a command frame and a header")
      end

      head = frames[0]
      unless head.bytesize == 4 && head.getbyte(0) == 0x5A && head.getbyte(1) == 0x4D
        raise ProtocolError.new(Wire::E_BAD_FRAME, "frame 0 is not a ZM command frame")
      end
      if head.getbyte(2) != Wire::VERSION
        raise ProtocolError.new(Wire::E_BAD_VERSION, "protocol version #{head.getbyte(2)} not supported")
      end

      command = head.getbyte(3)
      name = Wire::COMMAND_NAMES[command]
      raise ProtocolError.new(Wire::E_UNKNOWN_COMMAND, format("unknown command 0x%02x", command)) unless name

      if Wire::ITEM_COMMANDS.include?(command)
        unpack_items(command, name, frames, max_body)
      elsif Wire::BATCH_COMMANDS.include?(command)
        unpack_batch(command, name, frames, max_body)
      elsif Wire::PACKED_COMMANDS.include?(command)
        unpack_packed(command, name, frames, max_body)
      else
        if frames.length != 2
          raise ProtocolError.new(Wire::E_BAD_FRAME, "#{name} takes exactly one header frame, got #{frames.length - 1}")
        end

        Envelope.new(command, unpack_header(frames[1], command), [])
      end
    end

    def unpack_items(command, name, frames, max_body)
      count = frames.length - 1
      raise ProtocolError.new(Wire::E_BAD_FRAME, "#{name} needs (header, body) pairs, got #{count} frames") if count.odd?
      if count / 2 > Wire::MAX_ITEMS_PER_MESSAGE
        raise ProtocolError.new(Wire::E_BAD_FRAME, "more than #{Wire::MAX_ITEMS_PER_MESSAGE} items in one message")
      end

      items = []
      1.step(count - 1, 2) do |i|
        body = frames[i + 1]
        if max_body && body.bytesize > max_body
          raise ProtocolError.new(Wire::E_TOO_LARGE, "body of #{body.bytesize} bytes exceeds the limit of #{max_body}")
        end

        items << [unpack_header(frames[i], command), body]
      end
      Envelope.new(command, items[0][0], items)
    end
    private_class_method :unpack_items

    # Checks in the order of protocol/codec.py: frame counts, the header, ids
    # against bodies (bad_frame), repeated ids (bad_header), body sizes.
    def unpack_batch(command, name, frames, max_body)
      bodies = frames[2..]
      raise ProtocolError.new(Wire::E_BAD_FRAME, "#{name} needs a header and at least one body frame") if bodies.empty?
      if bodies.length > Wire::MAX_ITEMS_PER_MESSAGE
        raise ProtocolError.new(Wire::E_BAD_FRAME, "more than #{Wire::MAX_ITEMS_PER_MESSAGE} bodies in one message")
      end

      header = unpack_header(frames[1], command)
      ids = header["ids"]
      if ids.length != bodies.length
        raise ProtocolError.new(Wire::E_BAD_FRAME, "#{name} names #{ids.length} id(s) for #{bodies.length} body frame(s)")
      end
      raise ProtocolError.new(Wire::E_BAD_HEADER, "#{name} repeats a job id") if ids.uniq.length != ids.length

      if max_body
        bodies.each do |body|
          if body.bytesize > max_body
            raise ProtocolError.new(Wire::E_TOO_LARGE, "body of #{body.bytesize} bytes exceeds the limit of #{max_body}")
          end
        end
      end
      Envelope.new(command, header, bodies)
    end
    private_class_method :unpack_batch

    # SPEC.md section 3.5, checked in the order of section 10: one packed frame
    # (bad_frame), the header, ids and sizes (bad_header), the packed frame's
    # length (too_large), the sizes against it (bad_frame), then each body.
    def unpack_packed(command, name, frames, max_body)
      if frames.length != 3
        raise ProtocolError.new(Wire::E_BAD_FRAME, "#{name} takes a header and exactly one body frame, " \
                                                   "got #{frames.length - 1} frame(s)")
      end

      header = unpack_header(frames[1], command)
      sizes = header["sizes"]
      check_packed_ids(name, header["ids"], sizes)
      blob = frames[2]
      if blob.bytesize > Wire::MAX_PACKED_BYTES
        raise ProtocolError.new(Wire::E_TOO_LARGE, "#{name} body frame of #{blob.bytesize} bytes exceeds #{Wire::MAX_PACKED_BYTES}")
      end
      if sizes.sum != blob.bytesize
        raise ProtocolError.new(Wire::E_BAD_FRAME, "#{name} sizes add up to #{sizes.sum} bytes, the body frame has #{blob.bytesize}")
      end
      if max_body && sizes.max > max_body
        raise ProtocolError.new(Wire::E_TOO_LARGE, "body of #{sizes.max} bytes exceeds the limit of #{max_body}")
      end

      Envelope.new(command, header, cut(blob, sizes))
    end
    private_class_method :unpack_packed

    # The schema allows empty lists; a packed message needs 1 to 1000 jobs,
    # one size per id, and (as in a batch) no id twice.
    def check_packed_ids(name, ids, sizes)
      unless ids.length.between?(1, Wire::MAX_ITEMS_PER_MESSAGE)
        raise ProtocolError.new(Wire::E_BAD_HEADER, "#{name} needs 1 to #{Wire::MAX_ITEMS_PER_MESSAGE} ids, got #{ids.length}")
      end
      if sizes.length != ids.length
        raise ProtocolError.new(Wire::E_BAD_HEADER, "#{name} names #{ids.length} id(s) and #{sizes.length} size(s)")
      end
      raise ProtocolError.new(Wire::E_BAD_HEADER, "#{name} repeats a job id") if ids.uniq.length != ids.length
    end
    private_class_method :check_packed_ids

    # The bodies of a packed frame whose length the sizes are known to add up to.
    def cut(blob, sizes)
      offset = 0
      sizes.map do |size|
        body = blob.byteslice(offset, size)
        offset += size
        body
      end
    end
    private_class_method :cut

    # Decode one header frame and check it against the command's schema.
    def unpack_header(raw, command)
      if raw.bytesize > Wire::MAX_HEADER_BYTES
        raise ProtocolError.new(Wire::E_BAD_HEADER, "header of #{raw.bytesize} bytes exceeds #{Wire::MAX_HEADER_BYTES}")
      end

      header = MsgpackReader.read(raw)
      raise ProtocolError.new(Wire::E_BAD_HEADER, "header is a #{msgpack_type(header)}, not a map") unless header.is_a?(Hash)

      check_header(command, header)
      header
    end

    def check_header(command, header)
      required, optional = SCHEMAS.fetch(command)
      required.each do |field, kind|
        value = header[field]
        if value.nil?
          raise ProtocolError.new(Wire::E_BAD_HEADER, "#{Wire::COMMAND_NAMES[command]} header lacks '#{field}'")
        end

        check_field(field, kind, value)
      end
      optional.each do |field, kind|
        value = header[field]
        check_field(field, kind, value) unless value.nil?
      end
    end

    def check_field(field, kind, value)
      ok = case kind
           when STR
             if str?(value) && BOUNDED.include?(field) && !name_size?(value)
               raise ProtocolError.new(Wire::E_BAD_HEADER, "'#{field}' must be 1..#{Wire::MAX_NAME_BYTES} bytes")
             end

             str?(value)
           when INT then int?(value)
           when BOOL then [true, false].include?(value)
           when MAP then value.is_a?(Hash)
           when STRLIST then value.is_a?(Array) && value.all? { |v| str?(v) && name_size?(v) }
           when INTLIST then value.is_a?(Array) && value.all? { |v| int?(v) }
           end
      raise ProtocolError.new(Wire::E_BAD_HEADER, "'#{field}' must be #{kind}, got #{msgpack_type(value)}") unless ok
    end

    # true and false are not Integers in Ruby, so a bool is never an int here.
    def int?(value)
      value.is_a?(Integer) && value.between?(0, MAX_INT)
    end

    def str?(value)
      value.is_a?(String) && value.encoding == Encoding::UTF_8
    end

    def name_size?(value)
      value.bytesize.between?(1, Wire::MAX_NAME_BYTES)
    end

    def msgpack_type(value)
      case value
      when String then value.encoding == Encoding::UTF_8 ? "str" : "bin"
      when Hash then "map"
      when Array then "array"
      when Integer then "int"
      when Float then "float"
      when true, false then "bool"
      when nil then "nil"
      else "ext"
      end
    end

    # Frames on the PUB endpoint: the topic first, so a plain SUB can filter.
    def pack_event(topic, header, body)
      [topic.b, pack_header(header), body]
    end

    # Decode a message received on a SUB socket (SPEC.md section 7): [topic, header, body].
    def unpack_event(frames)
      raise ProtocolError.new(Wire::E_BAD_FRAME, "event has #{frames.length} frame(s); need topic, header, body") if frames.length != 3

      topic = frames[0].dup.force_encoding(Encoding::UTF_8)
      raise ProtocolError.new(Wire::E_BAD_FRAME, "topic is not UTF-8") unless topic.valid_encoding?

      header = unpack_header(frames[1], Wire::PUBLISH)
      # Optional in a publisher's PUBLISH, but always on an event: without them
      # a subscriber could not see a gap or a broker restart.
      %w[seq epoch].each do |field|
        raise ProtocolError.new(Wire::E_BAD_HEADER, "event header lacks '#{field}'") if header[field].nil?
      end
      raise ProtocolError.new(Wire::E_BAD_HEADER, "topic frame and header topic differ") if header["topic"] != topic

      [topic, header, frames[2]]
    end
  end
end
