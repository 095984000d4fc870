package aws.flightsql.jdbc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Calendar;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TimeZone;
import org.junit.jupiter.api.Test;

/**
 * What each way of reading and binding {@code taskStartTime} gives, compared with the instant
 * the emulator holds. Maven runs this class once per JVM zone (UTC, America/New_York,
 * Asia/Tokyo: see the surefire executions in pom.xml) and scripts/test.sh once per driver
 * version, so together it is the README's matrix. Every cell must be either the UTC wall-clock
 * time (what the README's URL gives everywhere) or the right local time, or a typed getter
 * the driver refuses with an exception; never a third value. Each run prints its row of the
 * matrix ({@code MATRIX driver zone url accessor: outcome}).
 */
class TimeZoneMatrixTest {
  private static final String VERSION = System.getProperty("flightsql.jdbc.version");
  private static final String ZONE = TimeZone.getDefault().getID();
  private static final String QUERY =
      "SELECT region, amiId, taskStartTime FROM store_image_tasks ORDER BY region, amiId, taskStartTime";

  /** How one accessor's value relates to the emulator's instant. */
  private static String judge(Object value, Instant truth) {
    LocalDateTime utcWall = LocalDateTime.ofInstant(truth, ZoneOffset.UTC);
    LocalDateTime localWall = LocalDateTime.ofInstant(truth, ZoneId.systemDefault());
    LocalDateTime shown;
    if (value instanceof Timestamp t) {
      // What a tool prints: Timestamp.toString, the wall time in the JVM's zone.
      shown = t.toLocalDateTime();
    } else if (value instanceof LocalDateTime l) {
      shown = l;
    } else if (value instanceof OffsetDateTime o) {
      return o.toInstant().equals(truth) ? "right instant" : "WRONG " + o;
    } else if (value instanceof String s) {
      shown = Timestamp.valueOf(s).toLocalDateTime();
    } else {
      return "WRONG type " + (value == null ? "null" : value.getClass().getName());
    }
    if (shown.equals(utcWall)) {
      return "UTC wall time";
    }
    if (shown.equals(localWall)) {
      return "right local time";
    }
    return "WRONG " + shown + " (UTC " + utcWall + ", local " + localWall + ")";
  }

  private interface Read {
    Object get(ResultSet rs) throws Exception;
  }

  private static Map<String, Read> accessors() {
    Map<String, Read> out = new LinkedHashMap<>();
    Calendar utc = Calendar.getInstance(TimeZone.getTimeZone("UTC"));
    out.put("getObject(int)", rs -> rs.getObject(3));
    out.put("getObject(label)", rs -> rs.getObject("taskStartTime"));
    out.put("getTimestamp(int)", rs -> rs.getTimestamp(3));
    out.put("getTimestamp(int, UTC calendar)", rs -> rs.getTimestamp(3, utc));
    out.put("getString(int)", rs -> rs.getString(3));
    out.put("getObject(int, LocalDateTime)", rs -> rs.getObject(3, LocalDateTime.class));
    out.put("getObject(int, OffsetDateTime)", rs -> rs.getObject(3, OffsetDateTime.class));
    return out;
  }

  /**
   * Reads every row through every accessor; returns accessor → outcome (the same for all
   * rows, or the test fails).
   */
  private static Map<String, String> readAll(Connection conn, List<String> tasks)
      throws Exception {
    Map<String, String> outcomes = new LinkedHashMap<>();
    int rows = 0;
    try (Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery(QUERY)) {
      while (rs.next()) {
        String key = rs.getString(1) + "/" + rs.getString(2);
        assertTrue(rows < tasks.size(), "more rows than the emulator's tasks");
        String task = tasks.get(rows);
        assertEquals(task.substring(0, task.lastIndexOf('/')), key, "row " + rows);
        Instant instant = instant(task);
        for (Map.Entry<String, Read> accessor : accessors().entrySet()) {
          String outcome;
          try {
            outcome = judge(accessor.getValue().get(rs), instant);
          } catch (Exception e) {
            outcome = "throws " + e.getClass().getSimpleName();
          }
          String before = outcomes.putIfAbsent(accessor.getKey(), outcome);
          // A wrong value differs from row to row (DST): the kind of outcome must not.
          if (before != null && !kind(before).equals(kind(outcome))) {
            fail(accessor.getKey() + " gave " + before + " and then " + outcome + " (" + key + ")");
          }
        }
        rows++;
      }
    }
    assertEquals(tasks.size(), rows, "every task the emulator holds");
    return outcomes;
  }

  /** An outcome without the example value of a wrong one. */
  private static String kind(String outcome) {
    return outcome.startsWith("WRONG") ? "WRONG" : outcome;
  }

  /** The instant of a {@code region/amiId/instant} task. */
  private static Instant instant(String task) {
    return Instant.parse(task.substring(task.lastIndexOf('/') + 1));
  }

  private static void print(String url, Map<String, String> outcomes) {
    outcomes.forEach(
        (accessor, outcome) ->
            System.out.printf("MATRIX %s %s %s %s: %s%n", VERSION, ZONE, url, accessor, outcome));
  }

  @Test
  void theReadmeUrlShowsTheUtcWallTimeThroughEveryAccessor() throws Exception {
    Stack stack = Stack.get();
    List<String> truth = stack.taskStartTimes();
    try (Connection conn = stack.connect()) {
      try (Statement st = conn.createStatement();
          ResultSet rs = st.executeQuery(QUERY)) {
        assertEquals(Types.TIMESTAMP, rs.getMetaData().getColumnType(3));
      }
      Map<String, String> outcomes = readAll(conn, truth);
      print("readme", outcomes);
      // What BI tools call never throws and never shifts.
      for (String accessor :
          List.of(
              "getObject(int)",
              "getObject(label)",
              "getTimestamp(int)",
              "getTimestamp(int, UTC calendar)",
              "getString(int)")) {
        assertEquals("UTC wall time", outcomes.get(accessor), accessor);
      }
      // Typed getters: the UTC wall time, or refused by the driver (18.1/18.2 have no
      // getObject(int, Class) for timestamps; a TIMESTAMP has no offset to give).
      for (String accessor :
          List.of("getObject(int, LocalDateTime)", "getObject(int, OffsetDateTime)")) {
        String outcome = outcomes.get(accessor);
        assertTrue(
            outcome.equals("UTC wall time") || outcome.startsWith("throws"),
            accessor + ": " + outcome);
      }
      if ("18.3.0".equals(VERSION)) {
        assertEquals("UTC wall time", outcomes.get("getObject(int, LocalDateTime)"));
      }
    }
  }

  @Test
  void boundTimestampsFilterTheRightRows() throws Exception {
    Stack stack = Stack.get();
    List<String> truth = stack.taskStartTimes();
    List<Instant> instants = new ArrayList<>(truth.stream().map(t -> instant(t)).toList());
    instants.sort(null);
    // The median start time, a day before the newest and an hour after the oldest: each
    // splits the tasks differently.
    List<Instant> cutoffs =
        List.of(
            instants.get(instants.size() / 2),
            instants.get(instants.size() - 1).minusSeconds(86_400),
            instants.get(0).plusSeconds(3_600));
    try (Connection conn = stack.connect();
        PreparedStatement ps =
            conn.prepareStatement("SELECT count(*) FROM store_image_tasks WHERE taskStartTime > ?")) {
      for (Instant cutoff : cutoffs) {
        long want = instants.stream().filter(i -> i.isAfter(cutoff)).count();
        ps.setTimestamp(1, Timestamp.from(cutoff));
        try (ResultSet rs = ps.executeQuery()) {
          assertTrue(rs.next());
          long got = rs.getLong(1);
          System.out.printf(
              "MATRIX %s %s readme setTimestamp(%s): %d rows, %d right%n",
              VERSION, ZONE, cutoff, got, want);
          assertEquals(want, got, "taskStartTime > " + cutoff + " in a JVM in " + ZONE);
        }
      }
    }
  }

  /**
   * Without {@code timeZone=UTC} the driver reads and binds in the JVM's zone, and 18.x gets
   * getObject(int) and getTimestamp wrong there (it shifts the wall time by the zone's offset
   * the wrong way): the README says to keep {@code timeZone=UTC}. What must hold anyway: no
   * accessor throws for getObject(int), and a UTC JVM is right everywhere.
   */
  @Test
  void withoutTimeZoneUtcTheJvmZoneDecides() throws Exception {
    Stack stack = Stack.get();
    List<String> truth = stack.taskStartTimes();
    try (Connection conn = DriverManager.getConnection(stack.bareUrl())) {
      Map<String, String> outcomes = readAll(conn, truth);
      print("no-timeZone", outcomes);
      assertFalse(outcomes.get("getObject(int)").startsWith("throws"));
      assertEquals("UTC wall time", outcomes.get("getObject(label)"));
      assertEquals("UTC wall time", outcomes.get("getString(int)"));
      if (ZONE.equals("UTC")) {
        assertEquals("UTC wall time", outcomes.get("getObject(int)"));
        assertEquals("UTC wall time", outcomes.get("getTimestamp(int)"));
      }
    }
  }

  /** {@code timestamps=with_time_zone}: TIMESTAMP WITH TIME ZONE, for code that wants offsets. */
  @Test
  void withTimeZonePropertyGivesOffsetsTo183() throws Exception {
    Stack stack = Stack.get();
    List<String> truth = stack.taskStartTimes();
    try (Connection conn = stack.connect("timestamps=with_time_zone");
        Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery(QUERY)) {
      // (18.1 and 18.2 call every timestamp TIMESTAMP.)
      if ("18.3.0".equals(VERSION)) {
        assertEquals(Types.TIMESTAMP_WITH_TIMEZONE, rs.getMetaData().getColumnType(3));
      }
      assertTrue(rs.next());
      Instant instant = instant(truth.get(0));
      assertEquals(truth.get(0), rs.getString(1) + "/" + rs.getString(2) + "/" + instant);
      assertEquals(
          "UTC wall time", judge(rs.getObject("taskStartTime"), instant), "getObject(label)");
      if ("18.3.0".equals(VERSION)) {
        OffsetDateTime odt = rs.getObject(3, OffsetDateTime.class);
        assertInstanceOf(OffsetDateTime.class, odt);
        assertEquals(instant, odt.toInstant());
      }
    }
    try (Connection conn = stack.connect("timestamps=sometimes");
        Statement st = conn.createStatement()) {
      SQLException e = org.junit.jupiter.api.Assertions.assertThrows(
          SQLException.class, () -> st.executeQuery(QUERY));
      assertTrue(e.getMessage().contains("without_time_zone"), e.getMessage());
    }
  }
}
