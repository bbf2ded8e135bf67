// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.Map;

/** ERROR headers to exceptions. */
final class Errors {
    private Errors() {}

    /** The exception an ERROR header stands for (returned, not thrown, so callers can clean up first). */
    static ZeromeshException fromHeader(Map<String, Object> header) {
        String code = text(header.get("code"), "error");
        String message = text(header.get("message"), "");
        switch (code) {
            case Wire.E_TIMEOUT:
                return new ZeromeshTimeoutException(message.isEmpty() ? "the broker's deadline passed" : message);
            case Wire.E_NO_RESPONDERS:
                return new NoRespondersException(message);
            case Wire.E_QUEUE_FULL:
                return new QueueFullException(message);
            case Wire.E_FORBIDDEN:
                return new ForbiddenException(message);
            default:
                return new RemoteException(code, message, text(header.get("name"), ""),
                        text(header.get("traceback"), ""));
        }
    }

    private static String text(Object value, String fallback) {
        return value instanceof String s && !s.isEmpty() ? s : fallback;
    }
}
