// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;

/** The ssl_ca_certs option of a Redis URL: TLS sockets that trust the CAs of one PEM file (and no others). */
final class TrustedCas {
    private TrustedCas() {}

    static SSLSocketFactory socketFactory(String pemPath) {
        try (InputStream in = Files.newInputStream(Path.of(pemPath))) {
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            int n = 0;
            for (Certificate cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                store.setCertificateEntry("ca-" + n++, cert);
            }
            if (n == 0) {
                throw new IllegalArgumentException("ssl_ca_certs " + pemPath + " holds no certificate");
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(store);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, tmf.getTrustManagers(), null);
            return context.getSocketFactory();
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalArgumentException("ssl_ca_certs " + pemPath + " cannot be read as PEM certificates: " + e, e);
        }
    }
}
