// SPDX-License-Identifier: MIT
package io.zeromesh;

/** The queue or the service's waiting list is full (code "queue_full"); try again later. */
public class QueueFullException extends RemoteException {
    private static final long serialVersionUID = 1L;

    public QueueFullException(String message) {
        super(Wire.E_QUEUE_FULL, message, "", "");
    }
}
