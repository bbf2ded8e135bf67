# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "msgpack"
require_relative "errors"
require_relative "wire"

module Zeromesh
  # A strict msgpack decoder for header frames (SPEC.md section 4).
  #
  # The msgpack gem would accept what ZMSH/1 refuses: a repeated map key
  # silently keeps the last value (another language may keep the first),
  # bin and int keys pass, and a str holding invalid UTF-8 is handed over
  # unchecked. So headers are read here, byte by byte, and any such fault
  # raises ProtocolError(bad_header). Values come back as: str -> UTF-8
  # String, bin -> binary (ASCII-8BIT) String, ext -> MessagePack::ExtensionValue,
  # which the msgpack gem packs back to the same bytes.
  class MsgpackReader
    # msgpack values may nest at most this many levels, the header map
    # included (SPEC.md section 4); deeper is bad_header.
    MAX_LEVELS = 1024

    def self.read(bytes)
      new(bytes).read_whole
    end

    def initialize(bytes)
      @buf = bytes.b
      @pos = 0
    end

    def read_whole
      value = read_value(0)
      fail!("#{@buf.bytesize - @pos} byte(s) after the msgpack value") if @pos != @buf.bytesize
      value
    end

    private

    def fail!(why)
      raise ProtocolError.new(Wire::E_BAD_HEADER, "header is not valid: #{why}")
    end

    def take(count)
      fail!("truncated") if count > @buf.bytesize - @pos
      chunk = @buf.byteslice(@pos, count)
      @pos += count
      chunk
    end

    def byte
      fail!("truncated") if @pos >= @buf.bytesize
      b = @buf.getbyte(@pos)
      @pos += 1
      b
    end

    def uint(size, directive)
      take(size).unpack1(directive)
    end

    def read_value(depth)
      b = byte
      case b
      when 0x00..0x7f then b
      when 0x80..0x8f then read_map(b & 0x0f, depth)
      when 0x90..0x9f then read_array(b & 0x0f, depth)
      when 0xa0..0xbf then read_str(b & 0x1f)
      when 0xc0 then nil
      when 0xc2 then false
      when 0xc3 then true
      when 0xc4 then read_bin(uint(1, "C"))
      when 0xc5 then read_bin(uint(2, "n"))
      when 0xc6 then read_bin(uint(4, "N"))
      when 0xc7 then read_ext(uint(1, "C"))
      when 0xc8 then read_ext(uint(2, "n"))
      when 0xc9 then read_ext(uint(4, "N"))
      when 0xca then take(4).unpack1("g")
      when 0xcb then take(8).unpack1("G")
      when 0xcc then uint(1, "C")
      when 0xcd then uint(2, "n")
      when 0xce then uint(4, "N")
      when 0xcf then uint(8, "Q>")
      when 0xd0 then take(1).unpack1("c")
      when 0xd1 then take(2).unpack1("s>")
      when 0xd2 then take(4).unpack1("l>")
      when 0xd3 then take(8).unpack1("q>")
      when 0xd4 then read_ext(1)
      when 0xd5 then read_ext(2)
      when 0xd6 then read_ext(4)
      when 0xd7 then read_ext(8)
      when 0xd8 then read_ext(16)
      when 0xd9 then read_str(uint(1, "C"))
      when 0xda then read_str(uint(2, "n"))
      when 0xdb then read_str(uint(4, "N"))
      when 0xdc then read_array(uint(2, "n"), depth)
      when 0xdd then read_array(uint(4, "N"), depth)
      when 0xde then read_map(uint(2, "n"), depth)
      when 0xdf then read_map(uint(4, "N"), depth)
      when 0xe0..0xff then b - 256
      else fail!(format("byte 0x%02x is not used by msgpack", b))
      end
    end

    def read_str(size)
      str = take(size).force_encoding(Encoding::UTF_8)
      fail!("a str is not valid UTF-8") unless str.valid_encoding?
      str
    end

    def read_bin(size)
      take(size)
    end

    def read_ext(size)
      type = take(1).unpack1("c")
      MessagePack::ExtensionValue.new(type, take(size))
    end

    # A container at depth d (the header map at 0) is level d + 1; scalars are no level.
    def enter(depth)
      fail!("nested deeper than #{MAX_LEVELS} levels") if depth >= MAX_LEVELS
    end

    def read_array(count, depth)
      enter(depth)
      # No preallocation: a count larger than the bytes left fails on the way.
      list = []
      count.times { list << read_value(depth + 1) }
      list
    end

    def read_map(count, depth)
      enter(depth)
      map = {}
      count.times do
        key = read_value(depth + 1)
        # read_str gives UTF-8 Strings, read_bin binary ones: the encoding tells str from bin.
        unless key.is_a?(String) && key.encoding == Encoding::UTF_8
          fail!("map key #{key.inspect} is not a msgpack str")
        end
        fail!("map key #{key.inspect} is repeated") if map.key?(key)
        map[key] = read_value(depth + 1)
      end
      map
    end
  end
end
