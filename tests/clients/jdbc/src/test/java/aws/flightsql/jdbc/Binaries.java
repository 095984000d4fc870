package aws.flightsql.jdbc;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The repository's binaries (the EC2 emulator, the server, {@code hash-password}) as the test
 * stacks start them: from {@code $AWS_FLIGHTSQL_BIN_DIR} (default
 * {@code ~/.cache/aws-flightsql/target/debug}), with static AWS credentials and no instance
 * metadata, ready when they print their "listening on" line, stopped when the JVM exits.
 */
final class Binaries {
  /** Where the binaries are. */
  static final String DIR =
      System.getenv()
          .getOrDefault(
              "AWS_FLIGHTSQL_BIN_DIR",
              System.getProperty("user.home") + "/.cache/aws-flightsql/target/debug");

  private final List<Process> processes = new ArrayList<>();
  /** Logs and directories this run created, deleted when it stops. */
  private final List<Path> temporary = new ArrayList<>();

  Binaries() {
    Runtime.getRuntime().addShutdownHook(new Thread(this::stop));
  }

  /**
   * Starts {@code command} (its first element a binary of {@link #DIR}) and returns what it
   * printed after {@code marker}, once it has; its stderr goes to a temporary log shown on
   * failure.
   */
  String start(List<String> command, String marker) throws IOException {
    if (!new File(command.get(0)).canExecute()) {
      throw new IOException(
          command.get(0) + " does not exist: build it first (cargo build --workspace --bins)"
              + " or set AWS_FLIGHTSQL_BIN_DIR");
    }
    Path log = Files.createTempFile("aws-flightsql-jdbc-", ".log");
    temporary.add(log);
    ProcessBuilder builder = new ProcessBuilder(command).redirectError(log.toFile());
    Map<String, String> env = builder.environment();
    env.put("AWS_ACCESS_KEY_ID", "AKIDJDBCTEST");
    env.put("AWS_SECRET_ACCESS_KEY", "jdbc-test-secret");
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

  /** Deletes {@code dir} and what it holds when the processes stop. */
  void deleteOnStop(Path dir) {
    temporary.add(dir);
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
    for (Path path : temporary) {
      try (Stream<Path> walk = Files.walk(path)) {
        walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (IOException e) {
        // Already gone: nothing to clean.
      }
    }
  }
}
