// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.Arrays;
import java.util.HexFormat;

/** A msgpack ext value (any type, the timestamp type -1 included), kept as its type and raw data. */
public record Ext(int type, byte[] data) {
    @Override
    public boolean equals(Object other) {
        return other instanceof Ext e && e.type == type && Arrays.equals(e.data, data);
    }

    @Override
    public int hashCode() {
        return 31 * type + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "Ext[" + type + ", " + HexFormat.of().formatHex(data) + "]";
    }
}
