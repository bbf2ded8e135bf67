// SPDX-License-Identifier: MIT
package io.zeromesh;

/** Options of one request ({@link Client#request(String, byte[], java.time.Duration, RequestOption...)}). */
public enum RequestOption {
    /**
     * Running the request twice does no harm. When the client's broker is lost with the request in
     * flight, the request is sent to the next broker under a new request id with what is left of its
     * deadline, instead of failing with {@link UnreachableException} (the lost broker may have run it).
     */
    IDEMPOTENT
}
