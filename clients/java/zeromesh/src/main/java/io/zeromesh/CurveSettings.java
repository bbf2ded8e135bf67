// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.zeromq.ZMQ;

/**
 * A client's CURVE settings (SPEC.md 14.4): the broker's public key, one for every broker or one
 * per endpoint in list order, and this client's own key pair. Made once at construction from the
 * builder's {@code curveServer} / {@code curveSecret}, else ZEROMESH_CURVE_SERVER /
 * ZEROMESH_CURVE_SECRET; applied to each DEALER and SUB before it connects.
 */
final class CurveSettings {
    static final String SERVER = "ZEROMESH_CURVE_SERVER";
    static final String SECRET = "ZEROMESH_CURVE_SECRET";

    private final List<byte[]> serverKeys;
    private final byte[] publicKey;
    private final byte[] secretKey;
    /** The server-key list as given, for messages. */
    private final String serverText;

    private CurveSettings(List<byte[]> serverKeys, byte[] publicKey, byte[] secretKey, String serverText) {
        this.serverKeys = serverKeys;
        this.publicKey = publicKey;
        this.secretKey = secretKey;
        this.serverText = serverText;
    }

    /**
     * The settings from the builder's values, each falling back to its variable in {@code env}
     * when null; null when neither is set at all (the NULL mechanism, as without security).
     *
     * @throws IllegalArgumentException one set without the other, an unreadable file, a file
     *                                  without a secret-key, a malformed key, or a number of server
     *                                  keys that is neither 1 nor {@code endpoints}; the message
     *                                  names the setting
     */
    static CurveSettings resolve(String curveServer, Path curveSecret, int endpoints, Map<String, String> env) {
        String server = curveServer != null ? curveServer : env.getOrDefault(SERVER, "");
        String secret = curveSecret != null ? curveSecret.toString() : env.getOrDefault(SECRET, "");
        if (server.isBlank() && secret.isBlank()) {
            return null;
        }
        if (server.isBlank() || secret.isBlank()) {
            String missing = server.isBlank() ? SERVER + " (curveServer)" : SECRET + " (curveSecret)";
            throw new IllegalArgumentException("CURVE needs both the broker's public key and this client's secret: "
                    + missing + " is not set");
        }
        String[] entries = server.split(",", -1);
        if (entries.length != 1 && entries.length != endpoints) {
            throw new IllegalArgumentException(SERVER + " lists " + entries.length + " keys for " + endpoints
                    + " broker endpoints: give one key for every broker, or one per endpoint in the same order");
        }
        List<byte[]> keys = new ArrayList<>(entries.length);
        for (String entry : entries) {
            keys.add(ZMQ.Curve.z85Decode(serverKey(entry.strip())));
        }
        Certificate own;
        try {
            own = Certificate.read(Path.of(secret));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(SECRET + ": " + e.getMessage());
        }
        if (own.secretKey == null) {
            throw new IllegalArgumentException(SECRET + ": " + secret
                    + " holds no secret-key (give the NAME.key_secret file)");
        }
        return new CurveSettings(List.copyOf(keys), ZMQ.Curve.z85Decode(own.publicKey),
                ZMQ.Curve.z85Decode(own.secretKey), server);
    }

    /** A 40-character Z85 key as it is, or the public-key of the certificate file it names. */
    private static String serverKey(String entry) {
        if (Certificate.isZ85Key(entry)) {
            return entry;
        }
        if (entry.isEmpty()) {
            throw new IllegalArgumentException(SERVER + ": an empty entry in the list");
        }
        if (!Files.isRegularFile(Path.of(entry))) {
            throw new IllegalArgumentException(SERVER + ": '" + entry
                    + "' is neither a 40-character Z85 key nor a certificate file");
        }
        try {
            return Certificate.read(Path.of(entry)).publicKey;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(SERVER + ": " + e.getMessage());
        }
    }

    /**
     * Check that the server keys also fit a second endpoint list (ZEROMESH_PUB: the same order as
     * ZEROMESH_BROKER).
     *
     * @throws IllegalArgumentException several keys, but not one per endpoint of {@code what}
     */
    void checkFits(int endpoints, String what) {
        if (serverKeys.size() != 1 && serverKeys.size() != endpoints) {
            throw new IllegalArgumentException(SERVER + " lists " + serverKeys.size() + " keys ('" + serverText
                    + "') but " + what + " has " + endpoints + " endpoints: give one key, or one per endpoint");
        }
    }

    /** Make {@code sock} a CURVE client of the broker at position {@code index} of its list; before connect. */
    void apply(ZMQ.Socket sock, int index) {
        sock.setCurveServerKey(serverKeys.get(serverKeys.size() == 1 ? 0 : index));
        sock.setCurvePublicKey(publicKey);
        sock.setCurveSecretKey(secretKey);
    }
}
