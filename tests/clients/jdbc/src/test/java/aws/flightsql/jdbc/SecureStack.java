package aws.flightsql.jdbc;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
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
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
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
  private final List<Process> processes = new ArrayList<>();

  private SecureStack() throws Exception {
    String binDir =
        System.getenv()
            .getOrDefault(
                "AWS_FLIGHTSQL_BIN_DIR",
                System.getProperty("user.home") + "/.cache/aws-flightsql/target/debug");
    Runtime.getRuntime().addShutdownHook(new Thread(this::stop));
    Path dir = Files.createTempDirectory("aws-flightsql-jdbc-tls-");
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
        start(
            List.of(
                binDir + "/ec2-emulator",
                "--listen", "127.0.0.1:0",
                "--regions", "us-east-1,eu-west-1",
                "--tasks-per-region", "12",
                "--seed", "3",
                "--freeze-time"),
            "ec2-emulator listening on ");
    String uri =
        start(
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

  private String start(List<String> command, String marker) throws IOException {
    if (!new File(command.get(0)).canExecute()) {
      throw new IOException(
          command.get(0) + " does not exist: build it first (cargo build --workspace --bins)"
              + " or set AWS_FLIGHTSQL_BIN_DIR");
    }
    Path log = Files.createTempFile("aws-flightsql-jdbc-tls-", ".log");
    ProcessBuilder builder = new ProcessBuilder(command).redirectError(log.toFile());
    Map<String, String> env = builder.environment();
    env.put("AWS_ACCESS_KEY_ID", "AKIDJDBCTLS");
    env.put("AWS_SECRET_ACCESS_KEY", "jdbc-tls-secret");
    env.put("AWS_REGION", "us-east-1");
    env.put("AWS_EC2_METADATA_DISABLED", "true");
    env.put("RUST_LOG", "warn");
    Process process = builder.start();
    processes.add(process);
    BufferedReader out =
        new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<String> ready = new CompletableFuture<>();
    Thread reader =
        new Thread(
            () -> {
              try {
                String line;
                while ((line = out.readLine()) != null) {
                  if (!ready.isDone() && line.startsWith(marker)) {
                    ready.complete(line.substring(marker.length()).trim());
                  }
                }
              } catch (IOException e) {
                ready.completeExceptionally(e);
              }
              ready.completeExceptionally(new IOException("exited before it was ready"));
            });
    reader.setDaemon(true);
    reader.start();
    try {
      return ready.get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      process.destroyForcibly();
      throw new IOException(
          command.get(0) + " did not print '" + marker + "': " + e + "\n" + Files.readString(log), e);
    }
  }

  private void stop() {
    for (Process p : processes) {
      p.destroy();
      try {
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
          p.destroyForcibly();
        }
      } catch (InterruptedException e) {
        p.destroyForcibly();
      }
    }
  }
}
