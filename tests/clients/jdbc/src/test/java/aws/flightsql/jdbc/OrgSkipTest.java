package aws.flightsql.jdbc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.arrow.driver.jdbc.ArrowFlightJdbcFlightStreamResultSet;
import org.junit.jupiter.api.Test;

/**
 * An organization through the Flight SQL JDBC driver with {@code SET aws.on_account_error =
 * 'skip'}: the account whose role cannot be assumed is left out of the rows, and the one place
 * the driver exposes the report, the FlightInfo's app_metadata
 * ({@code ArrowFlightJdbcFlightStreamResultSet.getAppMetadata()}), names it with AWS's code.
 */
class OrgSkipTest {
  private static final String REFUSED = "100000000002";

  private static String role(String account) {
    return "arn:aws:iam::" + account + ":role/reader";
  }

  @Test
  void skippedAccountsAreInTheAppMetadata() throws Exception {
    Binaries binaries = new Binaries();
    String regions = String.join(",", Stack.REGIONS);
    String emulator =
        binaries.start(
            List.of(
                Binaries.DIR + "/ec2-emulator",
                "--listen", "127.0.0.1:0",
                "--regions", regions,
                "--accounts", "3",
                "--tasks-per-region", "5",
                "--freeze-time",
                "--unassumable-role", role(REFUSED)),
            "ec2-emulator listening on ");
    String uri =
        binaries.start(
            List.of(
                Binaries.DIR + "/aws-flightsql", "serve",
                "--listen", "127.0.0.1:0",
                "--endpoint-url", emulator,
                "--regions", regions,
                "--account", "100000000001=" + role("100000000001"),
                "--account", REFUSED + "=" + role(REFUSED)),
            "aws-flightsql listening on ");
    int port = URI.create(uri.replace("grpc://", "http://")).getPort();
    String url =
        "jdbc:arrow-flight-sql://127.0.0.1:" + port + "?useEncryption=false&timeZone=UTC";
    try (Connection conn = DriverManager.getConnection(url);
        Statement st = conn.createStatement()) {
      st.execute("SET aws.on_account_error = 'skip'");
      try (ResultSet rs = st.executeQuery("SELECT DISTINCT account FROM store_image_tasks")) {
        Set<String> accounts = new HashSet<>();
        while (rs.next()) {
          accounts.add(rs.getString(1));
        }
        assertEquals(Set.of("111111111111", "100000000001"), accounts);
        byte[] app = rs.unwrap(ArrowFlightJdbcFlightStreamResultSet.class).getAppMetadata();
        assertNotNull(app);
        String report = new String(app, StandardCharsets.UTF_8);
        assertTrue(report.startsWith("{\"aws_flightsql.skipped_accounts\":["), report);
        assertTrue(report.contains("\"account\":\"" + REFUSED + "\""), report);
        assertTrue(report.contains("\"code\":\"AccessDenied\""), report);
        assertTrue(report.contains("\"role_arn\":\"" + role(REFUSED) + "\""), report);
      }
    }
  }
}
