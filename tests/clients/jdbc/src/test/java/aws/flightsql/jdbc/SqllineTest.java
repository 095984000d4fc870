package aws.flightsql.jdbc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Timestamp;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * sqlline 1.12 (a generic JDBC shell) with the driver under test, in a JVM set to
 * America/New_York, the README's URL, names as the shell sends them (it asks metadata in the
 * case the driver reports), and a script a new user would type: {@code !tables},
 * {@code !columns}, a GROUP BY, a timestamp, a dry-run INSERT and a real one. Its output is
 * compared with the emulator's truth. sqlline runs every statement through the driver, which
 * sends each as a Flight SQL prepared statement (CreatePreparedStatement, then execute).
 */
class SqllineTest {
  private static final String REGION = "us-west-2";

  @Test
  void aScriptedSessionShowsWhatTheEmulatorHolds() throws Exception {
    Stack stack = Stack.get();
    Map.Entry<List<String>, String> storable = stack.storable(REGION);
    List<String> amis = storable.getKey();
    String dryAmi = amis.get(amis.size() - 1);
    String realAmi = amis.get(amis.size() - 2);
    String bucket = storable.getValue();
    String insert = "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('" + REGION
        + "', '%s', '" + bucket + "');";
    List<String> script =
        List.of(
            "!tables",
            "!columns store_image_tasks",
            "SELECT region, count(*) AS tasks FROM store_image_tasks GROUP BY region ORDER BY region;",
            "SELECT amiId, taskStartTime FROM store_image_tasks WHERE region = 'eu-west-1' "
                + "ORDER BY taskStartTime DESC, amiId LIMIT 1;",
            "SET aws.dry_run = true;",
            "SHOW aws.dry_run;",
            String.format(insert, dryAmi),
            "SET aws.dry_run = false;",
            String.format(insert, realAmi));
    List<Integer> before = new ArrayList<>();
    for (String region : Stack.REGIONS) {
      before.add(stack.taskAmis(region).size());
    }
    List<String> newest = stack.taskStartTimes();
    // (An AMI AWS would store now may have older tasks in the listing.)
    List<String> then = stack.taskAmis(REGION);
    String out = run(stack, script);

    // !tables and !columns: the table and its 9 columns, though the driver says it stores
    // upper-case identifiers and sqlline asks for STORE_IMAGE_TASKS.
    assertTrue(out.contains("| store_image_tasks "), out);
    for (String column : DatabaseMetaDataTest.COLUMNS) {
      assertTrue(out.contains("| " + column + " "), "!columns lists " + column + "\n" + out);
    }
    // The GROUP BY: one row per region with the emulator's count.
    for (int i = 0; i < Stack.REGIONS.size(); i++) {
      String row = "| " + Stack.REGIONS.get(i) + " | " + before.get(i);
      assertTrue(out.contains(row), "expected " + row + "\n" + out);
    }
    // The newest eu-west-1 task's start time as the UTC wall-clock time, in a New York JVM.
    String latest =
        newest.stream()
            .filter(t -> t.startsWith("eu-west-1/"))
            .max(
                (a, b) -> {
                  int c = instant(a).compareTo(instant(b));
                  return c != 0 ? c : b.compareTo(a);
                })
            .orElseThrow();
    String shown =
        Timestamp.valueOf(LocalDateTime.ofInstant(instant(latest), ZoneOffset.UTC)).toString();
    assertTrue(out.contains(shown), "taskStartTime shown as " + shown + "\n" + out);
    // The dry run: SHOW finds the setting, the INSERT affects no row and creates nothing.
    assertTrue(out.matches("(?s).*aws\\.dry_run\\s*\\|\\s*true.*"), out);
    List<String> now = stack.taskAmis(REGION);
    assertEquals(
        Collections.frequency(then, dryAmi),
        Collections.frequency(now, dryAmi),
        "the dry run created nothing\n" + out);
    // The real INSERT: one row affected, and the emulator holds one more task of it.
    assertEquals(
        Collections.frequency(then, realAmi) + 1, Collections.frequency(now, realAmi), out);
    int affected = out.indexOf("1 row affected");
    int dry = out.indexOf("No rows affected", out.indexOf(String.format(insert, dryAmi)));
    assertTrue(dry > 0 && affected > dry, "dry run: no rows affected; real: 1\n" + out);
    assertFalse(out.contains("Error:"), out);
  }

  private static Instant instant(String task) {
    return Instant.parse(task.substring(task.lastIndexOf('/') + 1));
  }

  /** Runs sqlline on {@code script} against the stack; returns what it printed. */
  private static String run(Stack stack, List<String> script) throws Exception {
    Path dir = Files.createTempDirectory("sqlline");
    Path file = dir.resolve("session.sql");
    Files.write(file, script, StandardCharsets.UTF_8);
    Path output = dir.resolve("out.txt");
    List<String> command =
        List.of(
            System.getProperty("java.home") + File.separator + "bin" + File.separator + "java",
            "--add-opens=java.base/java.nio=ALL-UNNAMED",
            "-Duser.timezone=America/New_York",
            "-cp",
            System.getProperty("java.class.path"),
            "sqlline.SqlLine",
            "-u", stack.url(),
            "-n", "",
            "-p", "",
            "--maxWidth=250",
            "--run=" + file);
    Process process =
        new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(output.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
    assertTrue(process.waitFor(120, TimeUnit.SECONDS), "sqlline finished");
    String out = Files.readString(output);
    assertEquals(0, process.exitValue(), out);
    return out;
  }
}
