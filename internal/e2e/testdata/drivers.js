// drivers.js PORT: the mysqljs driver (Debian's node-mysql) through Sluice's
// read/write rules. One line.
const mysql = require('mysql');
const c = mysql.createConnection({host: '127.0.0.1', port: +process.argv[2], user: 'sbtest', password: 'sbtest',
  database: 'sbtest', multipleStatements: true, charset: 'utf8mb4_unicode_ci'});
const q = (sql, args) => new Promise((res, rej) => c.query(sql, args, (e, r) => e ? rej(e) : res(r)));
(async () => {
  const count = (await q('SELECT COUNT(*) AS n FROM drv WHERE id > ?', [0]))[0].n;
  const ins = await q('INSERT INTO drv (v) VALUES (?)', ['node']);
  const lid = (await q('SELECT LAST_INSERT_ID() AS id'))[0].id;
  await q('START TRANSACTION');
  await q('UPDATE drv SET v = ? WHERE id = ?', ['txnode', ins.insertId]);
  const v = (await q('SELECT v FROM drv WHERE id = ? FOR UPDATE', [ins.insertId]))[0].v;
  await q('COMMIT');
  const call = await q('CALL drv_two(?)', [4]);
  const multi = await q('SELECT COUNT(*) AS n FROM drv; SELECT 2 AS n');
  const big = (await q('SELECT REPEAT("x", 20000000) AS b'))[0].b.length;
  console.log(`node: count ${count}, ids ${ins.insertId === lid ? 'agree' : ins.insertId + ' != ' + lid}, tx ${v}, ` +
    `call ${call[0][0].n}/${call[1][0].m},ok, multi ${multi[0][0].n},${multi[1][0].n}, big ${big}`);
  c.end();
})().catch(e => { console.error('ERR', e.code, e.message); c.end(); process.exit(1); });
