# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  # Wire constants of ZMSH/1 (protocol/SPEC.md), the one place they live.
  # Nothing outside Codec builds frames from these by hand.
  module Wire
    # First two bytes of every command frame (frame 0 on the broker endpoint).
    SIGNATURE = "ZM".b.freeze
    # Protocol version carried in byte 2 of the command frame.
    VERSION = 1

    # Commands: byte 3 of the command frame.
    PUSH = 0x01
    CONFIRM = 0x02
    JOB = 0x03
    ACK = 0x04
    NACK = 0x05
    REQUEST = 0x06
    REPLY = 0x07
    ERROR = 0x08
    PUBLISH = 0x09
    READY = 0x0A
    CREDIT = 0x0B
    HEARTBEAT = 0x0C
    DISCONNECT = 0x0D
    EXTEND = 0x0E
    CANCEL = 0x0F
    ADMIN = 0x10
    PUSH_BATCH = 0x11
    JOB_BATCH = 0x12
    PUSH_PACKED = 0x13
    JOB_PACKED = 0x14

    COMMAND_NAMES = {
      PUSH => "PUSH", CONFIRM => "CONFIRM", JOB => "JOB", ACK => "ACK", NACK => "NACK",
      REQUEST => "REQUEST", REPLY => "REPLY", ERROR => "ERROR", PUBLISH => "PUBLISH",
      READY => "READY", CREDIT => "CREDIT", HEARTBEAT => "HEARTBEAT", DISCONNECT => "DISCONNECT",
      EXTEND => "EXTEND", CANCEL => "CANCEL", ADMIN => "ADMIN",
      PUSH_BATCH => "PUSH_BATCH", JOB_BATCH => "JOB_BATCH",
      PUSH_PACKED => "PUSH_PACKED", JOB_PACKED => "JOB_PACKED"
    }.freeze
    COMMANDS_BY_NAME = COMMAND_NAMES.invert.freeze

    # Commands whose frames after the command frame are (header, body) pairs.
    ITEM_COMMANDS = [PUSH, JOB, REQUEST, REPLY, PUBLISH].freeze
    # Commands with one header for many jobs: the header's ids name the body
    # frames that follow, in order (SPEC.md section 3.4).
    BATCH_COMMANDS = [PUSH_BATCH, JOB_BATCH].freeze
    # Batch commands with every body in one frame, cut by the header's sizes
    # (SPEC.md section 3.5).
    PACKED_COMMANDS = [PUSH_PACKED, JOB_PACKED].freeze

    # Error codes carried in ERROR.code. Stable strings: clients match on them.
    E_BAD_FRAME = "bad_frame"
    E_BAD_VERSION = "bad_version"
    E_UNKNOWN_COMMAND = "unknown_command"
    E_BAD_HEADER = "bad_header"
    E_TOO_LARGE = "too_large"
    E_NO_RESPONDERS = "no_responders"
    E_TIMEOUT = "timeout"
    E_QUEUE_FULL = "queue_full"
    E_WORKER_LOST = "worker_lost"
    E_REMOTE = "remote"
    E_CANCELLED = "cancelled"
    E_SHUTTING_DOWN = "shutting_down"
    E_NOT_FOUND = "not_found"
    E_UNKNOWN_OP = "unknown_op"
    E_UNKNOWN_PEER = "unknown_peer"
    E_UNAVAILABLE = "unavailable"
    E_FORBIDDEN = "forbidden"

    ERROR_CODES = [
      E_BAD_FRAME, E_BAD_VERSION, E_UNKNOWN_COMMAND, E_BAD_HEADER, E_TOO_LARGE,
      E_NO_RESPONDERS, E_TIMEOUT, E_QUEUE_FULL, E_WORKER_LOST, E_REMOTE,
      E_CANCELLED, E_SHUTTING_DOWN, E_NOT_FOUND, E_UNKNOWN_OP, E_UNKNOWN_PEER, E_UNAVAILABLE,
      E_FORBIDDEN
    ].freeze

    # A header frame larger than this is refused (bad_header).
    MAX_HEADER_BYTES = 65_536
    # At most this many (header, body) pairs in one item message, or bodies in one batch.
    MAX_ITEMS_PER_MESSAGE = 1000
    # Names (queue, service, topic), ids, re and trace are 1 to this many UTF-8 bytes.
    MAX_NAME_BYTES = 255
    # Senders put at most this many ids in one ACK, CONFIRM or EXTEND.
    MAX_IDS_PER_MESSAGE = 200
    # The packed frame of a packed command is at most this long (too_large): 1 MiB,
    # so that no receiver needs to accept more.
    MAX_PACKED_BYTES = 1 << 20
  end
end
