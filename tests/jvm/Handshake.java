// One JSSE mTLS handshake on 127.0.0.1 between a server and a client, each
// configured as docs/jvm.md tells a JVM consumer: trellis's PKCS#12
// truststore and keystore, PKIX with the shipped crl.jvm.pem as a CertStore
// (revocation on), and optionally the scope authorization check (ScopeCheck).
// Usage: java Handshake.java SERVER_KS CLIENT_KS TRUSTSTORE [CRLS|-] [authz]
// The password comes from TRELLIS_PKCS12_PASSWORD. Prints one line per side:
// "server: accepted" or "server: refused <reason>", the same for the client.
import java.io.*;
import java.net.*;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.util.*;
import java.util.concurrent.*;
import javax.net.ssl.*;

public class Handshake {
  public static void main(String[] args) throws Exception {
    char[] password = System.getenv("TRELLIS_PKCS12_PASSWORD").toCharArray();
    String crls = args.length > 3 && !args[3].equals("-") ? args[3] : null;
    boolean authz = args.length > 4 && args[4].equals("authz");
    SSLContext server = context(args[0], args[2], crls, password, authz);
    SSLContext client = context(args[1], args[2], crls, password, authz);

    SSLServerSocket listener = (SSLServerSocket) server.getServerSocketFactory().createServerSocket(0, 1, InetAddress.getLoopbackAddress());
    listener.setNeedClientAuth(true);
    ExecutorService pool = Executors.newSingleThreadExecutor();
    Future<String> serverSide = pool.submit(() -> {
      try (SSLSocket s = (SSLSocket) listener.accept()) {
        s.startHandshake();
        s.getOutputStream().write(1); // the client's read proves the server finished too
        return "accepted";
      } catch (Exception e) {
        return "refused " + rootCause(e);
      }
    });
    String clientSide;
    try (SSLSocket s = (SSLSocket) client.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), listener.getLocalPort())) {
      s.setSoTimeout(10_000);
      s.startHandshake();
      clientSide = s.getInputStream().read() == 1 ? "accepted" : "refused by the server";
    } catch (Exception e) {
      clientSide = "refused " + rootCause(e);
    }
    System.out.println("server: " + serverSide.get(15, TimeUnit.SECONDS));
    System.out.println("client: " + clientSide);
    pool.shutdown();
    listener.close();
  }

  /** The configuration docs/jvm.md documents, and nothing more. */
  static SSLContext context(String keystore, String truststore, String crlFile, char[] password, boolean authz) throws Exception {
    KeyStore ks = KeyStore.getInstance("PKCS12");
    try (InputStream in = Files.newInputStream(Path.of(keystore))) { ks.load(in, password); }
    KeyManagerFactory kmf = KeyManagerFactory.getInstance("PKIX");
    kmf.init(ks, password);

    KeyStore trust = KeyStore.getInstance("PKCS12");
    try (InputStream in = Files.newInputStream(Path.of(truststore))) { trust.load(in, password); }
    PKIXBuilderParameters params = new PKIXBuilderParameters(trust, new X509CertSelector());
    if (crlFile != null) {
      try (InputStream in = Files.newInputStream(Path.of(crlFile))) {
        Collection<? extends CRL> crls = CertificateFactory.getInstance("X.509").generateCRLs(in);
        params.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(crls)));
      }
      params.setRevocationEnabled(true);
    } else {
      params.setRevocationEnabled(false);
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
    tmf.init(new CertPathTrustManagerParameters(params));
    TrustManager[] tms = tmf.getTrustManagers();
    if (authz) tms = new TrustManager[] { new ScopeCheck((X509ExtendedTrustManager) tms[0], params) };
    SSLContext ctx = SSLContext.getInstance("TLSv1.3");
    ctx.init(kmf.getKeyManagers(), tms, null);
    return ctx;
  }

  static String rootCause(Throwable e) {
    Throwable c = e;
    StringBuilder why = new StringBuilder(String.valueOf(e.getMessage()));
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
      why.append(" <- ").append(c.getMessage());
    }
    return why.toString().replace('\n', ' ');
  }
}

// --- ScopeCheck: the authorization docs/jvm.md ships (copied there verbatim; a test keeps them equal) ---
/**
 * Java does not apply a trust anchor's name constraints, and trellis anchors on
 * intermediates, so JSSE alone accepts a leaf a scope's key minted for another
 * scope's names. After the PKIX check passes, this takes the scope from the
 * anchor the leaf validated under (its own name constraints, never the
 * presented chain, the AKI or the issuer name) and refuses the peer unless
 * every SAN of its leaf lies inside them. Both directions: client and server.
 */
final class ScopeCheck extends X509ExtendedTrustManager {
  private final X509ExtendedTrustManager pkix;
  private final PKIXParameters anchors;

  ScopeCheck(X509ExtendedTrustManager pkix, PKIXParameters params) {
    this.pkix = pkix;
    this.anchors = (PKIXParameters) params.clone();
    this.anchors.setRevocationEnabled(false); // pkix has checked revocation; this pass only finds the anchor
  }

  public void checkClientTrusted(X509Certificate[] c, String a) throws CertificateException { pkix.checkClientTrusted(c, a); authorize(c); }
  public void checkServerTrusted(X509Certificate[] c, String a) throws CertificateException { pkix.checkServerTrusted(c, a); authorize(c); }
  public void checkClientTrusted(X509Certificate[] c, String a, Socket s) throws CertificateException { pkix.checkClientTrusted(c, a, s); authorize(c); }
  public void checkServerTrusted(X509Certificate[] c, String a, Socket s) throws CertificateException { pkix.checkServerTrusted(c, a, s); authorize(c); }
  public void checkClientTrusted(X509Certificate[] c, String a, SSLEngine e) throws CertificateException { pkix.checkClientTrusted(c, a, e); authorize(c); }
  public void checkServerTrusted(X509Certificate[] c, String a, SSLEngine e) throws CertificateException { pkix.checkServerTrusted(c, a, e); authorize(c); }
  public X509Certificate[] getAcceptedIssuers() { return pkix.getAcceptedIssuers(); }

  private void authorize(X509Certificate[] chain) throws CertificateException {
    X509Certificate leaf = chain[0];
    X509Certificate anchor;
    try {
      CertPath path = CertificateFactory.getInstance("X.509").generateCertPath(List.of(leaf));
      anchor = ((PKIXCertPathValidatorResult) CertPathValidator.getInstance("PKIX").validate(path, anchors)).getTrustAnchor().getTrustedCert();
    } catch (GeneralSecurityException e) {
      throw new CertificateException("trellis scope check: the leaf validates under no anchor", e);
    }
    List<String> dns = new ArrayList<>(), uriHosts = new ArrayList<>();
    permitted(anchor, dns, uriHosts);
    Collection<List<?>> sans = leaf.getSubjectAlternativeNames();
    if (sans == null || sans.isEmpty()) throw new CertificateException("trellis scope check: the leaf names nothing");
    for (List<?> san : sans) {
      int type = (Integer) san.get(0);
      String name = String.valueOf(san.get(1));
      boolean inside = switch (type) {
        case 2 -> dns.stream().anyMatch(p -> within(name.toLowerCase(Locale.ROOT), p));
        case 6 -> uriHosts.stream().anyMatch(p -> within(uriHost(name), p));
        default -> false; // trellis mints DNS and URI names only; its anchors exclude every IP
      };
      if (!inside) throw new CertificateException("trellis scope check: " + name + " is outside the scope of anchor " + anchor.getSubjectX500Principal());
    }
  }

  /** A URI's host, lower-cased; "" when it has none or does not parse (then nothing permits it). */
  private static String uriHost(String uri) {
    try {
      String host = new URI(uri).getHost();
      return host == null ? "" : host.toLowerCase(Locale.ROOT);
    } catch (URISyntaxException e) {
      return "";
    }
  }

  /** RFC 5280 4.2.1.10: a name equals the constraint or ends in "." + it; a leading "." allows subdomains only. */
  private static boolean within(String name, String constraint) {
    String c = constraint.toLowerCase(Locale.ROOT);
    if (c.startsWith(".")) return name.endsWith(c);
    return name.equals(c) || name.endsWith("." + c);
  }

  /** The anchor's permitted dNSName and URI subtrees; an anchor without name constraints permits nothing. */
  private static void permitted(X509Certificate anchor, List<String> dns, List<String> uriHosts) throws CertificateException {
    byte[] ext = anchor.getExtensionValue("2.5.29.30");
    if (ext == null) throw new CertificateException("trellis scope check: anchor " + anchor.getSubjectX500Principal() + " carries no name constraints");
    Der outer = new Der(ext, 0);                    // OCTET STRING
    Der nc = new Der(ext, outer.start);             // NameConstraints SEQUENCE
    for (int at = nc.start; at < nc.end; ) {
      Der subtrees = new Der(ext, at);
      if (subtrees.tag == 0xa0) {                   // permittedSubtrees [0]
        for (int s = subtrees.start; s < subtrees.end; ) {
          Der subtree = new Der(ext, s);            // GeneralSubtree SEQUENCE
          Der base = new Der(ext, subtree.start);   // GeneralName
          String value = new String(ext, base.start, base.end - base.start, java.nio.charset.StandardCharsets.US_ASCII);
          if (base.tag == 0x82) dns.add(value);
          if (base.tag == 0x86) uriHosts.add(value);
          s = subtree.end;
        }
      }
      at = subtrees.end;
    }
  }

  /** One DER TLV: its tag, where its content starts and where it ends. */
  private static final class Der {
    final int tag, start, end;
    Der(byte[] b, int at) throws CertificateException {
      if (at + 2 > b.length) throw new CertificateException("trellis scope check: truncated name constraints");
      tag = b[at] & 0xff;
      int len = b[at + 1] & 0xff, p = at + 2;
      if (len >= 0x80) {
        int n = len & 0x7f;
        if (n < 1 || n > 3 || p + n > b.length) throw new CertificateException("trellis scope check: bad length in name constraints");
        len = 0;
        for (int i = 0; i < n; i++) len = (len << 8) | (b[p++] & 0xff);
      }
      start = p;
      end = p + len;
      if (end > b.length) throw new CertificateException("trellis scope check: truncated name constraints");
    }
  }
}
