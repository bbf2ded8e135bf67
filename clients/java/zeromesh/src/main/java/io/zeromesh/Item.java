// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.Map;

/** One (header, body) pair of an item command. The body array is not copied: don't change it. */
record Item(Map<String, Object> header, byte[] body) {
}
