package wire

import (
	"database/sql"
	"encoding/binary"
	"strconv"
)

// Result sets the proxy builds itself: the admin port's answers and the
// data port's local answers (SELECT CONNECTION_ID(), @@version_comment).
// One writer serves both ports and both protocols.

// Column types and flags of Protocol::ColumnDefinition41 the proxy uses.
const (
	TypeLongLong  byte = 0x08 // MYSQL_TYPE_LONGLONG
	TypeVarString byte = 0xfd // MYSQL_TYPE_VAR_STRING

	FlagNotNull  uint16 = 0x0001
	FlagUnsigned uint16 = 0x0020
	FlagBinary   uint16 = 0x0080
)

// Column describes one column of a result set the proxy builds itself.
type Column struct {
	Name     string
	Type     byte
	Flags    uint16
	Charset  uint16
	Length   uint32
	Decimals byte
}

// TextColumn is a VAR_STRING column as ProxySQL's admin sends every column:
// charset utf8_general_ci (33), length 65535, no flags.
func TextColumn(name string) Column {
	return Column{Name: name, Type: TypeVarString, Charset: 33, Length: 0xffff}
}

// AppendColumnDef appends a ColumnDefinition41 payload: catalog "def",
// empty schema and tables, name and org_name both the column's name.
func AppendColumnDef(buf []byte, col *Column) []byte {
	buf = AppendLenEncString(buf, "def")
	buf = AppendLenEncString(buf, "") // schema
	buf = AppendLenEncString(buf, "") // table
	buf = AppendLenEncString(buf, "") // org_table
	buf = AppendLenEncString(buf, col.Name)
	buf = AppendLenEncString(buf, col.Name)
	buf = append(buf, 0x0c) // length of the fixed fields
	buf = binary.LittleEndian.AppendUint16(buf, col.Charset)
	buf = binary.LittleEndian.AppendUint32(buf, col.Length)
	buf = append(buf, col.Type)
	buf = binary.LittleEndian.AppendUint16(buf, col.Flags)
	buf = append(buf, col.Decimals, 0, 0)
	return buf
}

// WriteResultSet buffers a whole text-protocol result set: column count,
// definitions, the EOF after them unless deprecateEOF, one text row per
// element of rows (an invalid NullString is NULL), and the terminator (EOF,
// or the 0xFE OK with deprecateEOF) carrying status, which may include
// StatusMoreResultsExists; the EOF after the definitions carries status
// without it. It does not flush.
func (c *Conn) WriteResultSet(cols []Column, rows [][]sql.NullString, deprecateEOF bool, status uint16) error {
	return c.writeResultSet(cols, rows, deprecateEOF, 0, status, appendTextRow)
}

// WriteResultSetWarnings is WriteResultSet whose final EOF (or OK) packet
// carries a warning count.
func (c *Conn) WriteResultSetWarnings(cols []Column, rows [][]sql.NullString, deprecateEOF bool, warnings, status uint16) error {
	return c.writeResultSet(cols, rows, deprecateEOF, warnings, status, appendTextRow)
}

// WriteBinaryResultSet is WriteResultSet in the binary protocol, the answer
// to a COM_STMT_EXECUTE: rows are binary rows. Values are given as text and
// encoded by column type: TypeLongLong as 8 bytes (unsigned with
// FlagUnsigned), everything else as a length-encoded string.
func (c *Conn) WriteBinaryResultSet(cols []Column, rows [][]sql.NullString, deprecateEOF bool, status uint16) error {
	return c.writeResultSet(cols, rows, deprecateEOF, 0, status, appendBinaryRow)
}

func (c *Conn) writeResultSet(cols []Column, rows [][]sql.NullString, deprecateEOF bool, warnings, status uint16,
	appendRow func([]byte, []Column, []sql.NullString) []byte) error {
	if err := c.writeColumns(cols, deprecateEOF, status); err != nil {
		return err
	}
	for _, row := range rows {
		c.scratch = appendRow(c.scratch[:0], cols, row)
		if err := c.WritePacket(c.scratch); err != nil {
			return err
		}
	}
	return c.WriteResultEnd(deprecateEOF, warnings, status)
}

// appendTextRow appends a text-protocol row (NULL as 0xFB).
func appendTextRow(b []byte, cols []Column, row []sql.NullString) []byte {
	for i := range cols {
		if i >= len(row) || !row[i].Valid {
			b = append(b, 0xfb)
			continue
		}
		b = AppendLenEncString(b, row[i].String)
	}
	return b
}

// appendBinaryRow appends a binary-protocol row: header, NULL bitmap
// (offset 2), then the non-NULL values.
func appendBinaryRow(b []byte, cols []Column, row []sql.NullString) []byte {
	b = append(b, 0x00)
	nulls := len(b)
	for range (len(cols) + 7 + 2) / 8 {
		b = append(b, 0)
	}
	for i := range cols {
		if i >= len(row) || !row[i].Valid {
			b[nulls+(i+2)/8] |= 1 << ((i + 2) % 8)
			continue
		}
		if cols[i].Type == TypeLongLong {
			var n uint64
			if cols[i].Flags&FlagUnsigned != 0 {
				n, _ = strconv.ParseUint(row[i].String, 10, 64)
			} else {
				v, _ := strconv.ParseInt(row[i].String, 10, 64)
				n = uint64(v)
			}
			b = binary.LittleEndian.AppendUint64(b, n)
			continue
		}
		b = AppendLenEncString(b, row[i].String)
	}
	return b
}

// writeColumns buffers the column count (with the "metadata follows" byte
// for a MARIADB_CLIENT_CACHE_METADATA client), the definitions and, without
// CLIENT_DEPRECATE_EOF, the EOF after them.
func (c *Conn) writeColumns(cols []Column, deprecateEOF bool, status uint16) error {
	c.scratch = AppendLenEncInt(c.scratch[:0], uint64(len(cols)))
	if c.MetaFollows {
		c.scratch = append(c.scratch, 1)
	}
	if err := c.WritePacket(c.scratch); err != nil {
		return err
	}
	for i := range cols {
		c.scratch = AppendColumnDef(c.scratch[:0], &cols[i])
		if err := c.WritePacket(c.scratch); err != nil {
			return err
		}
	}
	if deprecateEOF {
		return nil
	}
	return c.WriteEOF(0, status&^StatusMoreResultsExists)
}
