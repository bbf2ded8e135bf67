// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A CURVE certificate file in the format of czmq and pyzmq's zmq.auth, as {@code zeromesh keys
 * new} writes it (SPEC.md 14.2): unindented lines name a section, indented {@code name = "value"}
 * lines belong to the section above, full-line {@code #} comments. There are no end-of-line
 * comments: {@code #} is a Z85 character. The {@code curve} section holds {@code public-key} and,
 * in NAME.key_secret only, {@code secret-key}, 40 Z85 characters each.
 */
final class Certificate {
    static final int Z85_KEY_LENGTH = 40;
    private static final String Z85_CHARS =
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

    /** The file's stem: the key's name, as the broker logs it. */
    final String name;
    final String publicKey;
    /** Null in a public certificate. */
    final String secretKey;
    final Map<String, String> metadata;

    private Certificate(String name, String publicKey, String secretKey, Map<String, String> metadata) {
        this.name = name;
        this.publicKey = publicKey;
        this.secretKey = secretKey;
        this.metadata = metadata;
    }

    static boolean isZ85Key(String text) {
        if (text.length() != Z85_KEY_LENGTH) {
            return false;
        }
        for (int i = 0; i < text.length(); i++) {
            if (Z85_CHARS.indexOf(text.charAt(i)) < 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Parse one certificate file.
     *
     * @throws IllegalArgumentException unreadable, malformed, or without a valid public-key; the
     *                                  message names the file
     */
    static Certificate read(Path path) {
        List<String> lines;
        try {
            lines = Files.readAllLines(path, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read certificate " + path + ": " + e);
        }
        Map<String, Map<String, String>> sections = new HashMap<>();
        Map<String, String> current = null;
        for (int number = 1; number <= lines.size(); number++) {
            String raw = lines.get(number - 1);
            String line = raw.stripTrailing();
            if (line.isBlank() || line.strip().startsWith("#")) {
                continue;
            }
            if (!Character.isWhitespace(line.charAt(0))) {
                current = sections.computeIfAbsent(line.strip(), k -> new HashMap<>());
                continue;
            }
            int eq = line.indexOf('=');
            if (current == null || eq < 0) {
                throw new IllegalArgumentException(path + ":" + number
                        + ": expected 'name = \"value\"' inside a section, got '" + raw + "'");
            }
            current.put(line.substring(0, eq).strip(), unquote(line.substring(eq + 1).strip()));
        }
        Map<String, String> curve = sections.getOrDefault("curve", Map.of());
        String publicKey = curve.getOrDefault("public-key", "");
        String secretKey = curve.get("secret-key");
        if (!isZ85Key(publicKey)) {
            throw new IllegalArgumentException(path + ": no valid public-key (40 Z85 characters) in its curve section");
        }
        if (secretKey != null && !isZ85Key(secretKey)) {
            throw new IllegalArgumentException(path + ": its secret-key is not 40 Z85 characters");
        }
        String file = path.getFileName().toString();
        String stem = file.endsWith(".key_secret") ? file.substring(0, file.length() - ".key_secret".length())
                : file.endsWith(".key") ? file.substring(0, file.length() - ".key".length()) : file;
        return new Certificate(stem, publicKey, secretKey, Map.copyOf(sections.getOrDefault("metadata", Map.of())));
    }

    /** A value without its surrounding quotes, as zmq.auth writes them ("..." or '...'). */
    private static String unquote(String value) {
        int start = 0;
        int end = value.length();
        while (start < end && (value.charAt(start) == '"' || value.charAt(start) == '\'')) {
            start++;
        }
        while (end > start && (value.charAt(end - 1) == '"' || value.charAt(end - 1) == '\'')) {
            end--;
        }
        return value.substring(start, end);
    }
}
