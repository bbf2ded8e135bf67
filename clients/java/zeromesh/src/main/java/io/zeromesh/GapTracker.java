// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.HashMap;
import java.util.Map;

/**
 * Decides whether an event proves that earlier ones were missed (SPEC 7), per broker. Within
 * one broker epoch each topic counts 1, 2, 3...: a jump means loss. A new epoch means that
 * broker restarted; if this subscriber had seen anything from it before, it cannot know what
 * the old broker published last, so the first event of the new epoch is a gap too. The first
 * event of a topic, and the first from a broker, is not a gap: earlier events predate the
 * subscription. Events name their broker ({@code broker}, "" from brokers that do not), since
 * a subscriber hears every broker of a mesh.
 */
final class GapTracker {
    /** What one broker has shown this subscriber: its epoch and each topic's last seq in it. */
    private static final class BrokerSeen {
        String epoch;
        final Map<String, Long> last = new HashMap<>();

        BrokerSeen(String epoch) {
            this.epoch = epoch;
        }
    }

    private final Map<String, BrokerSeen> brokers = new HashMap<>();

    /** One broker's events (no {@code broker} field). */
    boolean observe(String topic, long seq, String epoch) {
        return observe(topic, seq, epoch, "");
    }

    boolean observe(String topic, long seq, String epoch, String broker) {
        BrokerSeen seen = brokers.get(broker);
        boolean gap;
        if (seen == null) {
            seen = new BrokerSeen(epoch);
            brokers.put(broker, seen);
            gap = false;
        } else if (!epoch.equals(seen.epoch)) {
            gap = true;
            seen.epoch = epoch;
            seen.last.clear();
        } else {
            Long previous = seen.last.get(topic);
            gap = previous != null && seq != previous + 1;
        }
        seen.last.put(topic, seq);
        return gap;
    }
}
