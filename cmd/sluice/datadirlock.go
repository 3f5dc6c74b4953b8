package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// pidFile is the datadir's pid file, held locked by the running Sluice (as
// ProxySQL keeps proxysql.pid in its datadir).
const pidFile = "sluice.pid"

// lockDatadir takes datadir for this process: an exclusive flock on its pid
// file, which also records the pid. A second Sluice on the same datadir
// would overwrite the first's saved configuration with its own (its config
// file, its ports) and the first's next restart would come up with them:
// it is refused. The lock lives as long as the process — across PROXYSQL
// RESTART too, whose exec closes the descriptor (close-on-exec) and whose
// new image takes the lock again. release removes the pid file and drops
// the lock.
func lockDatadir(datadir string) (release func(), err error) {
	path := filepath.Join(datadir, pidFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		pid := strings.TrimSpace(string(b[:n]))
		return nil, fmt.Errorf("datadir %s is in use by another Sluice (pid %s, which holds %s): two processes on one datadir would overwrite each other's saved configuration; give this one its own datadir (-D)",
			datadir, pid, path)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = os.Remove(path)
		_ = f.Close()
	}, nil
}
