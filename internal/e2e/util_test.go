package e2e

import "database/sql/driver"

// driverBadConn makes database/sql drop a connection instead of pooling it.
var driverBadConn = driver.ErrBadConn
