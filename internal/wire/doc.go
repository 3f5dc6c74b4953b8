// Package wire reads, writes and forwards MySQL protocol packets, and holds
// the handshake and authentication helpers Sluice needs on both sides of the
// proxy.
//
// The data plane spends its time here, so the package is built around one
// rule: a forwarded packet costs no allocation. A Conn owns a pooled
// bufio.Reader and bufio.Writer (16 KiB each); ForwardPacket copies header and
// payload from one Conn's reader into another Conn's writer chunk by chunk,
// so a result set of any size streams through without ever being held in
// memory, and 16 MiB continuation packets are never assembled.
//
// Implementation notes, collected during coding:
//
//   - Sequence ids. The MySQL protocol shares one sequence counter between
//     both directions of a command. Conn keeps that counter per socket: a read
//     checks the incoming id and advances it, a write stamps it and advances
//     it. ForwardPacket checks the id on the source and re-stamps the packet
//     with the destination's counter, so the two sides of the proxy may drift
//     apart (the proxy answered something locally, or inserted/dropped an EOF
//     while translating CLIENT_DEPRECATE_EOF) without corrupting either.
//   - Payload lifetime. ReadPacket returns a slice that aliases the bufio
//     buffer when the packet fits in it (no copy), or a pooled buffer for
//     bigger packets. Either way it is valid until the next read, peek or
//     forward on the same Conn, and the caller may modify it in place.
//   - Packets of exactly 0xFFFFFF bytes are followed by a continuation
//     packet (possibly empty). WritePacket splits, ReadPacket assembles (up to
//     SetMaxPayload), ForwardPacket streams.
//   - The EOF packet is 0xFE with a payload shorter than 9 bytes. With
//     CLIENT_DEPRECATE_EOF, result sets end in an OK packet whose header byte
//     is 0xFE; a row can only start with 0xFE when its first column is at
//     least 2^24 bytes long, so "0xFE and the payload is shorter than
//     0xFFFFFF" identifies a terminator (IsTerminator), as libmysqlclient does.
//   - OK packets are built and parsed without CLIENT_SESSION_TRACK: Sluice
//     never offers it to clients nor asks for it from servers. A non-empty
//     info message is still length-encoded, as MySQL, MariaDB and ProxySQL
//     send it and as every client library reads it.
//   - Authentication: mysql_native_password stores SHA1(SHA1(pw)) ("*HEX").
//     A client's reply is SHA1(pw) XOR SHA1(salt ‖ SHA1(SHA1(pw))), so the
//     proxy can recover SHA1(pw) (RecoverStage1) and log in to a backend
//     with it (ScrambleFromStage1) without ever knowing the password.
//     caching_sha2_password cannot work that way; a client that opens with it
//     is switched to mysql_native_password (AppendAuthSwitchRequest).
//
// Capability, status and command constants are go-mysql's mysql package
// values, re-exported here under Go names so callers need one import.
package wire
