package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
)

func TestApplyThreads(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "") // as unset: mysql-threads applies
	cpus := runtime.GOMAXPROCS(0)
	var out bytes.Buffer
	log := zerolog.New(&out)
	snap := func(v string) *config.Snapshot {
		return &config.Snapshot{MySQLVars: map[string]string{"mysql-threads": v}}
	}

	applyThreads(log, snap("1"))
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("mysql-threads=1: GOMAXPROCS %d", got)
	}
	applyThreads(log, snap("255"))
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("mysql-threads=255 on %d CPUs: GOMAXPROCS %d, want the CPUs", cpus, got)
	}
	applyThreads(log, &config.Snapshot{}) // the default, 4
	if got, want := runtime.GOMAXPROCS(0), min(4, cpus); got != want {
		t.Errorf("default mysql-threads: GOMAXPROCS %d, want %d", got, want)
	}

	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	out.Reset()
	applyThreads(log, snap("4"))
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS=1 in the environment, mysql-threads=4: GOMAXPROCS %d, want the environment's 1", got)
	}
	if !strings.Contains(out.String(), "GOMAXPROCS from the environment") {
		t.Errorf("the override is not logged: %s", out.String())
	}
}
