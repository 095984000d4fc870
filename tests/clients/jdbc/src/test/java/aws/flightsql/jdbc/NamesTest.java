package aws.flightsql.jdbc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Names as BI tools send them: metadata asked in the case the driver says it stores
 * identifiers in, unquoted names in whatever case the user typed; quoted names stay exact.
 */
class NamesTest {

  @Test
  void metadataInTheCaseTheDriverAsksFor() throws Exception {
    try (Connection conn = Stack.get().connect()) {
      DatabaseMetaData meta = conn.getMetaData();
      // What sqlline's !columns and DBeaver's navigator do: fold to the stored case.
      String table = "store_image_tasks";
      String asked =
          meta.storesUpperCaseIdentifiers()
              ? table.toUpperCase()
              : meta.storesLowerCaseIdentifiers() ? table.toLowerCase() : table;
      for (String name : List.of(asked, "STORE_IMAGE_TASKS", "Store_Image_Tasks", table)) {
        List<Map<String, Object>> columns =
            DatabaseMetaDataTest.rows(meta.getColumns(null, null, name, "%"));
        assertEquals(
            DatabaseMetaDataTest.COLUMNS,
            DatabaseMetaDataTest.column(columns, "COLUMN_NAME"),
            "getColumns(" + name + ")");
        List<Map<String, Object>> tables =
            DatabaseMetaDataTest.rows(meta.getTables(null, name.equals(table) ? "ec2" : "EC2", name, null));
        assertEquals(List.of(table), DatabaseMetaDataTest.column(tables, "TABLE_NAME"), name);
      }
      // A column pattern is matched by the driver itself, case-sensitively (its
      // sqlToRegexLike): the exact name finds the column, a folded one cannot (README).
      List<Map<String, Object>> amiId =
          DatabaseMetaDataTest.rows(meta.getColumns(null, null, "STORE_IMAGE_TASKS", "amiId"));
      assertEquals(List.of("amiId"), DatabaseMetaDataTest.column(amiId, "COLUMN_NAME"));
    }
  }

  @Test
  void unquotedNamesInAnyCaseQuotedExact() throws Exception {
    Stack stack = Stack.get();
    int tasks = stack.taskAmis("eu-west-1").size();
    try (Connection conn = stack.connect();
        Statement st = conn.createStatement()) {
      for (String sql :
          List.of(
              "SELECT AMIID, REGION FROM STORE_IMAGE_TASKS WHERE REGION = 'eu-west-1'",
              "select amiid, region from aws.ec2.store_image_tasks where region = 'eu-west-1'",
              "SELECT AmiId, Region FROM Aws.Ec2.Store_Image_Tasks WHERE Region = 'eu-west-1'",
              "SELECT \"amiId\", \"region\" FROM store_image_tasks WHERE region = 'eu-west-1'")) {
        try (ResultSet rs = st.executeQuery(sql)) {
          assertEquals("amiId", rs.getMetaData().getColumnLabel(1), sql);
          assertEquals("region", rs.getMetaData().getColumnLabel(2), sql);
          int n = 0;
          while (rs.next()) {
            assertTrue(rs.getString(1).startsWith("ami-"));
            n++;
          }
          assertEquals(tasks, n, sql);
        }
      }
      try (PreparedStatement ps =
          conn.prepareStatement(
              "SELECT COUNT(*) FROM STORE_IMAGE_TASKS WHERE REGION = ? AND STORETASKSTATE = ?")) {
        ps.setString(1, "eu-west-1");
        ps.setString(2, "Completed");
        try (ResultSet rs = ps.executeQuery()) {
          assertTrue(rs.next());
          assertTrue(rs.getLong(1) > 0);
        }
      }
      SQLException e =
          assertThrows(SQLException.class, () -> st.executeQuery("SELECT \"AMIID\" FROM store_image_tasks"));
      assertTrue(e.getMessage().contains("amiId"), "suggests the real name: " + e.getMessage());
      assertFalse(
          e.getMessage().contains("enable_ident_normalization"),
          "no advice a user cannot act on: " + e.getMessage());
    }
  }
}
