# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "test_helper"

# Every conformance vector through the codec: valid ones decode to "decoded"
# and (unless "canonical": false) re-encode to frames_hex byte for byte;
# invalid ones are refused with the vector's error code.
class CodecVectorsTest < Minitest::Test
  FILES = TestSupport.vector_files

  def test_there_are_vectors_of_every_kind
    assert_operator FILES.size, :>, 100
    names = FILES.map { |f| f.delete_prefix("#{TestSupport::VECTORS}/") }
    %w[valid/ invalid/ events/valid/ events/invalid/].each do |prefix|
      assert names.any? { |n| n.start_with?(prefix) }, "no vectors under #{prefix}"
    end
  end

  def test_every_command_has_valid_vectors
    Zeromesh::Wire::COMMAND_NAMES.each_value do |name|
      dir = "#{TestSupport::VECTORS}/valid/#{name.downcase}/"
      assert FILES.any? { |f| f.start_with?(dir) }, "no vectors for #{name}"
    end
  end

  FILES.each do |path|
    rel = path.delete_prefix("#{TestSupport::VECTORS}/")
    vector = JSON.parse(File.read(path, encoding: "UTF-8"))
    slug = rel.sub(/\.json\z/, "").gsub(/[^a-z0-9]+/i, "_")

    if vector.key?("decoded")
      define_method("test_decodes_#{slug}") do
        assert_equal vector["decoded"], Zeromesh::Conformance.decode(vector), rel
      end
      if vector.fetch("canonical", true)
        define_method("test_encodes_#{slug}") do
          assert_equal vector["frames_hex"], Zeromesh::Conformance.encode(vector), rel
        end
      end
    else
      define_method("test_refuses_#{slug}") do
        error = assert_raises(Zeromesh::ProtocolError, rel) { Zeromesh::Conformance.decode(vector) }
        assert_equal vector["error"], error.code, "#{rel}: #{error.message}"
      end
    end
  end
end

class CodecUnitTest < Minitest::Test
  Codec = Zeromesh::Codec
  Wire = Zeromesh::Wire

  def test_round_trip_keeps_str_and_bin_apart
    header = { "id" => "j-1", "queue" => "thumbs", "headers" => { "raw" => "\x00\xff".b, "text" => "é" } }
    env = Codec.unpack(Codec.pack_item(Wire::PUSH, header, "body".b))
    assert_equal "PUSH", env.name
    assert_equal header, env.header
    assert_equal Encoding::BINARY, env.header["headers"]["raw"].encoding
    assert_equal Encoding::UTF_8, env.header["headers"]["text"].encoding
    assert_equal [[header, "body"]], env.items
  end

  def test_control_command_has_no_items
    env = Codec.unpack(Codec.pack_control(Wire::HEARTBEAT, { "id" => "h-1", "epoch" => "e" }))
    assert_equal Wire::HEARTBEAT, env.command
    assert_empty env.items
    refute env.item?
  end

  def test_batch_bodies_are_the_items_and_the_body_limit_applies_to_each
    header = { "id" => "m", "queue" => "q", "ids" => %w[a b] }
    frames = Codec.pack_batch(Wire::PUSH_BATCH, header, ["x".b, "yyyy".b])
    env = Codec.unpack(frames, max_body: 4)
    assert env.batch?
    refute env.item?
    assert_equal ["x", "yyyy"], env.items
    assert_equal "too_large", assert_raises(Zeromesh::ProtocolError) { Codec.unpack(frames, max_body: 3) }.code
  end

  def test_command_codes_run_without_gaps_and_the_next_is_unknown
    assert_equal (0x01..0x14).to_a, Wire::COMMAND_NAMES.keys.sort
    assert_equal [Wire::PUSH_PACKED, Wire::JOB_PACKED], [Wire::COMMANDS_BY_NAME["PUSH_PACKED"], Wire::COMMANDS_BY_NAME["JOB_PACKED"]]
    assert_equal "5a4d0113", Codec.command_frame(Wire::PUSH_PACKED).unpack1("H*")
    assert_empty Wire::PACKED_COMMANDS & (Wire::ITEM_COMMANDS + Wire::BATCH_COMMANDS)
    frames = [["5a4d0115"].pack("H*"), Codec.pack_header({ "id" => "m" })]
    assert_equal "unknown_command", assert_raises(Zeromesh::ProtocolError) { Codec.unpack(frames) }.code
  end

  def test_packed_schemas_are_the_batch_schemas_plus_sizes
    [[Wire::PUSH_PACKED, Wire::PUSH_BATCH], [Wire::JOB_PACKED, Wire::JOB_BATCH]].each do |packed, batch|
      required, optional = Codec::SCHEMAS.fetch(packed)
      assert_equal Codec::SCHEMAS.fetch(batch)[0].merge("sizes" => Codec::INTLIST), required
      assert_equal Codec::SCHEMAS.fetch(batch)[1], optional
    end
    assert_equal Codec::BOOL, Codec::SCHEMAS.fetch(Wire::READY)[1]["packed"]
  end

  def test_packed_round_trip_cuts_the_bodies_by_sizes
    bodies = ["".b, (0..255).to_a.pack("C*"), "héllo", "x".b]
    [Wire::PUSH_PACKED, Wire::JOB_PACKED].each do |command|
      header = { "id" => "m", "queue" => "q", "ids" => %w[a b c d] }
      header["lease_ms"] = 1000 if command == Wire::JOB_PACKED
      frames = Codec.pack_packed(command, header, bodies)
      assert_equal 3, frames.size
      assert_equal bodies.map(&:b).join, frames[2]
      env = Codec.unpack(frames, max_body: 256)
      assert env.packed?
      refute env.batch?
      refute env.item?
      assert_equal header.merge("sizes" => [0, 256, 6, 1]), env.header
      assert_equal "sizes", env.header.keys.last, "pack_packed adds sizes last"
      assert_equal bodies.map(&:b), env.items
    end
  end

  def test_packed_body_limit_applies_to_each_body
    frames = Codec.pack_packed(Wire::PUSH_PACKED, { "id" => "m", "queue" => "q", "ids" => %w[a b] }, ["abcd".b, "efgh".b])
    assert_equal %w[abcd efgh], Codec.unpack(frames, max_body: 4).items
    assert_equal "too_large", packed_error(frames, max_body: 3)
  end

  def test_packed_frame_is_at_most_1_mib
    ids = Array.new(16) { |i| "j#{i}" }
    at_limit = Array.new(16) { "x".b * (Wire::MAX_PACKED_BYTES / 16) }
    header = { "id" => "m", "queue" => "q", "ids" => ids }
    assert_equal 16, Codec.unpack(Codec.pack_packed(Wire::PUSH_PACKED, header, at_limit)).items.size
    over = at_limit[0..-2] + ["#{at_limit[-1]}x".b]
    assert_equal "too_large", packed_error(Codec.pack_packed(Wire::PUSH_PACKED, header, over))
    # The frame's length is checked before the sizes are added up (SPEC.md section 10).
    frames = Codec.pack_packed(Wire::PUSH_PACKED, header, over)
    frames[1] = Codec.pack_header(header.merge("sizes" => [1] * 16))
    assert_equal "too_large", packed_error(frames)
  end

  def test_packed_checks_and_their_codes
    header = { "id" => "m", "queue" => "q", "ids" => %w[a b], "sizes" => [1, 1] }
    assert_equal "bad_frame", packed_error([Codec.command_frame(Wire::PUSH_PACKED), Codec.pack_header(header)])
    assert_equal "bad_frame", packed_error(packed_frames(header, "x", "y"))
    assert_equal "bad_frame", packed_error(packed_frames(header, "xyz"))
    assert_equal "bad_frame", packed_error(packed_frames(header, "x"))
    assert_equal "bad_header", packed_error(packed_frames(header.merge("ids" => [], "sizes" => []), ""))
    assert_equal "bad_header", packed_error(packed_frames(header.merge("sizes" => [2]), "xy"))
    assert_equal "bad_header", packed_error(packed_frames(header.merge("ids" => %w[a a]), "xy"))
    many = Array.new(1001) { |i| i.to_s(16) }
    assert_equal "bad_header", packed_error(packed_frames(header.merge("ids" => many, "sizes" => [0] * 1001), ""))
    assert_equal "bad_header", packed_error(packed_frames(header.reject { |k, _| k == "sizes" }, "xy"))
    # JOB_PACKED without lease_ms: the PUSH_PACKED header is not enough.
    assert_equal "bad_header", packed_error(packed_frames(header, "xy", command: Wire::JOB_PACKED))
  end

  def test_intlist_takes_ints_up_to_2_64_minus_1_and_nothing_else
    header = { "id" => "m", "queue" => "q", "ids" => %w[a] }
    # Well typed, so the header passes and only the sizes' sum is wrong.
    assert_equal "bad_frame", packed_error(packed_frames(header.merge("sizes" => [(2**64) - 1]), "x"))
    [[-1], [true], [1.0], ["1"], [nil], 1, { "a" => 1 }].each do |sizes|
      assert_equal "bad_header", packed_error(packed_frames(header.merge("sizes" => sizes), "x")), sizes.inspect
    end
    assert_raises(Zeromesh::ProtocolError) { Codec.check_field("sizes", Codec::INTLIST, [2**64]) }
    Codec.check_field("sizes", Codec::INTLIST, [])
  end

  def test_ready_packed_is_a_bool
    ready = { "id" => "r", "names" => ["q"], "credit" => 1, "packed" => true }
    assert_equal true, Codec.unpack(Codec.pack_control(Wire::READY, ready)).header["packed"]
    frames = Codec.pack_control(Wire::READY, ready.merge("packed" => 1))
    assert_equal "bad_header", assert_raises(Zeromesh::ProtocolError) { Codec.unpack(frames) }.code
  end

  def test_optional_nil_is_absent_but_required_nil_is_missing
    frames = Codec.pack_item(Wire::PUSH, { "id" => "j", "queue" => "q", "trace" => nil }, "")
    assert_nil Codec.unpack(frames).header["trace"]
    frames = Codec.pack_item(Wire::PUSH, { "id" => "j", "queue" => nil }, "")
    assert_equal "bad_header", assert_raises(Zeromesh::ProtocolError) { Codec.unpack(frames) }.code
  end

  def test_reader_refuses_lengths_beyond_the_frame
    # str32 claiming 4 GiB inside a 10-byte header: truncated, not an allocation.
    raw = "\x81\xa2id\xdb\xff\xff\xff\xff".b
    error = assert_raises(Zeromesh::ProtocolError) { Codec.unpack([Codec.command_frame(Wire::HEARTBEAT), raw]) }
    assert_equal "bad_header", error.code
    assert_match(/truncated/, error.message)
  end

  def test_reader_refuses_absurd_nesting_without_exhausting_the_stack
    raw = ("\x91".b * 50_000) + "\xc0".b
    error = assert_raises(Zeromesh::ProtocolError) { Zeromesh::MsgpackReader.read(raw) }
    assert_match(/nested/, error.message)
  end

  def test_headers_nest_up_to_1024_levels_the_header_map_included
    header = ->(levels) { "\x82\xa2id\xa1h\xa1x".b + ("\x91".b * (levels - 1)) + "\xc0".b }
    frame = Codec.command_frame(Wire::HEARTBEAT)
    assert_equal "h", Codec.unpack([frame, header.call(1024)]).header["id"]
    assert_equal "bad_header", assert_raises(Zeromesh::ProtocolError) { Codec.unpack([frame, header.call(1025)]) }.code
  end

  def test_reader_decodes_every_scalar_form
    assert_equal(-1, Zeromesh::MsgpackReader.read("\xff".b))
    assert_equal(-129, Zeromesh::MsgpackReader.read("\xd1\xff\x7f".b))
    assert_in_delta(1.5, Zeromesh::MsgpackReader.read("\xca\x3f\xc0\x00\x00".b))
    assert_equal 2**64 - 1, Zeromesh::MsgpackReader.read("\xcf\xff\xff\xff\xff\xff\xff\xff\xff".b)
    ext = Zeromesh::MsgpackReader.read("\xd6\xff\x00\x00\x00\x01".b)
    assert_equal [-1, "\x00\x00\x00\x01".b], [ext.type, ext.payload]
  end

  # A packed message with this exact header (sizes included) and body frames.
  def packed_frames(header, *blobs, command: Wire::PUSH_PACKED)
    [Codec.command_frame(command), Codec.pack_header(header), *blobs.map(&:b)]
  end

  def packed_error(frames, max_body: nil)
    assert_raises(Zeromesh::ProtocolError) { Codec.unpack(frames, max_body: max_body) }.code
  end

  def test_ids_are_prefix_and_hex_counter
    ids = Zeromesh::IdGenerator.new("abc")
    assert_equal %w[abc-1 abc-2], [ids.call, ids.call]
    assert_match(/\A[0-9a-f]{16}-1\z/, Zeromesh::IdGenerator.new.call)
  end

  def test_names_are_checked_before_sending
    assert_equal "vidéos", Zeromesh::Messages.name("vidéos")
    assert_equal Encoding::UTF_8, Zeromesh::Messages.name("host".b).encoding
    assert_raises(ArgumentError) { Zeromesh::Messages.name("") }
    assert_raises(ArgumentError) { Zeromesh::Messages.name("q" * 256) }
    assert_raises(ArgumentError) { Zeromesh::Messages.name("\xff".b) }
    assert_raises(TypeError) { Zeromesh::Messages.name(42) }
  end

  def test_headers_get_string_keys
    assert_equal({ "a" => { "b" => [1, "x"] } }, Zeromesh::Messages.headers({ a: { b: [1, :x.to_s] } }))
    assert_nil Zeromesh::Messages.headers({})
    assert_raises(ArgumentError) { Zeromesh::Messages.headers({ 1 => "x" }) }
  end

  def test_error_headers_map_to_exceptions
    assert_kind_of Zeromesh::TimeoutError, Zeromesh.error_from_header({ "code" => "timeout", "message" => "" })
    assert_kind_of Zeromesh::NoRespondersError, Zeromesh.error_from_header({ "code" => "no_responders", "message" => "m" })
    assert_kind_of Zeromesh::QueueFullError, Zeromesh.error_from_header({ "code" => "queue_full", "message" => "m" })
    error = Zeromesh.error_from_header({ "code" => "remote", "message" => "boom", "name" => "KeyError", "traceback" => "t" })
    assert_equal %w[remote KeyError boom t], [error.code, error.name, error.message, error.remote_traceback]
    assert_equal "remote: KeyError: boom", error.to_s
    assert_equal "some_future_code", Zeromesh.error_from_header({ "code" => "some_future_code", "message" => "" }).code
  end
end
