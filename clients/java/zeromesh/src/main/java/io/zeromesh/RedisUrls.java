// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;
import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.JedisPooled;
import redis.clients.jedis.JedisSentineled;
import redis.clients.jedis.UnifiedJedis;

/**
 * ZEROMESH_REDIS_URL -> a Jedis client: the one place the Java client reads a Redis URL.
 *
 * <p>{@code redis://} and {@code rediss://} go to {@link JedisPooled} as they are. The Sentinel
 * form is zeromesh's (SPEC 16; the same grammar as the Python, Ruby and bash clients):
 *
 * <pre>redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB][?OPTIONS]</pre>
 *
 * <p>OPTIONS: {@code sentinel_password} (the sentinels' own AUTH), {@code ssl=true} (TLS to the
 * sentinels and the primary), {@code ssl_ca_certs=PATH} (PEM file of the CAs to trust),
 * {@code socket_timeout=SECONDS}, {@code min_replicas=N} (replicas a durable push must reach;
 * read by {@link RedisQueue}, not a connection setting). The client is a {@link JedisSentineled},
 * which asks the sentinels for the primary and listens for their {@code +switch-master}, so it
 * follows a failover without a restart. Malformed URLs raise IllegalArgumentException saying what
 * is wrong, with every password starred out.
 */
public final class RedisUrls {
    public static final String SENTINEL_SCHEME = "redis+sentinel";
    private static final List<String> PLAIN_SCHEMES = List.of("redis", "rediss");
    private static final List<String> OPTIONS = List.of("sentinel_password", "ssl", "ssl_ca_certs", "socket_timeout",
            "min_replicas");
    private static final List<String> SECRET_OPTIONS = List.of("password", "sentinel_password");
    private static final Pattern DIGITS = Pattern.compile("\\d+");

    private RedisUrls() {}

    /** A parsed redis+sentinel:// URL; sentinels in the URL's order; null for what it does not say. */
    public record Sentinel(List<HostAndPort> sentinels, String service, int db, String user, String password,
            String sentinelPassword, boolean ssl, String sslCaCerts, Duration socketTimeout, Integer minReplicas) {}

    /**
     * A client for {@code url}: a JedisSentineled for redis+sentinel://, else a JedisPooled. The
     * caller closes it. A Sentinel client asks the sentinels at once, so it fails here when none
     * of them answers.
     */
    public static UnifiedJedis connect(String url) {
        if (!isSentinel(url)) {
            return new JedisPooled(plain(url));
        }
        Sentinel s = parseSentinel(url);
        DefaultJedisClientConfig.Builder primary = DefaultJedisClientConfig.builder().database(s.db()).ssl(s.ssl())
                .user(s.user()).password(s.password());
        DefaultJedisClientConfig.Builder sentinels = DefaultJedisClientConfig.builder().ssl(s.ssl())
                .password(s.sentinelPassword());
        if (s.socketTimeout() != null) {
            int ms = (int) Math.max(1, s.socketTimeout().toMillis());
            primary.socketTimeoutMillis(ms).connectionTimeoutMillis(ms);
            sentinels.socketTimeoutMillis(ms).connectionTimeoutMillis(ms);
        }
        if (s.sslCaCerts() != null) {
            javax.net.ssl.SSLSocketFactory factory = TrustedCas.socketFactory(s.sslCaCerts());
            primary.sslSocketFactory(factory);
            sentinels.sslSocketFactory(factory);
        }
        Set<HostAndPort> addresses = new LinkedHashSet<>(s.sentinels());
        return new JedisSentineled(s.service(), primary.build(), addresses, sentinels.build());
    }

    /** True when {@code url} is a redis+sentinel:// URL; IllegalArgumentException for an unknown scheme. */
    public static boolean isSentinel(String url) {
        return SENTINEL_SCHEME.equals(scheme(url));
    }

    /** The URL's min_replicas option (Sentinel form only); null when it does not say. */
    public static Integer minReplicas(String url) {
        return isSentinel(url) ? parseSentinel(url).minReplicas() : null;
    }

    /** Split a redis+sentinel:// URL into its parts; IllegalArgumentException saying what is wrong. */
    public static Sentinel parseSentinel(String url) {
        String shown = redact(url);
        if (!isSentinel(url)) {
            throw new IllegalArgumentException("not a " + SENTINEL_SCHEME + ":// URL: " + shown);
        }
        String rest = url.substring(SENTINEL_SCHEME.length() + 3);
        String query = "";
        int q = rest.indexOf('?');
        if (q >= 0) {
            query = rest.substring(q + 1);
            rest = rest.substring(0, q);
        }
        int hash = query.indexOf('#');
        if (hash >= 0) {
            query = query.substring(0, hash);
        }
        int slash = rest.indexOf('/');
        String netloc = slash < 0 ? rest : rest.substring(0, slash);
        String path = slash < 0 ? null : rest.substring(slash + 1);
        String user = null;
        String password = null;
        int at = netloc.lastIndexOf('@');
        if (at >= 0) {
            String userinfo = netloc.substring(0, at);
            netloc = netloc.substring(at + 1);
            int colon = userinfo.indexOf(':');
            String name = colon < 0 ? userinfo : userinfo.substring(0, colon);
            user = name.isEmpty() ? null : decode(name);
            password = colon < 0 ? null : decode(userinfo.substring(colon + 1));
        }
        List<HostAndPort> sentinels = new ArrayList<>();
        for (String item : netloc.split(",", -1)) {
            sentinels.add(hostPort(item, shown));
        }
        String[] parts = path == null ? new String[0] : path.split("/", -1);
        if (parts.length == 0 || parts[0].isEmpty()) {
            throw new IllegalArgumentException("no Sentinel service name in " + shown + " (expected " + SENTINEL_SCHEME
                    + "://HOST:PORT[,HOST:PORT...]/SERVICE[/DB])");
        }
        if (parts.length > 2 || (parts.length == 2 && parts[1].isEmpty())) {
            throw new IllegalArgumentException("after the service name only a database number may follow, in " + shown);
        }
        int db = 0;
        if (parts.length == 2) {
            if (!DIGITS.matcher(parts[1]).matches() || parts[1].length() > 9) {
                throw new IllegalArgumentException("the database must be a number, got \"" + parts[1] + "\" in " + shown);
            }
            db = Integer.parseInt(parts[1]);
        }
        Options o = options(query, shown);
        return new Sentinel(List.copyOf(sentinels), decode(parts[0]), db, user, password, o.sentinelPassword, o.ssl,
                o.sslCaCerts, o.socketTimeout, o.minReplicas);
    }

    /** The URL with every password (user part, or a password option) starred out, for messages and logs. */
    public static String redact(String url) {
        if (url == null) {
            return "null";
        }
        int q = url.indexOf('?');
        String text = q < 0 ? url : url.substring(0, q);
        text = text.replaceFirst("\\A([^:/]+://[^/@]*?):[^/@]*@", "$1:***@");
        if (q < 0) {
            return text;
        }
        List<String> pairs = new ArrayList<>();
        for (String pair : url.substring(q + 1).split("&", -1)) {
            int eq = pair.indexOf('=');
            boolean secret = eq >= 0 && SECRET_OPTIONS.contains(pair.substring(0, eq).toLowerCase(Locale.ROOT));
            pairs.add(secret ? pair.substring(0, eq) + "=***" : pair);
        }
        return text + "?" + String.join("&", pairs);
    }

    // -- helpers --------------------------------------------------------------

    private static String scheme(String url) {
        if (url == null || !url.contains("://")) {
            throw new IllegalArgumentException("a Redis URL looks like redis://HOST:PORT, rediss://... or "
                    + SENTINEL_SCHEME + "://HOST:PORT/SERVICE; got " + (url == null ? "null" : "\"" + redact(url) + "\""));
        }
        String name = url.substring(0, url.indexOf("://")).toLowerCase(Locale.ROOT);
        if (name.equals(SENTINEL_SCHEME) || PLAIN_SCHEMES.contains(name)) {
            return name;
        }
        String hint = name.equals("unix") ? " (Jedis has no unix-socket transport; use redis://HOST:PORT)" : "";
        throw new IllegalArgumentException("unknown Redis URL scheme \"" + name + "\" in " + redact(url) + " (known: "
                + String.join(", ", PLAIN_SCHEMES) + ", " + SENTINEL_SCHEME + ")" + hint);
    }

    /** A redis:// or rediss:// URL checked enough to name what is wrong before Jedis sees it. */
    private static URI plain(String url) {
        URI uri;
        try {
            uri = new URI(url);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("malformed Redis URL " + redact(url) + ": " + e.getReason());
        }
        if (uri.getHost() == null || uri.getPort() < 1) {
            throw new IllegalArgumentException("a Redis URL needs HOST:PORT, got " + redact(url));
        }
        String path = uri.getPath();
        if (path != null && !path.isEmpty() && !path.equals("/") && !DIGITS.matcher(path.substring(1)).matches()) {
            throw new IllegalArgumentException("the database must be a number, got \"" + path.substring(1) + "\" in "
                    + redact(url));
        }
        return uri;
    }

    private record Options(String sentinelPassword, boolean ssl, String sslCaCerts, Duration socketTimeout,
            Integer minReplicas) {}

    private static Options options(String query, String shown) {
        String sentinelPassword = null;
        boolean ssl = false;
        String sslCaCerts = null;
        Duration socketTimeout = null;
        Integer minReplicas = null;
        if (!query.isEmpty()) {
            for (String pair : query.split("&", -1)) {
                int eq = pair.indexOf('=');
                if (eq <= 0) {
                    throw new IllegalArgumentException("malformed options (expected NAME=VALUE&...) in " + shown);
                }
                String key = decode(pair.substring(0, eq));
                String value = decode(pair.substring(eq + 1));
                if (!OPTIONS.contains(key)) {
                    throw new IllegalArgumentException("unknown option \"" + key + "\" in " + shown + " (known: "
                            + String.join(", ", OPTIONS) + ")");
                }
                switch (key) {
                    case "ssl" -> ssl = bool(value, shown);
                    case "socket_timeout" -> socketTimeout = seconds(value, shown);
                    case "min_replicas" -> {
                        if (!DIGITS.matcher(value).matches() || value.length() > 9) {
                            throw new IllegalArgumentException("min_replicas must be a whole number >= 0, got \""
                                    + value + "\" in " + shown);
                        }
                        minReplicas = Integer.parseInt(value);
                    }
                    default -> {
                        if (value.isEmpty()) {
                            throw new IllegalArgumentException("option " + key + " is empty in " + shown);
                        }
                        if (key.equals("sentinel_password")) {
                            sentinelPassword = value;
                        } else {
                            sslCaCerts = value;
                        }
                    }
                }
            }
        }
        return new Options(sentinelPassword, ssl, sslCaCerts, socketTimeout, minReplicas);
    }

    private static boolean bool(String value, String shown) {
        switch (value.toLowerCase(Locale.ROOT)) {
            case "1", "true", "yes", "on" -> {
                return true;
            }
            case "0", "false", "no", "off" -> {
                return false;
            }
            default -> throw new IllegalArgumentException("ssl must be true or false, got \"" + value + "\" in " + shown);
        }
    }

    private static Duration seconds(String value, String shown) {
        double s;
        try {
            s = Double.parseDouble(value);
        } catch (NumberFormatException e) {
            s = Double.NaN;
        }
        if (!(s > 0) || Double.isInfinite(s)) {
            throw new IllegalArgumentException("socket_timeout must be a positive number of seconds, got \"" + value
                    + "\" in " + shown);
        }
        return Duration.ofNanos((long) (s * 1e9));
    }

    private static HostAndPort hostPort(String raw, String shown) {
        String item = raw.strip();
        if (item.isEmpty()) {
            throw new IllegalArgumentException("empty sentinel address in " + shown);
        }
        String host;
        String port;
        if (item.startsWith("[")) { // [IPv6]:PORT
            int close = item.indexOf(']');
            host = close < 0 ? "" : item.substring(1, close);
            port = close < 0 || !item.startsWith(":", close + 1) ? "" : item.substring(close + 2);
        } else {
            int colon = item.lastIndexOf(':');
            host = colon < 0 ? "" : item.substring(0, colon);
            port = colon < 0 ? "" : item.substring(colon + 1);
        }
        if (host.isEmpty() || port.isEmpty()) {
            throw new IllegalArgumentException("sentinel address \"" + item + "\" is not HOST:PORT, in " + shown);
        }
        if (!DIGITS.matcher(port).matches() || port.length() > 5 || Integer.parseInt(port) < 1
                || Integer.parseInt(port) > 65535) {
            throw new IllegalArgumentException("sentinel port \"" + port + "\" is not a port number, in " + shown);
        }
        return new HostAndPort(host, Integer.parseInt(port));
    }

    /** Percent-decoding that keeps '+' (a password may hold one); bad escapes stay as written. */
    private static String decode(String text) {
        try {
            return URLDecoder.decode(text.replace("+", "%2B"), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            return text;
        }
    }
}
