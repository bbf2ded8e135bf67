// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.Map;
import java.util.Set;

/**
 * Wire constants of ZMSH/1, the one place they live (protocol/SPEC.md sections 3, 6 and 9).
 * Nothing outside {@link Codec} builds frames from them.
 */
public final class Wire {
    private Wire() {}

    /** First two bytes of every command frame: "ZM". */
    public static final byte SIGNATURE_0 = 0x5A;
    public static final byte SIGNATURE_1 = 0x4D;
    /** Protocol version, byte 2 of the command frame. */
    public static final int VERSION = 1;

    // Commands: byte 3 of the command frame.
    public static final int PUSH = 0x01;
    public static final int CONFIRM = 0x02;
    public static final int JOB = 0x03;
    public static final int ACK = 0x04;
    public static final int NACK = 0x05;
    public static final int REQUEST = 0x06;
    public static final int REPLY = 0x07;
    public static final int ERROR = 0x08;
    public static final int PUBLISH = 0x09;
    public static final int READY = 0x0A;
    public static final int CREDIT = 0x0B;
    public static final int HEARTBEAT = 0x0C;
    public static final int DISCONNECT = 0x0D;
    public static final int EXTEND = 0x0E;
    public static final int CANCEL = 0x0F;
    public static final int ADMIN = 0x10;
    public static final int PUSH_BATCH = 0x11;
    public static final int JOB_BATCH = 0x12;
    public static final int PUSH_PACKED = 0x13;
    public static final int JOB_PACKED = 0x14;

    /** Command code to its name, as SPEC.md and the vectors spell it. */
    public static final Map<Integer, String> COMMAND_NAMES = Map.ofEntries(
            Map.entry(PUSH, "PUSH"), Map.entry(CONFIRM, "CONFIRM"), Map.entry(JOB, "JOB"),
            Map.entry(ACK, "ACK"), Map.entry(NACK, "NACK"), Map.entry(REQUEST, "REQUEST"),
            Map.entry(REPLY, "REPLY"), Map.entry(ERROR, "ERROR"), Map.entry(PUBLISH, "PUBLISH"),
            Map.entry(READY, "READY"), Map.entry(CREDIT, "CREDIT"), Map.entry(HEARTBEAT, "HEARTBEAT"),
            Map.entry(DISCONNECT, "DISCONNECT"), Map.entry(EXTEND, "EXTEND"), Map.entry(CANCEL, "CANCEL"),
            Map.entry(ADMIN, "ADMIN"), Map.entry(PUSH_BATCH, "PUSH_BATCH"), Map.entry(JOB_BATCH, "JOB_BATCH"),
            Map.entry(PUSH_PACKED, "PUSH_PACKED"), Map.entry(JOB_PACKED, "JOB_PACKED"));

    /** Commands whose frames after frame 0 are (header, body) pairs. */
    public static final Set<Integer> ITEM_COMMANDS = Set.of(PUSH, JOB, REQUEST, REPLY, PUBLISH);

    /** Commands with one header for many jobs: its "ids" name the body frames that follow, in order (SPEC.md 3.4). */
    public static final Set<Integer> BATCH_COMMANDS = Set.of(PUSH_BATCH, JOB_BATCH);

    /** Batch commands with every body in one frame, cut by the header's "sizes" (SPEC.md 3.5). */
    public static final Set<Integer> PACKED_COMMANDS = Set.of(PUSH_PACKED, JOB_PACKED);

    // Error codes (SPEC.md section 9). Stable strings: clients match on them.
    public static final String E_BAD_FRAME = "bad_frame";
    public static final String E_BAD_VERSION = "bad_version";
    public static final String E_UNKNOWN_COMMAND = "unknown_command";
    public static final String E_BAD_HEADER = "bad_header";
    public static final String E_TOO_LARGE = "too_large";
    public static final String E_NO_RESPONDERS = "no_responders";
    public static final String E_TIMEOUT = "timeout";
    public static final String E_QUEUE_FULL = "queue_full";
    public static final String E_WORKER_LOST = "worker_lost";
    public static final String E_REMOTE = "remote";
    public static final String E_CANCELLED = "cancelled";
    public static final String E_SHUTTING_DOWN = "shutting_down";
    public static final String E_NOT_FOUND = "not_found";
    public static final String E_UNKNOWN_OP = "unknown_op";
    public static final String E_UNKNOWN_PEER = "unknown_peer";
    public static final String E_UNAVAILABLE = "unavailable";

    /** A header frame larger than this is refused (bad_header). */
    public static final int MAX_HEADER_BYTES = 65536;
    /** At most this many (header, body) items in one item message, or bodies in one batch or packed message. */
    public static final int MAX_ITEMS_PER_MESSAGE = 1000;
    /** The body frame of a packed command is at most this long (too_large): 1 MiB. */
    public static final int MAX_PACKED_BYTES = 1 << 20;
    /** Names and ids (id, re, queue, service, topic, trace) are 1 to this many UTF-8 bytes. */
    public static final int MAX_NAME_BYTES = 255;
    /** Senders put at most this many ids in one ACK, CONFIRM or EXTEND. */
    public static final int MAX_IDS_PER_MESSAGE = 200;

    /** The command code named {@code name} (e.g. "PUSH"), or -1. */
    public static int commandByName(String name) {
        for (Map.Entry<Integer, String> e : COMMAND_NAMES.entrySet()) {
            if (e.getValue().equals(name)) {
                return e.getKey();
            }
        }
        return -1;
    }
}
