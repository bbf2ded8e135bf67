// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * Code that serves a queue or a service. Called in one of the worker's handler threads.
 *
 * <p>For a job (from a queue): return normally to ACK it (the value is ignored), throw to NACK
 * it for a retry after the queue's backoff, throw {@link RetryLaterException} to retry it after a
 * delay of your own, throw {@link DeadLetterException} to dead-letter it now. For a request (to a
 * service): the returned bytes are the reply body (null means empty); an exception becomes an
 * ERROR "remote" carrying its class name, message and stack trace.
 */
@FunctionalInterface
public interface Handler {
    byte[] handle(Job job) throws Exception;
}
