// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.HashMap;
import java.util.Map;

/**
 * Decides whether an event proves that earlier ones were missed. Within one broker epoch each
 * topic counts 1, 2, 3...: a jump means loss. A new epoch means the broker restarted; if this
 * subscriber had seen anything before, the first event of the new epoch is a gap too. The first
 * event of a topic is not a gap: its earlier events predate the subscription.
 */
final class GapTracker {
    private String epoch;
    private final Map<String, Long> last = new HashMap<>();
    private boolean seenAny;

    boolean observe(String topic, long seq, String eventEpoch) {
        boolean gap;
        if (!eventEpoch.equals(epoch)) {
            gap = seenAny;
            epoch = eventEpoch;
            last.clear();
        } else {
            Long previous = last.get(topic);
            gap = previous != null && seq != previous + 1;
        }
        last.put(topic, seq);
        seenAny = true;
        return gap;
    }
}
