// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * The broker refused this client's CURVE handshake (SPEC.md 14.4): no key against a broker that
 * wants one, a key it does not know (or no longer knows), or a wrong idea of its public key.
 * Nothing sent on that connection reaches the broker. Code "unauthenticated"; the message starts
 * "authentication refused by the broker at ADDR: ".
 */
public class AuthenticationException extends ZeromeshException {
    private static final long serialVersionUID = 1L;

    public AuthenticationException(String message) {
        super("unauthenticated", message);
    }

}
