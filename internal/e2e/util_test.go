package e2e

import (
	"database/sql/driver"
	"strconv"
)

// driverBadConn makes database/sql drop a connection instead of pooling it.
var driverBadConn = driver.ErrBadConn

func itoa(n int) string { return strconv.Itoa(n) }
