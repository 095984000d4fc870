package aws.flightsql.jdbc;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Queries, prepared statements, updates and sessions as JVM tools run them. */
class StatementsTest {

  @Test
  void selectStarReadsEveryColumnWithGetObject() throws Exception {
    Stack stack = Stack.get();
    Map<String, List<String>> amis = new HashMap<>();
    try (Connection conn = stack.connect();
        Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery("SELECT * FROM aws.ec2.store_image_tasks")) {
      ResultSetMetaData md = rs.getMetaData();
      assertEquals(DatabaseMetaDataTest.COLUMNS.size(), md.getColumnCount());
      for (int i = 1; i <= md.getColumnCount(); i++) {
        assertEquals(DatabaseMetaDataTest.COLUMNS.get(i - 1), md.getColumnName(i));
        assertEquals("store_image_tasks", md.getTableName(i));
        assertEquals("ec2", md.getSchemaName(i));
        assertEquals("aws", md.getCatalogName(i));
      }
      assertEquals("VARCHAR", md.getColumnTypeName(3));
      assertEquals("INTEGER", md.getColumnTypeName(5));
      // Driver 18.x never fills in nullability (Avatica's default, columnNoNulls, for every
      // column); getColumns' IS_NULLABLE carries it (DatabaseMetaDataTest).
      md.isNullable(3);
      int failed = 0;
      while (rs.next()) {
        for (int i = 1; i <= md.getColumnCount(); i++) {
          getObject(rs, i);
        }
        String region = (String) rs.getObject("region");
        amis.computeIfAbsent(region, r -> new ArrayList<>()).add((String) rs.getObject("amiId"));
        assertInstanceOf(Integer.class, rs.getObject("progressPercentage"));
        assertInstanceOf(Timestamp.class, rs.getObject("taskStartTime"));
        assertNotNull(rs.getTimestamp("taskStartTime"));
        if ("Failed".equals(rs.getObject("storeTaskState"))) {
          assertNotNull(rs.getObject("storeTaskFailureReason"));
          failed++;
        } else {
          assertNull(rs.getObject("storeTaskFailureReason"));
        }
      }
      assertTrue(failed > 0, "sample data has failed tasks");
    }
    for (String region : Stack.REGIONS) {
      List<String> want = stack.taskAmis(region);
      List<String> got = amis.getOrDefault(region, List.of());
      Collections.sort(want);
      Collections.sort(got);
      assertEquals(want, got, region);
    }
  }

  /**
   * {@code rs.getObject(i)}, as DBeaver and most BI tools read every cell. It works for every
   * column with every driver: the server sends JDBC clients timestamps without a zone (driver
   * 18.3.0's Avatica has no getObject(int) for TIMESTAMP_WITH_TIMEZONE, arrow-java#787).
   */
  static Object getObject(ResultSet rs, int i) throws SQLException {
    assertFalse(
        rs.getMetaData().getColumnType(i) == java.sql.Types.TIMESTAMP_WITH_TIMEZONE,
        "column " + i + " reaches JDBC as TIMESTAMP WITH TIME ZONE");
    return rs.getObject(i);
  }

  @Test
  void trivialQueriesAndInformationSchema() throws Exception {
    try (Connection conn = Stack.get().connect(); Statement st = conn.createStatement()) {
      try (ResultSet rs = st.executeQuery("SELECT 1")) {
        assertTrue(rs.next());
        assertEquals(1L, ((Number) rs.getObject(1)).longValue());
      }
      try (ResultSet rs = st.executeQuery("SELECT version()")) {
        assertTrue(rs.next());
        assertFalse(rs.getString(1).isEmpty());
      }
      try (ResultSet rs =
          st.executeQuery(
              "SELECT table_name, column_name, data_type FROM information_schema.columns "
                  + "WHERE table_name = 'store_image_tasks' ORDER BY ordinal_position")) {
        List<String> names = new ArrayList<>();
        while (rs.next()) {
          names.add(rs.getString("column_name"));
          rs.getObject("data_type");
        }
        assertEquals(DatabaseMetaDataTest.COLUMNS, names);
      }
      try (ResultSet rs = st.executeQuery("SELECT * FROM information_schema.tables")) {
        int n = 0;
        while (rs.next()) {
          for (int i = 1; i <= rs.getMetaData().getColumnCount(); i++) {
            getObject(rs, i);
          }
          n++;
        }
        assertTrue(n > 3);
      }
    }
  }

  @Test
  void preparedStatementWithBoundParameters() throws Exception {
    Stack stack = Stack.get();
    String ami = stack.taskAmis("us-west-2").get(0);
    long want = stack.taskAmis("us-west-2").stream().filter(ami::equals).count();
    try (Connection conn = stack.connect();
        PreparedStatement ps =
            conn.prepareStatement(
                "SELECT amiId, region, progressPercentage FROM store_image_tasks "
                    + "WHERE region = ? AND amiId = ?")) {
      assertEquals(2, ps.getParameterMetaData().getParameterCount());
      for (int round = 0; round < 2; round++) {
        ps.setString(1, "us-west-2");
        ps.setString(2, ami);
        int n = 0;
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            assertEquals(ami, rs.getObject(1));
            assertEquals("us-west-2", rs.getObject(2));
            n++;
          }
        }
        assertEquals(want, n, "round " + round);
      }
      ps.setString(1, "eu-west-1");
      ps.setString(2, "ami-00000000");
      try (ResultSet rs = ps.executeQuery()) {
        assertFalse(rs.next());
      }
    }
  }

  @Test
  void executeUpdateOfAnInsertCreatesTheTask() throws Exception {
    Stack stack = Stack.get();
    Map.Entry<List<String>, String> storable = stack.storable("eu-west-1");
    String ami = storable.getKey().get(0);
    String bucket = storable.getValue();
    try (Connection conn = stack.connect(); Statement st = conn.createStatement()) {
      int n =
          st.executeUpdate(
              "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('eu-west-1', '"
                  + ami + "', '" + bucket + "')");
      assertEquals(1, n);
    }
    assertEquals(1, Collections.frequency(stack.taskAmis("eu-west-1"), ami));

    String second = storable.getKey().get(1);
    try (Connection conn = stack.connect();
        PreparedStatement ps =
            conn.prepareStatement(
                "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES (?, ?, ?)")) {
      ps.setString(1, "eu-west-1");
      ps.setString(2, second);
      ps.setString(3, bucket);
      assertEquals(1, ps.executeUpdate());
    }
    assertEquals(1, Collections.frequency(stack.taskAmis("eu-west-1"), second));
  }

  @Test
  void executeUpdateWithAwaitReturnsTheCountOnceTheTaskEnded() throws Exception {
    Stack stack = Stack.get();
    Map.Entry<List<String>, String> storable = stack.storable("eu-west-1");
    String ami = storable.getKey().get(2);
    String insert =
        "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) VALUES ('eu-west-1', '"
            + ami + "', '" + storable.getValue() + "')";
    try (Connection conn = stack.connect(); Statement st = conn.createStatement()) {
      st.execute("SET aws.await_interval = '1s'");
      CompletableFuture<Integer> awaiting =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return st.executeUpdate(insert);
                } catch (SQLException e) {
                  throw new CompletionException(e);
                }
              });
      // The task is created; the emulator's clock is frozen, so it runs until the clock
      // moves, and the update waits for it.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!stack.taskAmis("eu-west-1").contains(ami)) {
        assertFalse(awaiting.isDone(), () -> "the update ended early: " + awaiting.join());
        assertTrue(System.nanoTime() < deadline, "the task was never created");
        Thread.sleep(20);
      }
      assertFalse(awaiting.isDone(), "AWAIT returned while its task was in progress");
      // Past the emulator's task duration (60 s): the task completes, the next poll sees it.
      stack.configure("{\"advance_seconds\": 61}");
      assertEquals(1, awaiting.get(60, TimeUnit.SECONDS), "executeUpdate returns the count");
    }
    assertEquals(1, Collections.frequency(stack.taskAmis("eu-west-1"), ami), "created once");
  }

  @Test
  void setInTheSessionIsKeptByTheDriverAndReachesInsert() throws Exception {
    Stack stack = Stack.get();
    Map.Entry<List<String>, String> storable = stack.storable("us-east-1");
    String ami = storable.getKey().get(2);
    int before = stack.taskAmis("us-east-1").size();
    try (Connection conn = stack.connect(); Statement st = conn.createStatement()) {
      assertFalse(st.execute("SET aws.dry_run = true"), "SET has no result set");
      try (ResultSet rs =
          st.executeQuery(
              "SELECT value FROM information_schema.df_settings "
                  + "WHERE name = 'datafusion.execution.batch_size'")) {
        assertTrue(rs.next());
        assertEquals("8192", rs.getString(1));
      }
      int n =
          st.executeUpdate(
              "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('us-east-1', '"
                  + ami + "', '" + storable.getValue() + "')");
      assertEquals(0, n, "a dry run creates nothing and says so");
    }
    assertEquals(before, stack.taskAmis("us-east-1").size(), "nothing created in a dry run");

    SQLException err =
        assertThrows(
            SQLException.class,
            () -> {
              try (Connection conn = stack.connect(); Statement st = conn.createStatement()) {
                st.execute("SET aws.no_such_setting = 1");
              }
            });
    assertTrue(String.valueOf(err.getMessage()).contains("no_such_setting"), err.toString());
  }

  @Test
  void catalogInTheUrlAndLongUrlParameters() throws Exception {
    // catalog= becomes SetSessionOptions; unknown parameters travel as headers (20 KB here).
    String longValue = "x".repeat(20 * 1024);
    Connection conn = Stack.get().connect("catalog=aws", "x-long-parameter=" + longValue);
    try (Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery("SELECT count(*) FROM ec2.store_image_tasks")) {
      assertTrue(rs.next());
      assertTrue(rs.getLong(1) >= (long) Stack.TASKS_PER_REGION * Stack.REGIONS.size());
    }
    try {
      conn.close();
      assertTrue(conn.isClosed());
    } catch (SQLException e) {
      // arrow-java#66, drivers 17.x and 18.x: with catalog= set, close() closes the client
      // handler twice, and the second CloseSession finds its own channel shut down. The
      // server answered the first one; nothing else may go wrong.
      assertTrue(String.valueOf(e.getMessage()).contains("Channel shutdown invoked"), e.toString());
    }
  }

  @Test
  void errorsCarryTheServerMessageAndCloseNeverThrows() throws Exception {
    Connection conn = Stack.get().connect();
    Statement st = conn.createStatement();
    SQLException err =
        assertThrows(SQLException.class, () -> st.executeQuery("SELECT nope FROM store_image_tasks"));
    assertTrue(String.valueOf(err.getMessage()).contains("nope"), err.toString());
    SQLException refused =
        assertThrows(SQLException.class, () -> st.executeUpdate("DELETE FROM store_image_tasks"));
    assertTrue(String.valueOf(refused.getMessage()).contains("SELECT and INSERT"), refused.toString());
    try (ResultSet rs = st.executeQuery("SELECT 1 AS one")) {
      assertTrue(rs.next());
    }
    assertDoesNotThrow(st::close);
    assertDoesNotThrow(conn::close);
    assertTrue(conn.isClosed());
  }
}
