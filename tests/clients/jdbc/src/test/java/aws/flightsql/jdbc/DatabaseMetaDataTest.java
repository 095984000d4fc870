package aws.flightsql.jdbc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every DatabaseMetaData call DBeaver and Tableau make while connecting and browsing: none
 * may throw, and the answers must describe this server.
 */
class DatabaseMetaDataTest {
  static final List<String> COLUMNS =
      List.of(
          "account", "region", "amiId", "bucket", "progressPercentage", "s3objectKey",
          "storeTaskFailureReason", "storeTaskState", "taskStartTime");

  static Connection conn;
  static DatabaseMetaData meta;

  @BeforeAll
  static void connect() throws Exception {
    conn = Stack.get().connect();
    meta = conn.getMetaData();
  }

  @AfterAll
  static void close() throws SQLException {
    conn.close();
  }

  /** The rows of {@code rs}, reading every column with getObject. */
  static List<Map<String, Object>> rows(ResultSet rs) throws SQLException {
    try (rs) {
      ResultSetMetaData md = rs.getMetaData();
      List<Map<String, Object>> out = new ArrayList<>();
      while (rs.next()) {
        Map<String, Object> row = new LinkedHashMap<>();
        for (int i = 1; i <= md.getColumnCount(); i++) {
          row.put(md.getColumnLabel(i).toUpperCase(), rs.getObject(i));
        }
        out.add(row);
      }
      return out;
    }
  }

  static List<Object> column(List<Map<String, Object>> rows, String name) {
    List<Object> out = new ArrayList<>();
    for (Map<String, Object> row : rows) {
      out.add(row.get(name));
    }
    return out;
  }

  @Test
  void productDriverAndSqlInfo() throws SQLException {
    assertEquals("aws-flightsql", meta.getDatabaseProductName());
    assertFalse(meta.getDatabaseProductVersion().isEmpty());
    assertNotNull(meta.getDriverName());
    assertNotNull(meta.getDriverVersion());
    assertTrue(meta.getURL().startsWith("jdbc:arrow-flight-sql://"));
    assertEquals("\"", meta.getIdentifierQuoteString());
    assertEquals("\\", meta.getSearchStringEscape());
    assertNotNull(meta.getExtraNameCharacters());
    assertTrue(meta.getSQLKeywords().contains("LIMIT"), meta.getSQLKeywords());
    assertTrue(meta.getNumericFunctions().contains("abs"), meta.getNumericFunctions());
    assertTrue(meta.getStringFunctions().contains("upper"), meta.getStringFunctions());
    assertTrue(meta.getSystemFunctions().contains("version"), meta.getSystemFunctions());
    assertTrue(meta.getTimeDateFunctions().contains("date_trunc"), meta.getTimeDateFunctions());
    assertFalse(meta.isReadOnly(), "INSERT is served");
    assertEquals("catalog", meta.getCatalogTerm());
    assertEquals("schema", meta.getSchemaTerm());
    assertEquals("procedure", meta.getProcedureTerm());
    assertTrue(meta.isCatalogAtStart());
  }

  /**
   * What DBeaver and Tableau also call, which this driver answers itself (Avatica's
   * defaults) or from the server: each must answer without throwing.
   */
  @Test
  void everyOtherMethodBiToolsCallAnswers() throws SQLException {
    List<Callable<Object>> calls =
        List.of(
            meta::getCatalogSeparator, meta::supportsMixedCaseIdentifiers,
            meta::supportsMixedCaseQuotedIdentifiers, meta::storesUpperCaseIdentifiers,
            meta::storesLowerCaseIdentifiers, meta::storesMixedCaseIdentifiers,
            meta::storesMixedCaseQuotedIdentifiers, meta::nullsAreSortedHigh,
            meta::nullsAreSortedLow, meta::nullsAreSortedAtStart, meta::nullsAreSortedAtEnd,
            meta::supportsGroupByBeyondSelect, meta::allTablesAreSelectable,
            meta::supportsSchemasInDataManipulation, meta::supportsCatalogsInDataManipulation,
            meta::supportsSchemasInTableDefinitions, meta::supportsCatalogsInTableDefinitions,
            meta::supportsMultipleResultSets, meta::supportsGetGeneratedKeys,
            meta::supportsDataManipulationTransactionsOnly, meta::usesLocalFiles,
            meta::getUserName, meta::getJDBCMajorVersion, meta::getDriverMajorVersion,
            meta::getMaxRowSize, meta::getMaxCharLiteralLength, meta::getMaxColumnsInSelect,
            meta::getMaxCatalogNameLength, meta::getMaxSchemaNameLength, meta::getMaxUserNameLength,
            meta::doesMaxRowSizeIncludeBlobs, meta::locatorsUpdateCopy,
            meta::supportsStoredFunctionsUsingCallSyntax, meta::getResultSetHoldability,
            meta::getSQLStateType, meta::autoCommitFailureClosesAllResultSets,
            () -> meta.supportsResultSetConcurrency(
                ResultSet.TYPE_FORWARD_ONLY, ResultSet.CONCUR_READ_ONLY),
            () -> rows(meta.getProcedures(null, null, "%")),
            () -> rows(meta.getFunctions(null, null, "%")),
            () -> rows(meta.getUDTs(null, null, "%", null)),
            () -> rows(meta.getClientInfoProperties()));
    for (Callable<Object> call : calls) {
      try {
        call.call();
      } catch (Exception e) {
        throw new AssertionError("a DatabaseMetaData call threw: " + e, e);
      }
    }
  }

  @Test
  void transactionsAndGrammar() throws SQLException {
    assertFalse(meta.supportsTransactions());
    assertEquals(Connection.TRANSACTION_NONE, meta.getDefaultTransactionIsolation());
    assertTrue(meta.supportsTransactionIsolationLevel(Connection.TRANSACTION_NONE));
    assertFalse(meta.supportsTransactionIsolationLevel(Connection.TRANSACTION_SERIALIZABLE));
    assertFalse(meta.supportsSavepoints());
    assertFalse(meta.dataDefinitionCausesTransactionCommit());
    assertTrue(meta.dataDefinitionIgnoredInTransactions());
    assertTrue(meta.supportsANSI92EntryLevelSQL());
    // The driver answers "intermediate" when entry level is set, so only call it.
    meta.supportsANSI92IntermediateSQL();
    assertFalse(meta.supportsANSI92FullSQL());
    assertTrue(meta.supportsMinimumSQLGrammar());
    assertTrue(meta.supportsCoreSQLGrammar());
    assertFalse(meta.supportsExtendedSQLGrammar());
    assertFalse(meta.supportsIntegrityEnhancementFacility());
  }

  @Test
  void supportsAnswers() throws SQLException {
    assertTrue(meta.supportsColumnAliasing());
    assertTrue(meta.nullPlusNonNullIsNull());
    assertTrue(meta.supportsTableCorrelationNames());
    assertFalse(meta.supportsDifferentTableCorrelationNames());
    assertTrue(meta.supportsExpressionsInOrderBy());
    assertTrue(meta.supportsOrderByUnrelated());
    assertTrue(meta.supportsGroupBy());
    assertTrue(meta.supportsGroupByUnrelated());
    assertTrue(meta.supportsLikeEscapeClause());
    assertTrue(meta.supportsNonNullableColumns());
    assertTrue(meta.supportsOuterJoins());
    assertTrue(meta.supportsFullOuterJoins());
    assertTrue(meta.supportsLimitedOuterJoins());
    assertTrue(meta.supportsSubqueriesInComparisons());
    assertTrue(meta.supportsSubqueriesInExists());
    assertTrue(meta.supportsSubqueriesInIns());
    assertTrue(meta.supportsSubqueriesInQuantifieds());
    assertTrue(meta.supportsCorrelatedSubqueries());
    assertTrue(meta.supportsUnion());
    assertTrue(meta.supportsUnionAll());
    assertTrue(meta.supportsConvert());
    assertTrue(meta.supportsConvert(Types.INTEGER, Types.VARCHAR));
    assertTrue(meta.supportsConvert(Types.VARCHAR, Types.TIMESTAMP));
    assertFalse(meta.supportsConvert(Types.TIMESTAMP, Types.INTEGER));
    assertFalse(meta.supportsSelectForUpdate());
    assertFalse(meta.supportsStoredProcedures());
    assertFalse(meta.supportsPositionedDelete());
    assertFalse(meta.supportsPositionedUpdate());
    assertFalse(meta.supportsBatchUpdates());
    assertFalse(meta.supportsNamedParameters());
    assertFalse(meta.supportsSchemasInProcedureCalls());
    assertFalse(meta.supportsCatalogsInIndexDefinitions());
    assertTrue(meta.supportsResultSetType(ResultSet.TYPE_FORWARD_ONLY));
    assertFalse(meta.supportsResultSetType(ResultSet.TYPE_SCROLL_INSENSITIVE));
    assertEquals(0, meta.getMaxColumnNameLength());
    assertEquals(0, meta.getMaxTableNameLength());
    assertEquals(0, meta.getMaxStatementLength());
    assertEquals(0, meta.getMaxConnections());
  }

  @Test
  void catalogsSchemasAndTableTypes() throws SQLException {
    assertEquals(List.of("aws"), column(rows(meta.getCatalogs()), "TABLE_CAT"));
    // DBeaver: getSchemas(null, null) means all.
    List<Map<String, Object>> schemas = rows(meta.getSchemas(null, null));
    assertEquals(List.of("ec2", "information_schema", "organizations"), column(schemas, "TABLE_SCHEM"));
    assertEquals(List.of("aws", "aws", "aws"), column(schemas, "TABLE_CATALOG"));
    assertEquals(
        List.of("ec2", "information_schema", "organizations"),
        column(rows(meta.getSchemas()), "TABLE_SCHEM"));
    assertEquals(List.of("ec2"), column(rows(meta.getSchemas("aws", "e_2")), "TABLE_SCHEM"));
    List<Object> types = column(rows(meta.getTableTypes()), "TABLE_TYPE");
    assertTrue(types.contains("TABLE") && types.contains("VIEW"), types.toString());
  }

  @Test
  void tablesWithPatternsAndTypeFilters() throws SQLException {
    List<Map<String, Object>> all = rows(meta.getTables(null, null, "%", null));
    List<Object> names = column(all, "TABLE_NAME");
    assertTrue(names.contains("store_image_tasks"), names.toString());
    assertTrue(names.contains("accounts"), names.toString());
    assertTrue(names.contains("tables") && names.contains("columns"), names.toString());
    List<Object> orgTables = column(rows(meta.getTables("aws", "organizations", "%", new String[] {"TABLE"})), "TABLE_NAME");
    assertEquals(List.of("accounts"), orgTables);

    List<Map<String, Object>> tables = rows(meta.getTables(null, null, "store%", new String[] {"TABLE"}));
    assertEquals(1, tables.size(), tables.toString());
    assertEquals("aws", tables.get(0).get("TABLE_CAT"));
    assertEquals("ec2", tables.get(0).get("TABLE_SCHEM"));
    assertEquals("TABLE", tables.get(0).get("TABLE_TYPE"));

    List<Object> views = column(rows(meta.getTables("aws", "information_schema", "%", new String[] {"VIEW"})), "TABLE_NAME");
    assertTrue(views.contains("tables") && !views.contains("store_image_tasks"), views.toString());
  }

  @Test
  void columnsOfTheTable() throws SQLException {
    List<Map<String, Object>> cols = rows(meta.getColumns(null, null, "store_image_tasks", "%"));
    assertEquals(COLUMNS, column(cols, "COLUMN_NAME"));
    Map<String, Object> account = cols.get(0);
    assertEquals(Types.VARCHAR, ((Number) account.get("DATA_TYPE")).intValue());
    assertEquals("NO", account.get("IS_NULLABLE"));
    Map<String, Object> region = cols.get(1);
    assertEquals(Types.VARCHAR, ((Number) region.get("DATA_TYPE")).intValue());
    assertEquals("VARCHAR", region.get("TYPE_NAME"));
    assertEquals("NO", region.get("IS_NULLABLE"));
    assertEquals(DatabaseMetaData.columnNoNulls, ((Number) region.get("NULLABLE")).intValue());
    Map<String, Object> progress = cols.get(4);
    assertEquals(Types.INTEGER, ((Number) progress.get("DATA_TYPE")).intValue());
    assertEquals("INTEGER", progress.get("TYPE_NAME"));
    assertEquals("YES", progress.get("IS_NULLABLE"));
    Map<String, Object> start = cols.get(8);
    int startType = ((Number) start.get("DATA_TYPE")).intValue();
    assertTrue(
        startType == Types.TIMESTAMP || startType == Types.TIMESTAMP_WITH_TIMEZONE,
        "taskStartTime is a timestamp: " + startType);
    for (int i = 0; i < cols.size(); i++) {
      assertEquals(i + 1, ((Number) cols.get(i).get("ORDINAL_POSITION")).intValue());
    }
    assertEquals(List.of("amiId"), column(rows(meta.getColumns("aws", "ec2", "store_image_tasks", "ami%")), "COLUMN_NAME"));
  }

  @Test
  void keysAreEmptyButAnswered() throws SQLException {
    assertTrue(rows(meta.getPrimaryKeys("aws", "ec2", "store_image_tasks")).isEmpty());
    assertTrue(rows(meta.getImportedKeys("aws", "ec2", "store_image_tasks")).isEmpty());
    assertTrue(rows(meta.getExportedKeys("aws", "ec2", "store_image_tasks")).isEmpty());
    assertTrue(
        rows(meta.getCrossReference("aws", "ec2", "store_image_tasks", "aws", "ec2", "store_image_tasks"))
            .isEmpty());
  }

  @Test
  void typeInfoAnswers() throws SQLException {
    // Driver 18.x answers getTypeInfo itself (Avatica's empty result) instead of asking the
    // server's GetXdbcTypeInfo, which the Rust and ADBC suites check; here it must not throw
    // and must have the JDBC columns.
    try (ResultSet rs = meta.getTypeInfo()) {
      ResultSetMetaData md = rs.getMetaData();
      List<String> names = new ArrayList<>();
      for (int i = 1; i <= md.getColumnCount(); i++) {
        names.add(md.getColumnLabel(i).toUpperCase());
      }
      assertTrue(names.containsAll(List.of("TYPE_NAME", "DATA_TYPE", "PRECISION")), names.toString());
      while (rs.next()) {
        for (int i = 1; i <= md.getColumnCount(); i++) {
          rs.getObject(i);
        }
      }
    }
  }
}
