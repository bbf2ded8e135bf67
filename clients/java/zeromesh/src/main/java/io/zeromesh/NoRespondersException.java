// SPDX-License-Identifier: MIT
package io.zeromesh;

/** No worker serves the requested service (code "no_responders"). */
public class NoRespondersException extends RemoteException {
    private static final long serialVersionUID = 1L;

    public NoRespondersException(String message) {
        super(Wire.E_NO_RESPONDERS, message, "", "");
    }
}
