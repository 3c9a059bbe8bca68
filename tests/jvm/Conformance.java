// The JVM's two columns of the conformance table (tests/conformance.test.ts), every row in one JVM:
// Java 17's PKIX CertPathValidator on the presented chain, and a real JSSE mTLS handshake on
// 127.0.0.1 whose judging side is configured as docs/jvm.md tells a JVM consumer (the anchors as
// PKIX trust anchors, the CRLs as a CertStore, revocation on). No scope check: the table shows what
// Java itself does.
// Usage: java Conformance.java CASES
// CASES has one case per line, tab-separated: id, purpose (client|server), then files: the presented
// chain (leaf first), its key, the judge's anchors, its CRLs ("-" for none), the judge's own chain and key.
// Prints, per case: "id<TAB>pkix|jsse<TAB>accepted|refused<TAB>what Java said".
import java.io.*;
import java.net.*;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.*;
import java.util.concurrent.*;
import javax.net.ssl.*;

public class Conformance {
  public static void main(String[] args) throws Exception {
    ExecutorService pool = Executors.newCachedThreadPool();
    for (String line : Files.readAllLines(Path.of(args[0]))) {
      if (line.isBlank()) continue;
      String[] f = line.split("\t");
      String id = f[0];
      boolean client = f[1].equals("client");
      List<X509Certificate> chain = certs(f[2]);
      List<X509Certificate> anchors = certs(f[4]);
      Collection<? extends CRL> crls = f[5].equals("-") ? List.of() : crls(f[5]);
      PKIXParameters params = params(anchors, crls);
      System.out.println(id + "\tpkix\t" + pkix(chain, anchors, params));
      System.out.println(id + "\tjsse\t" + jsse(pool, client, chain, key(f[3]), anchors, crls, certs(f[6]), key(f[7])));
    }
    pool.shutdownNow();
  }

  /** CertPathValidator on the chain as sent, less any trailing certificate that is itself an anchor (as JSSE does). */
  static String pkix(List<X509Certificate> chain, List<X509Certificate> anchors, PKIXParameters params) {
    List<X509Certificate> path = new ArrayList<>(chain);
    while (path.size() > 1 && anchors.contains(path.get(path.size() - 1))) path.remove(path.size() - 1);
    try {
      CertPath cp = CertificateFactory.getInstance("X.509").generateCertPath(path);
      CertPathValidator.getInstance("PKIX").validate(cp, params);
      return "accepted\tOK";
    } catch (Exception e) {
      return "refused\t" + words(e);
    }
  }

  static PKIXParameters params(List<X509Certificate> anchors, Collection<? extends CRL> crls) throws Exception {
    Set<TrustAnchor> set = new HashSet<>();
    for (X509Certificate a : anchors) set.add(new TrustAnchor(a, null));
    PKIXParameters p = new PKIXBuilderParameters(set, new X509CertSelector());
    if (crls.isEmpty()) {
      p.setRevocationEnabled(false);
    } else {
      p.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(crls)));
      p.setRevocationEnabled(true);
    }
    return p;
  }

  /** One handshake: the presented side sends its chain and trusts anything; the judge is docs/jvm.md's configuration. */
  static String jsse(ExecutorService pool, boolean client, List<X509Certificate> chain, PrivateKey key,
      List<X509Certificate> anchors, Collection<? extends CRL> crls, List<X509Certificate> peerChain, PrivateKey peerKey) {
    try {
      SSLContext judge = context(peerChain, peerKey, judgeTrust(anchors, crls));
      SSLContext presenter = context(chain, key, new TrustManager[] { new TrustAll() });
      SSLContext server = client ? judge : presenter, clientCtx = client ? presenter : judge;
      try (SSLServerSocket listener = (SSLServerSocket) server.getServerSocketFactory().createServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
        listener.setNeedClientAuth(true);
        Future<String> serverSide = pool.submit(() -> {
          try (SSLSocket s = (SSLSocket) listener.accept()) {
            s.setSoTimeout(5_000);
            s.startHandshake();
            s.getOutputStream().write(1);
            s.getOutputStream().flush();
            s.getInputStream().read(); // the client's close: its verdict arrived
            return null;
          } catch (Exception e) {
            return words(e);
          }
        });
        String clientSide = null;
        try (SSLSocket s = (SSLSocket) clientCtx.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), listener.getLocalPort())) {
          s.setSoTimeout(5_000);
          s.startHandshake();
          if (s.getInputStream().read() != 1) clientSide = "closed by the server";
        } catch (Exception e) {
          clientSide = words(e);
        }
        String serverWords = serverSide.get(10, TimeUnit.SECONDS);
        String judged = client ? serverWords : clientSide;
        return judged == null ? "accepted\tOK" : "refused\t" + judged;
      }
    } catch (Exception e) {
      return "refused\tsetup: " + words(e);
    }
  }

  static TrustManager[] judgeTrust(List<X509Certificate> anchors, Collection<? extends CRL> crls) throws Exception {
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    for (int i = 0; i < anchors.size(); i++) trust.setCertificateEntry("anchor-" + i, anchors.get(i));
    PKIXBuilderParameters params = new PKIXBuilderParameters(trust, new X509CertSelector());
    if (crls.isEmpty()) {
      params.setRevocationEnabled(false);
    } else {
      params.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(crls)));
      params.setRevocationEnabled(true);
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
    tmf.init(new CertPathTrustManagerParameters(params));
    return tmf.getTrustManagers();
  }

  static SSLContext context(List<X509Certificate> chain, PrivateKey key, TrustManager[] tms) throws Exception {
    char[] pw = "conformance".toCharArray();
    KeyStore ks = KeyStore.getInstance("PKCS12");
    ks.load(null, null);
    ks.setKeyEntry("me", key, pw, chain.toArray(new X509Certificate[0]));
    KeyManagerFactory kmf = KeyManagerFactory.getInstance("PKIX");
    kmf.init(ks, pw);
    SSLContext ctx = SSLContext.getInstance("TLSv1.3");
    ctx.init(kmf.getKeyManagers(), tms, null);
    return ctx;
  }

  /** The presenting side does not judge. */
  static final class TrustAll implements X509TrustManager {
    public void checkClientTrusted(X509Certificate[] c, String a) {}
    public void checkServerTrusted(X509Certificate[] c, String a) {}
    public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
  }

  /** Every message down the cause chain, on one line: Java's reason is usually the innermost. */
  static String words(Throwable e) {
    StringBuilder b = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (b.length() > 0) b.append(" <- ");
      b.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage());
      if (t instanceof CertPathValidatorException v && v.getReason() != null) b.append(" [").append(v.getReason()).append(']');
    }
    return b.toString().replace('\n', ' ').replace('\t', ' ');
  }

  static List<X509Certificate> certs(String file) throws Exception {
    try (InputStream in = Files.newInputStream(Path.of(file))) {
      List<X509Certificate> out = new ArrayList<>();
      for (java.security.cert.Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) out.add((X509Certificate) c);
      return out;
    }
  }

  static Collection<? extends CRL> crls(String file) throws Exception {
    try (InputStream in = Files.newInputStream(Path.of(file))) {
      return CertificateFactory.getInstance("X.509").generateCRLs(in);
    }
  }

  static PrivateKey key(String file) throws Exception {
    String pem = Files.readString(Path.of(file)).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    byte[] der = Base64.getDecoder().decode(pem);
    for (String alg : List.of("EC", "Ed25519", "RSA")) {
      try {
        return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
      } catch (GeneralSecurityException e) {
        // try the next algorithm
      }
    }
    throw new GeneralSecurityException("no key factory reads " + file);
  }
}
