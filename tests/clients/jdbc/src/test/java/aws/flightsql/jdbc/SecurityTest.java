package aws.flightsql.jdbc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The JDBC driver against a server with TLS and a users file, as DBeaver or Tableau connect:
 * encryption without certificate verification, encryption with the test CA trusted
 * ({@code tlsRootCerts}), user and password (the driver's handshake and bearer token), and
 * the refusals: plaintext to a TLS port, wrong passwords, a read user's INSERT.
 */
class SecurityTest {

  private static String login(String[] user) {
    return "user=" + user[0] + "&password=" + user[1];
  }

  private static long count(Connection conn) throws SQLException {
    try (Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery("SELECT count(*) AS n FROM store_image_tasks")) {
      assertTrue(rs.next());
      return rs.getLong(1);
    }
  }

  @Test
  void encryptionWithoutCertificateVerification() throws Exception {
    SecureStack stack = SecureStack.get();
    String url =
        stack.url("useEncryption=true", "disableCertificateVerification=true", login(SecureStack.BOB));
    try (Connection conn = DriverManager.getConnection(url)) {
      assertEquals(24, count(conn));
    }
  }

  @Test
  void encryptionWithTheCaTrusted() throws Exception {
    SecureStack stack = SecureStack.get();
    String url =
        stack.url(
            "useEncryption=true",
            "useSystemTrustStore=false",
            "tlsRootCerts=" + stack.caPem,
            login(SecureStack.BOB));
    try (Connection conn = DriverManager.getConnection(url)) {
      assertEquals(24, count(conn));
      // Metadata calls carry the token too.
      try (ResultSet tables = conn.getMetaData().getTables(null, null, "store_image_tasks", null)) {
        assertTrue(tables.next());
      }
    }
  }

  @Test
  void plaintextToTheTlsPortFails() throws Exception {
    SecureStack stack = SecureStack.get();
    String url = stack.url("useEncryption=false", login(SecureStack.BOB));
    assertThrows(
        SQLException.class,
        () -> {
          try (Connection conn = DriverManager.getConnection(url)) {
            count(conn);
          }
        });
  }

  @Test
  void wrongPasswordsAreRefused() throws Exception {
    SecureStack stack = SecureStack.get();
    String url =
        stack.url(
            "useEncryption=true",
            "disableCertificateVerification=true",
            "user=bob&password=not-bobs-password");
    SQLException e =
        assertThrows(
            SQLException.class,
            () -> {
              try (Connection conn = DriverManager.getConnection(url)) {
                count(conn);
              }
            });
    String chain = messages(e);
    assertTrue(chain.contains("UNAUTHENTICATED") || chain.contains("wrong user name"), chain);
    assertFalse(chain.contains("not-bobs-password"), chain);
  }

  @Test
  void aReadUserCannotInsertAndAWriteUserCan() throws Exception {
    SecureStack stack = SecureStack.get();
    String state = get(stack.emulatorUrl + "/_emulator/state");
    Matcher m =
        Pattern.compile("\"eu-west-1\":\\{\"amis\":\\[\"(ami-[0-9a-f]+)\"[^\\]]*\\],\"buckets\":\\[\"([^\"]+)\"")
            .matcher(state);
    assertTrue(m.find(), state);
    String insert =
        "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('eu-west-1', '"
            + m.group(1) + "', '" + m.group(2) + "')";
    String tls = "useEncryption=true&disableCertificateVerification=true";

    try (Connection conn = DriverManager.getConnection(stack.url(tls, login(SecureStack.BOB)));
        Statement st = conn.createStatement()) {
      // GetSqlInfo tells a read user the server is read-only (BI tools then offer no edits).
      assertTrue(conn.getMetaData().isReadOnly(), "read user: isReadOnly");
      long before = count(conn);
      SQLException e = assertThrows(SQLException.class, () -> st.executeUpdate(insert));
      String chain = messages(e);
      assertTrue(chain.contains("role `read`"), chain);
      assertEquals(before, count(conn));
    }
    try (Connection conn = DriverManager.getConnection(stack.url(tls, login(SecureStack.ALICE)));
        Statement st = conn.createStatement()) {
      assertFalse(conn.getMetaData().isReadOnly(), "write user: isReadOnly");
      long before = count(conn);
      assertEquals(1, st.executeUpdate(insert));
      assertEquals(before + 1, count(conn));
    }
  }

  private static String messages(Throwable e) {
    StringBuilder all = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      all.append(t).append('\n');
    }
    return all.toString();
  }

  private static String get(String url) throws Exception {
    HttpResponse<String> response =
        HttpClient.newHttpClient()
            .send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, response.statusCode(), response.body());
    return response.body();
  }
}
