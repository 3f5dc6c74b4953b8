# drivers.pl PORT: DBD::MariaDB and DBD::mysql, client- and server-side
# prepares, through Sluice's read/write rules. One line per run.
use strict;
use warnings;
use DBI;

my $port = shift or die "usage: drivers.pl PORT\n";
for my $drv ("MariaDB", "mysql") {
    for my $ps (0, 1) {
        my $p = lc $drv;
        my $dbh = DBI->connect("DBI:$drv:database=sbtest;host=127.0.0.1;port=$port", "sbtest", "sbtest",
            {RaiseError => 1, PrintError => 0, "${p}_server_prepare" => $ps, "${p}_multi_statements" => !$ps});
        # A read goes to the reader, which holds 7 rows; the writer none.
        my ($count) = $dbh->selectrow_array("SELECT COUNT(*) FROM drv WHERE id > ?", undef, 0);
        my ($cs, $coll) = $dbh->selectrow_array("SELECT \@\@character_set_server, \@\@collation_server");
        $dbh->do("INSERT INTO drv (v) VALUES (?)", undef, "$drv$ps");
        my $id = $dbh->last_insert_id(undef, undef, undef, undef);
        my ($lid) = $dbh->selectrow_array("SELECT LAST_INSERT_ID()");
        $dbh->begin_work;
        $dbh->do("UPDATE drv SET v = ? WHERE id = ?", undef, "tx$drv$ps", $id);
        my ($v) = $dbh->selectrow_array("SELECT v FROM drv WHERE id = ? FOR UPDATE", undef, $id);
        $dbh->commit;
        my ($sets, $multi) = ("-", "-");
        if (!$ps) {
            # Several result sets: a procedure's and a multi-statement's.
            my $sth = $dbh->prepare("CALL drv_two(?)");
            $sth->execute(3);
            my @s;
            do { push @s, $sth->{NUM_OF_FIELDS} ? join("/", map { @$_ } @{$sth->fetchall_arrayref}) : "ok" } while ($sth->more_results);
            $sets = join(",", @s);
            $sth = $dbh->prepare("SELECT COUNT(*) FROM drv; SELECT 2");
            $sth->execute;
            my @m;
            do { push @m, join("/", map { @$_ } @{$sth->fetchall_arrayref}) if $sth->{NUM_OF_FIELDS} } while ($sth->more_results);
            $multi = join(",", @m);
        }
        printf "%s ps=%d: count %s, server charset %s %s, ids %s, tx %s, call %s, multi %s\n",
            $drv, $ps, $count, $cs, $coll, ($id == $lid ? "agree" : "$id != $lid"), $v, $sets, $multi;
        $dbh->disconnect;
    }
}
