package wire

import "github.com/go-mysql-org/go-mysql/mysql"

// Packet header bytes.
const (
	HeaderOK       = mysql.OK_HEADER          // 0x00
	HeaderMoreData = mysql.MORE_DATE_HEADER   // 0x01, AuthMoreData
	HeaderLocalIn  = mysql.LocalInFile_HEADER // 0xFB, LOCAL INFILE request
	HeaderEOF      = mysql.EOF_HEADER         // 0xFE, EOF / auth switch / DEPRECATE_EOF OK
	HeaderERR      = mysql.ERR_HEADER         // 0xFF
)

// MaxPayloadLen is the largest payload one physical packet carries; a packet
// of exactly this length is continued by the next one.
const MaxPayloadLen = 1<<24 - 1

// Capability flags (CLIENT_*).
const (
	ClientLongPassword               = mysql.CLIENT_LONG_PASSWORD // CLIENT_MYSQL in MariaDB
	ClientFoundRows                  = mysql.CLIENT_FOUND_ROWS
	ClientLongFlag                   = mysql.CLIENT_LONG_FLAG
	ClientConnectWithDB              = mysql.CLIENT_CONNECT_WITH_DB
	ClientNoSchema                   = mysql.CLIENT_NO_SCHEMA
	ClientCompress                   = mysql.CLIENT_COMPRESS
	ClientODBC                       = mysql.CLIENT_ODBC
	ClientLocalFiles                 = mysql.CLIENT_LOCAL_FILES
	ClientIgnoreSpace                = mysql.CLIENT_IGNORE_SPACE
	ClientProtocol41                 = mysql.CLIENT_PROTOCOL_41
	ClientInteractive                = mysql.CLIENT_INTERACTIVE
	ClientSSL                        = mysql.CLIENT_SSL
	ClientIgnoreSigpipe              = mysql.CLIENT_IGNORE_SIGPIPE
	ClientTransactions               = mysql.CLIENT_TRANSACTIONS
	ClientSecureConnection           = mysql.CLIENT_SECURE_CONNECTION
	ClientMultiStatements            = mysql.CLIENT_MULTI_STATEMENTS
	ClientMultiResults               = mysql.CLIENT_MULTI_RESULTS
	ClientPSMultiResults             = mysql.CLIENT_PS_MULTI_RESULTS
	ClientPluginAuth                 = mysql.CLIENT_PLUGIN_AUTH
	ClientConnectAttrs               = mysql.CLIENT_CONNECT_ATTRS
	ClientPluginAuthLenencClientData = mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
	ClientSessionTrack               = mysql.CLIENT_SESSION_TRACK
	ClientDeprecateEOF               = mysql.CLIENT_DEPRECATE_EOF
	ClientQueryAttributes            = mysql.CLIENT_QUERY_ATTRIBUTES
	ClientZstdCompression            = mysql.CLIENT_ZSTD_COMPRESSION_ALGORITHM
)

// MariaDB's extended capabilities: the third capability word, carried in
// the last four reserved bytes of the handshake and of the handshake
// response when the server clears CLIENT_MYSQL (ClientLongPassword).
const (
	// MariaDBCacheMetadata is MARIADB_CLIENT_CACHE_METADATA (1 << 36): every
	// column count packet carries a "metadata follows" byte, and a prepared
	// statement's execute skips column definitions the client holds.
	MariaDBCacheMetadata uint32 = 1 << 4
)

// Server status flags (SERVER_*), carried by OK and EOF packets.
const (
	StatusInTrans            = mysql.SERVER_STATUS_IN_TRANS
	StatusAutocommit         = mysql.SERVER_STATUS_AUTOCOMMIT
	StatusMoreResultsExists  = mysql.SERVER_MORE_RESULTS_EXISTS
	StatusNoGoodIndexUsed    = mysql.SERVER_STATUS_NO_GOOD_INDEX_USED
	StatusNoIndexUsed        = mysql.SERVER_STATUS_NO_INDEX_USED
	StatusCursorExists       = mysql.SERVER_STATUS_CURSOR_EXISTS
	StatusLastRowSent        = mysql.SERVER_STATUS_LAST_ROW_SEND
	StatusDBDropped          = mysql.SERVER_STATUS_DB_DROPPED
	StatusNoBackslashEscapes = mysql.SERVER_STATUS_NO_BACKSLASH_ESCAPED
	StatusANSIQuotes         = 0x8000 // MariaDB's SERVER_STATUS_ANSI_QUOTES
	StatusMetadataChanged    = mysql.SERVER_STATUS_METADATA_CHANGED
	StatusQueryWasSlow       = mysql.SERVER_QUERY_WAS_SLOW
	StatusPSOutParams        = mysql.SERVER_PS_OUT_PARAMS
	StatusInTransReadonly    = mysql.SERVER_STATUS_IN_TRANS_READONLY
	StatusSessionStateChange = mysql.SERVER_SESSION_STATE_CHANGED
)

// Command bytes (COM_*), the first payload byte of a client command.
const (
	ComSleep            = mysql.COM_SLEEP
	ComQuit             = mysql.COM_QUIT
	ComInitDB           = mysql.COM_INIT_DB
	ComQuery            = mysql.COM_QUERY
	ComFieldList        = mysql.COM_FIELD_LIST
	ComCreateDB         = mysql.COM_CREATE_DB
	ComDropDB           = mysql.COM_DROP_DB
	ComRefresh          = mysql.COM_REFRESH
	ComShutdown         = mysql.COM_SHUTDOWN
	ComStatistics       = mysql.COM_STATISTICS
	ComProcessInfo      = mysql.COM_PROCESS_INFO
	ComConnect          = mysql.COM_CONNECT
	ComProcessKill      = mysql.COM_PROCESS_KILL
	ComDebug            = mysql.COM_DEBUG
	ComPing             = mysql.COM_PING
	ComTime             = mysql.COM_TIME
	ComDelayedInsert    = mysql.COM_DELAYED_INSERT
	ComChangeUser       = mysql.COM_CHANGE_USER
	ComBinlogDump       = mysql.COM_BINLOG_DUMP
	ComTableDump        = mysql.COM_TABLE_DUMP
	ComConnectOut       = mysql.COM_CONNECT_OUT
	ComRegisterSlave    = mysql.COM_REGISTER_SLAVE
	ComStmtPrepare      = mysql.COM_STMT_PREPARE
	ComStmtExecute      = mysql.COM_STMT_EXECUTE
	ComStmtSendLongData = mysql.COM_STMT_SEND_LONG_DATA
	ComStmtClose        = mysql.COM_STMT_CLOSE
	ComStmtReset        = mysql.COM_STMT_RESET
	ComSetOption        = mysql.COM_SET_OPTION
	ComStmtFetch        = mysql.COM_STMT_FETCH
	ComDaemon           = mysql.COM_DAEMON
	ComBinlogDumpGTID   = mysql.COM_BINLOG_DUMP_GTID
	ComResetConnection  = mysql.COM_RESET_CONNECTION
)

// COM_SET_OPTION arguments.
const (
	OptionMultiStatementsOn  uint16 = 0
	OptionMultiStatementsOff uint16 = 1
)

// Authentication plugin names.
const (
	AuthNativePassword     = mysql.AUTH_NATIVE_PASSWORD
	AuthCachingSha2        = mysql.AUTH_CACHING_SHA2_PASSWORD
	AuthSha256Password     = mysql.AUTH_SHA256_PASSWORD
	AuthClearPassword      = mysql.AUTH_CLEAR_PASSWORD
	AuthMariaDBEd25519     = mysql.AUTH_MARIADB_ED25519
	AuthMySQLOldPassword   = mysql.AUTH_MYSQL_OLD_PASSWORD
	CachingSha2FastAuthOK  = mysql.CACHE_SHA2_FAST_AUTH // AuthMoreData 0x03: scramble accepted from cache
	CachingSha2FullAuth    = mysql.CACHE_SHA2_FULL_AUTH // AuthMoreData 0x04: send the password (TLS or RSA)
	CachingSha2RequestKey  = 0x02                       // client → server: send me your RSA public key
	Sha256RequestPublicKey = 0x01                       // sha256_password: send me your RSA public key
)

// ProtocolVersion is the only handshake version Sluice speaks.
const ProtocolVersion = 10
