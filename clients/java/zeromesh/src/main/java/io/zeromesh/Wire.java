// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.Map;
import java.util.Set;

/**
 * Wire constants of ZMSH/1, the one place they live (protocol/SPEC.md sections 3, 6 and 9).
 * Nothing outside {@link Codec} builds frames from them.
 */
final class Wire {
    private Wire() {}

    /** First two bytes of every command frame: "ZM". */
    static final byte SIGNATURE_0 = 0x5A;
    static final byte SIGNATURE_1 = 0x4D;
    /** Protocol version, byte 2 of the command frame. */
    static final int VERSION = 1;

    // Commands: byte 3 of the command frame.
    static final int PUSH = 0x01;
    static final int CONFIRM = 0x02;
    static final int JOB = 0x03;
    static final int ACK = 0x04;
    static final int NACK = 0x05;
    static final int REQUEST = 0x06;
    static final int REPLY = 0x07;
    static final int ERROR = 0x08;
    static final int PUBLISH = 0x09;
    static final int READY = 0x0A;
    static final int CREDIT = 0x0B;
    static final int HEARTBEAT = 0x0C;
    static final int DISCONNECT = 0x0D;
    static final int EXTEND = 0x0E;
    static final int CANCEL = 0x0F;
    static final int ADMIN = 0x10;
    static final int PUSH_BATCH = 0x11;
    static final int JOB_BATCH = 0x12;
    static final int PUSH_PACKED = 0x13;
    static final int JOB_PACKED = 0x14;

    /** Command code to its name, as SPEC.md and the vectors spell it. */
    static final Map<Integer, String> COMMAND_NAMES = Map.ofEntries(
            Map.entry(PUSH, "PUSH"), Map.entry(CONFIRM, "CONFIRM"), Map.entry(JOB, "JOB"),
            Map.entry(ACK, "ACK"), Map.entry(NACK, "NACK"), Map.entry(REQUEST, "REQUEST"),
            Map.entry(REPLY, "REPLY"), Map.entry(ERROR, "ERROR"), Map.entry(PUBLISH, "PUBLISH"),
            Map.entry(READY, "READY"), Map.entry(CREDIT, "CREDIT"), Map.entry(HEARTBEAT, "HEARTBEAT"),
            Map.entry(DISCONNECT, "DISCONNECT"), Map.entry(EXTEND, "EXTEND"), Map.entry(CANCEL, "CANCEL"),
            Map.entry(ADMIN, "ADMIN"), Map.entry(PUSH_BATCH, "PUSH_BATCH"), Map.entry(JOB_BATCH, "JOB_BATCH"),
            Map.entry(PUSH_PACKED, "PUSH_PACKED"), Map.entry(JOB_PACKED, "JOB_PACKED"));

    /** Commands whose frames after frame 0 are (header, body) pairs. */
    static final Set<Integer> ITEM_COMMANDS = Set.of(PUSH, JOB, REQUEST, REPLY, PUBLISH);

    /** Commands with one header for many jobs: its "ids" name the body frames that follow, in order (SPEC.md 3.4). */
    static final Set<Integer> BATCH_COMMANDS = Set.of(PUSH_BATCH, JOB_BATCH);

    /** Batch commands with every body in one frame, cut by the header's "sizes" (SPEC.md 3.5). */
    static final Set<Integer> PACKED_COMMANDS = Set.of(PUSH_PACKED, JOB_PACKED);

    // Error codes (SPEC.md section 9). Stable strings: clients match on them.
    static final String E_BAD_FRAME = "bad_frame";
    static final String E_BAD_VERSION = "bad_version";
    static final String E_UNKNOWN_COMMAND = "unknown_command";
    static final String E_BAD_HEADER = "bad_header";
    static final String E_TOO_LARGE = "too_large";
    static final String E_NO_RESPONDERS = "no_responders";
    static final String E_TIMEOUT = "timeout";
    static final String E_QUEUE_FULL = "queue_full";
    static final String E_WORKER_LOST = "worker_lost";
    static final String E_REMOTE = "remote";
    static final String E_CANCELLED = "cancelled";
    static final String E_SHUTTING_DOWN = "shutting_down";
    static final String E_NOT_FOUND = "not_found";
    static final String E_UNKNOWN_OP = "unknown_op";
    static final String E_UNKNOWN_PEER = "unknown_peer";
    static final String E_UNAVAILABLE = "unavailable";
    /** The key's roles do not allow the command, or the key was removed (SPEC.md 14.2). */
    static final String E_FORBIDDEN = "forbidden";

    /** A header frame larger than this is refused (bad_header). */
    static final int MAX_HEADER_BYTES = 65536;
    /** At most this many (header, body) items in one item message, or bodies in one batch or packed message. */
    static final int MAX_ITEMS_PER_MESSAGE = 1000;
    /** The body frame of a packed command is at most this long (too_large): 1 MiB. */
    static final int MAX_PACKED_BYTES = 1 << 20;
    /** Names and ids (id, re, queue, service, topic, trace) are 1 to this many UTF-8 bytes. */
    static final int MAX_NAME_BYTES = 255;
    /** Senders put at most this many ids in one ACK, CONFIRM or EXTEND. */
    static final int MAX_IDS_PER_MESSAGE = 200;

    /** The command code named {@code name} (e.g. "PUSH"), or -1. */
    static int commandByName(String name) {
        for (Map.Entry<Integer, String> e : COMMAND_NAMES.entrySet()) {
            if (e.getValue().equals(name)) {
                return e.getKey();
            }
        }
        return -1;
    }
}
