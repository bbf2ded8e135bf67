// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Sending on a worker session's current DEALER, from the I/O thread only; a control header gets a fresh id. */
final class WorkerWire {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.worker");
    private final IdGenerator ids = new IdGenerator();

    String nextId() {
        return ids.next();
    }

    void send(WorkerSession s, List<byte[]> frames) {
        if (s.sock == null) {
            return; // between connections: the broker redelivers what we could not answer
        }
        if (!Sockets.trySend(s.sock, frames)) {
            LOG.log(Level.WARNING, "send queue to {0} full; dropping a message", s.endpoint);
        }
    }

    /** READY to one broker: the worker's names and options, and the credit offered to that broker; returns its id. */
    String ready(WorkerSession s, Worker w, int credit) {
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("names", w.names());
        fields.put("credit", credit);
        fields.put("lang", "java");
        fields.put("host", w.host);
        if (w.label != null) {
            fields.put("label", w.label);
        }
        if (w.batch) {
            fields.put("batch", true);
            fields.put("packed", true);
        }
        return control(s, Wire.READY, fields);
    }

    /** Send a control command with a fresh id; returns that id. */
    String control(WorkerSession s, int command, Map<String, Object> fields) {
        Map<String, Object> header = new LinkedHashMap<>();
        String id = ids.next();
        header.put("id", id);
        header.putAll(fields);
        send(s, Codec.packControl(command, header));
        return id;
    }
}
