// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * A pushed job the broker did not confirm before the push failed: it may or may not be queued.
 * Pushing its body again is safe for idempotent handlers.
 */
public record UnconfirmedJob(String id, byte[] body) {}
