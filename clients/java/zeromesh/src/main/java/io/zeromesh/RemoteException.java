// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * An ERROR from the broker or a worker. For code "remote" the handler's exception travels as
 * the triple ({@link #name()}, {@link #getMessage()}, {@link #remoteTraceback()}), so any language can show it.
 */
public class RemoteException extends ZeromeshException {
    private static final long serialVersionUID = 1L;
    private final String name;
    private final String remoteTraceback;

    public RemoteException(String code, String message, String name, String remoteTraceback) {
        super(code, message);
        this.name = name == null ? "" : name;
        this.remoteTraceback = remoteTraceback == null ? "" : remoteTraceback;
    }

    /** The remote exception's class name (code "remote"); empty otherwise. */
    public String name() {
        return name;
    }

    /** The remote handler's stack trace as text (code "remote"); empty otherwise. */
    public String remoteTraceback() {
        return remoteTraceback;
    }

    @Override
    public String toString() {
        String head = name.isEmpty() ? code() : code() + " " + name;
        return getClass().getName() + ": [" + head + "] " + getMessage();
    }
}
