package aws.flightsql.jdbc;

import java.io.IOException;
import java.io.OutputStream;
import java.io.Writer;
import java.math.BigInteger;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A second stack for the security tests: the EC2 emulator and the aws-flightsql server with
 * TLS (a CA and a server certificate for 127.0.0.1 made at run time with BouncyCastle) and a
 * users file (alice writes, bob reads; hashed by {@code aws-flightsql hash-password}). Started
 * once for the test run; stopped when the JVM exits.
 */
final class SecureStack {
  static final String[] ALICE = {"alice", "alice-jdbc-password"};
  static final String[] BOB = {"bob", "bob-jdbc-password"};

  private static SecureStack instance;

  final String emulatorUrl;
  final int port;
  final Path caPem;
  private final Binaries binaries = new Binaries();

  private SecureStack() throws Exception {
    String binDir = Binaries.DIR;
    Path dir = Files.createTempDirectory("aws-flightsql-jdbc-tls-");
    binaries.deleteOnStop(dir);
    caPem = dir.resolve("ca.pem");
    Path certPem = dir.resolve("server.pem");
    Path keyPem = dir.resolve("server.key");
    writeCertificates(caPem, certPem, keyPem);
    Path users = dir.resolve("users.toml");
    Files.writeString(
        users,
        hash(binDir, ALICE, "write") + "\n" + hash(binDir, BOB, "read"),
        StandardCharsets.UTF_8);
    emulatorUrl =
        binaries.start(
            List.of(
                binDir + "/ec2-emulator",
                "--listen", "127.0.0.1:0",
                "--regions", "us-east-1,eu-west-1",
                "--tasks-per-region", "12",
                "--seed", "3",
                "--freeze-time"),
            "ec2-emulator listening on ");
    String uri =
        binaries.start(
            List.of(
                binDir + "/aws-flightsql", "serve",
                "--listen", "127.0.0.1:0",
                "--endpoint-url", emulatorUrl,
                "--regions", "us-east-1,eu-west-1",
                "--tls-cert", certPem.toString(),
                "--tls-key", keyPem.toString(),
                "--users-file", users.toString()),
            "aws-flightsql listening on ");
    if (!uri.startsWith("grpc+tls://")) {
      throw new IOException("the server did not serve TLS: " + uri);
    }
    port = URI.create(uri.replace("grpc+tls://", "https://")).getPort();
  }

  static synchronized SecureStack get() throws Exception {
    if (instance == null) {
      instance = new SecureStack();
    }
    return instance;
  }

  /** The JDBC URL of the server with these {@code key=value} parameters. */
  String url(String... parameters) {
    StringBuilder url = new StringBuilder("jdbc:arrow-flight-sql://127.0.0.1:" + port + "?");
    url.append(String.join("&", parameters));
    return url.toString();
  }

  /** A users file entry for {@code user}, from {@code hash-password} reading stdin. */
  private static String hash(String binDir, String[] user, String role) throws Exception {
    Process p =
        new ProcessBuilder(
                binDir + "/aws-flightsql", "hash-password", "--user", user[0], "--role", role)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    try (OutputStream in = p.getOutputStream()) {
      in.write((user[1] + "\n").getBytes(StandardCharsets.UTF_8));
    }
    String entry = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0 || !entry.contains("password_hash")) {
      throw new IOException("hash-password failed: " + entry);
    }
    return entry;
  }

  /** A CA, and a server certificate for 127.0.0.1 and localhost signed by it, as PEM. */
  private static void writeCertificates(Path caPem, Path certPem, Path keyPem) throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(256);
    Date from = Date.from(Instant.now().minus(Duration.ofDays(1)));
    Date to = Date.from(Instant.now().plus(Duration.ofDays(1)));

    KeyPair caKeys = generator.generateKeyPair();
    X500Name caName = new X500Name("CN=aws-flightsql JDBC test CA");
    ContentSigner caSigner = new JcaContentSignerBuilder("SHA256withECDSA").build(caKeys.getPrivate());
    X509CertificateHolder ca =
        new JcaX509v3CertificateBuilder(caName, BigInteger.ONE, from, to, caName, caKeys.getPublic())
            .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
            .addExtension(
                Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
            .build(caSigner);

    KeyPair serverKeys = generator.generateKeyPair();
    X509CertificateHolder server =
        new JcaX509v3CertificateBuilder(
                caName, BigInteger.TWO, from, to, new X500Name("CN=localhost"), serverKeys.getPublic())
            .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
            .addExtension(
                Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth))
            .addExtension(
                Extension.subjectAlternativeName,
                false,
                new GeneralNames(
                    new GeneralName[] {
                      new GeneralName(GeneralName.iPAddress, "127.0.0.1"),
                      new GeneralName(GeneralName.dNSName, "localhost")
                    }))
            .build(caSigner);

    writePem(caPem, ca);
    writePem(certPem, server);
    writePem(keyPem, new JcaPKCS8Generator(serverKeys.getPrivate(), null));
  }

  private static void writePem(Path path, Object object) throws IOException {
    try (Writer file = Files.newBufferedWriter(path, StandardCharsets.UTF_8);
        JcaPEMWriter pem = new JcaPEMWriter(file)) {
      pem.writeObject(object);
    }
  }

}
