// JdbcCheck drives MariaDB Connector/J through Sluice for TestJDBC: run
// with `java -cp mariadb-java-client.jar JdbcCheck.java PORT [URL-OPTIONS]`;
// it prints one line per step for the test to check.
import java.sql.*;

public class JdbcCheck {
  public static void main(String[] a) throws Exception {
    String url = "jdbc:mariadb://127.0.0.1:" + a[0] + "/sbtest?user=sbtest&password=sbtest" + (a.length > 1 ? a[1] : "");
    try (Connection c = DriverManager.getConnection(url)) {
      // Connector/J opened with "set autocommit=1, sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')".
      try (Statement s = c.createStatement()) {
        ResultSet r = s.executeQuery("SELECT @@sql_mode LIKE '%STRICT_TRANS_TABLES%'");
        r.next();
        System.out.println("strict " + r.getInt(1));
      }
      c.setAutoCommit(false);
      try (Statement s = c.createStatement()) {
        ResultSet r = s.executeQuery("SELECT COUNT(*) FROM jdbc_t");
        r.next();
        System.out.println("count " + r.getInt(1));
      }
      long key;
      try (PreparedStatement p = c.prepareStatement("INSERT INTO jdbc_t(v) VALUES (?)", Statement.RETURN_GENERATED_KEYS)) {
        p.setString(1, "jdbc");
        p.executeUpdate();
        ResultSet k = p.getGeneratedKeys();
        k.next();
        key = k.getLong(1);
      }
      try (PreparedStatement p = c.prepareStatement("SELECT id FROM jdbc_t WHERE id = LAST_INSERT_ID()")) {
        ResultSet r = p.executeQuery();
        System.out.println("own row " + (r.next() && r.getLong(1) == key));
      }
      c.commit();
      System.out.println("autocommit " + c.getAutoCommit());
      c.setAutoCommit(true);
      try (PreparedStatement p = c.prepareStatement("SELECT ? + 1")) {
        p.setInt(1, 41);
        ResultSet r = p.executeQuery();
        r.next();
        System.out.println("param " + r.getInt(1));
      }
      try (Statement s = c.createStatement()) {
        s.setFetchSize(100);
        ResultSet r = s.executeQuery("SELECT seq FROM seq_1_to_50000");
        int n = 0;
        while (r.next()) n++;
        System.out.println("rows " + n);
      }
      c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
      try (Statement s = c.createStatement()) {
        ResultSet r = s.executeQuery("SELECT @@tx_isolation");
        r.next();
        System.out.println("isolation " + r.getString(1));
      }
      try (PreparedStatement p = c.prepareStatement("INSERT INTO jdbc_t(v) VALUES (?)")) {
        for (int i = 0; i < 100; i++) {
          p.setString(1, "batch" + i);
          p.addBatch();
        }
        System.out.println("batch " + p.executeBatch().length);
      }
    }
  }
}
