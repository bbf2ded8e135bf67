// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicLong;

/** Ids as SPEC.md section 2.3 recommends: 64 random bits in hex, a hyphen, a counter in hex. Thread-safe. */
final class IdGenerator {
    private final String prefix;
    private final AtomicLong counter = new AtomicLong();

    IdGenerator() {
        byte[] random = new byte[8];
        new SecureRandom().nextBytes(random);
        this.prefix = HexFormat.of().formatHex(random);
    }

    String next() {
        return prefix + "-" + Long.toHexString(counter.incrementAndGet());
    }
}
