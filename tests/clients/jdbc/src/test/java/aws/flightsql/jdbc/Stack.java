package aws.flightsql.jdbc;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The EC2 emulator and the aws-flightsql server, both real binaries on 127.0.0.1 port 0,
 * started once for the test run from {@code $AWS_FLIGHTSQL_BIN_DIR} (default
 * {@code ~/.cache/aws-flightsql/target/debug}). Ready when each prints its "listening on"
 * line; stopped when the JVM exits.
 */
final class Stack {
  static final List<String> REGIONS = List.of("us-east-1", "us-west-2", "eu-west-1");
  static final int TASKS_PER_REGION = 230;

  private static Stack instance;

  final String emulatorUrl;
  final int port;
  private final Binaries binaries = new Binaries();
  private final HttpClient http = HttpClient.newHttpClient();

  private Stack() throws IOException, InterruptedException {
    String binDir = Binaries.DIR;
    emulatorUrl =
        binaries.start(
            List.of(
                binDir + "/ec2-emulator",
                "--listen", "127.0.0.1:0",
                "--regions", String.join(",", REGIONS),
                "--tasks-per-region", Integer.toString(TASKS_PER_REGION),
                "--seed", "11",
                "--freeze-time"),
            "ec2-emulator listening on ");
    String uri =
        binaries.start(
            List.of(
                binDir + "/aws-flightsql", "serve",
                "--listen", "127.0.0.1:0",
                "--endpoint-url", emulatorUrl,
                "--regions", String.join(",", REGIONS)),
            "aws-flightsql listening on ");
    port = URI.create(uri.replace("grpc://", "http://")).getPort();
  }

  /** The stack of this test run. */
  static synchronized Stack get() throws IOException, InterruptedException {
    if (instance == null) {
      instance = new Stack();
    }
    return instance;
  }

  /**
   * The JDBC URL of the server as the README gives it ({@code timeZone=UTC}: the driver reads
   * and binds timestamps in UTC whatever the JVM's zone), with extra {@code key=value}
   * parameters.
   */
  String url(String... parameters) {
    return bareUrl(parameters) + "&timeZone=UTC";
  }

  /** The JDBC URL without {@code timeZone=UTC}: the driver then uses the JVM's zone. */
  String bareUrl(String... parameters) {
    StringBuilder url =
        new StringBuilder("jdbc:arrow-flight-sql://127.0.0.1:" + port + "?useEncryption=false");
    for (String p : parameters) {
      url.append('&').append(p);
    }
    return url.toString();
  }

  Connection connect(String... parameters) throws SQLException {
    return DriverManager.getConnection(url(parameters));
  }

  /**
   * The start time of every task the emulator lists, as {@code region/amiId/instant}, sorted
   * (an AMI can have several tasks): the order of {@code ORDER BY region, amiId,
   * taskStartTime}.
   */
  List<String> taskStartTimes() throws IOException, InterruptedException {
    List<String> out = new ArrayList<>();
    Pattern task =
        Pattern.compile(
            "\\{[^{}]*\"amiId\":\"(ami-[0-9a-f]+)\"[^{}]*\"taskStartTime\":\"([^\"]+)\"[^{}]*\\}");
    for (String region : REGIONS) {
      Matcher m = task.matcher(hook("tasks?region=" + region));
      while (m.find()) {
        out.add(region + "/" + m.group(1) + "/" + java.time.Instant.parse(m.group(2)));
      }
    }
    out.sort(
        java.util.Comparator.comparing((String t) -> t.substring(0, t.lastIndexOf('/')))
            .thenComparing(t -> java.time.Instant.parse(t.substring(t.lastIndexOf('/') + 1))));
    return out;
  }

  /** {@code GET /_emulator/...} as text. */
  String hook(String path) throws IOException, InterruptedException {
    HttpResponse<String> response =
        http.send(
            HttpRequest.newBuilder(URI.create(emulatorUrl + "/_emulator/" + path)).build(),
            HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() != 200) {
      throw new IOException(path + ": HTTP " + response.statusCode() + ": " + response.body());
    }
    return response.body();
  }

  /** {@code POST /_emulator/config} with this JSON body (advance the clock, set faults). */
  void configure(String json) throws IOException, InterruptedException {
    HttpResponse<String> response =
        http.send(
            HttpRequest.newBuilder(URI.create(emulatorUrl + "/_emulator/config"))
                .header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() != 200) {
      throw new IOException("config: HTTP " + response.statusCode() + ": " + response.body());
    }
  }

  /** The AMIs CreateStoreImageTask accepts now in {@code region}, and its first bucket. */
  Map.Entry<List<String>, String> storable(String region) throws IOException, InterruptedException {
    String state = hook("state");
    Matcher m =
        Pattern.compile(
                "\"" + Pattern.quote(region) + "\":\\{\"amis\":\\[([^\\]]*)\\],\"buckets\":\\[\"([^\"]+)\"")
            .matcher(state);
    if (!m.find()) {
      throw new IOException("no state for " + region + " in " + state);
    }
    List<String> amis = new ArrayList<>();
    Matcher ami = Pattern.compile("\"(ami-[0-9a-f]+)\"").matcher(m.group(1));
    while (ami.find()) {
      amis.add(ami.group(1));
    }
    return Map.entry(amis, m.group(2));
  }

  /** The AMI ids of the tasks the emulator lists in {@code region}, one per task. */
  List<String> taskAmis(String region) throws IOException, InterruptedException {
    String tasks = hook("tasks?region=" + region);
    List<String> out = new ArrayList<>();
    Matcher m = Pattern.compile("\"amiId\":\"(ami-[0-9a-f]+)\"").matcher(tasks);
    while (m.find()) {
      out.add(m.group(1));
    }
    return out;
  }

}
