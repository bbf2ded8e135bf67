// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One wake-up's handler results turned into messages, per session: ACKs, REPLYs and EXTENDs are
 * batched (one message of each per session, split only at the protocol's limits), NACKs and
 * ERRORs go one by one as they come. Built and sent by the worker's I/O thread.
 */
final class ResultBatch {
    private final WorkerWire wire;
    private final Map<WorkerSession, Outgoing> out = new IdentityHashMap<>();

    private static final class Outgoing {
        final List<String> acks = new ArrayList<>();
        final List<byte[]> replyHeaders = new ArrayList<>();
        final List<byte[]> replyBodies = new ArrayList<>();
        final Map<Long, List<String>> extensions = new LinkedHashMap<>();
    }

    ResultBatch(WorkerWire wire) {
        this.wire = wire;
    }

    void extend(WorkerSession s, WorkerResult.Extend ext) {
        outgoing(s).extensions.computeIfAbsent(ext.leaseMs(), k -> new ArrayList<>()).add(ext.job().id());
    }

    /** A finished job's answer on the session it came from (Ack, Nack, Answer or Failure). */
    void finished(WorkerSession s, WorkerResult result) {
        Job job = WorkerResult.jobOf(result);
        if (result instanceof WorkerResult.Ack) {
            outgoing(s).acks.add(job.id());
        } else if (result instanceof WorkerResult.Nack nack) {
            Map<String, Object> fields = new LinkedHashMap<>();
            fields.put("re", job.id());
            fields.put("error", WorkerHandlers.clip(nack.error()));
            if (!nack.retry()) {
                fields.put("retry", false);
            } else if (nack.retryInMs() != null) {
                fields.put("retry_in_ms", nack.retryInMs());
            }
            wire.control(s, Wire.NACK, fields);
        } else if (result instanceof WorkerResult.Answer answer) {
            Map<String, Object> header = new LinkedHashMap<>();
            header.put("id", wire.nextId());
            header.put("re", job.id());
            Outgoing o = outgoing(s);
            o.replyHeaders.add(Codec.packHeader(header));
            o.replyBodies.add(answer.body());
        } else if (result instanceof WorkerResult.Failure failure) {
            Map<String, Object> fields = new LinkedHashMap<>();
            fields.put("re", job.id());
            fields.putAll(failure.fields());
            wire.control(s, Wire.ERROR, fields);
        } else {
            throw new IllegalArgumentException("not a finished job's result: " + result);
        }
    }

    /** Send the batched messages, one ACK (and one REPLY) message per session however many results. */
    void send() {
        for (Map.Entry<WorkerSession, Outgoing> e : out.entrySet()) {
            WorkerSession s = e.getKey();
            Outgoing o = e.getValue();
            for (int i = 0; i < o.acks.size(); i += Wire.MAX_IDS_PER_MESSAGE) {
                wire.control(s, Wire.ACK, Map.of("ids",
                        o.acks.subList(i, Math.min(o.acks.size(), i + Wire.MAX_IDS_PER_MESSAGE))));
            }
            for (int i = 0; i < o.replyHeaders.size(); i += Wire.MAX_ITEMS_PER_MESSAGE) {
                int end = Math.min(o.replyHeaders.size(), i + Wire.MAX_ITEMS_PER_MESSAGE);
                wire.send(s, Codec.assemble(Wire.REPLY, o.replyHeaders.subList(i, end), o.replyBodies.subList(i, end)));
            }
            for (Map.Entry<Long, List<String>> x : o.extensions.entrySet()) {
                List<String> jobIds = x.getValue();
                for (int i = 0; i < jobIds.size(); i += Wire.MAX_IDS_PER_MESSAGE) {
                    wire.control(s, Wire.EXTEND, Map.of("ids",
                            jobIds.subList(i, Math.min(jobIds.size(), i + Wire.MAX_IDS_PER_MESSAGE)), "lease_ms",
                            x.getKey()));
                }
            }
        }
        out.clear();
    }

    private Outgoing outgoing(WorkerSession s) {
        return out.computeIfAbsent(s, k -> new Outgoing());
    }
}
