// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * The broker knows this client's key, but the key's roles do not allow the command (code
 * "forbidden", SPEC.md 14.2): "key NAME may not COMMAND NAME (roles: ...)", or "key NAME was
 * removed". The broker changed nothing.
 */
public class ForbiddenException extends RemoteException {
    private static final long serialVersionUID = 1L;

    public ForbiddenException(String message) {
        super(Wire.E_FORBIDDEN, message, "", "");
    }
}
