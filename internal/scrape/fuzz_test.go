package scrape

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReduce: whatever a server's metrics endpoint answers (the body is
// already bounded by maxBody), Reduce under every preset returns a sample
// or an error without a panic, the line filter never grows the text by
// more than the newline it may add, and a sample it returns has data.
func FuzzReduce(f *testing.F) {
	presets := []string{PresetTiDB, PresetProcess, PresetNode, PresetStarRocksFE}
	files, _ := filepath.Glob("testdata/*.prom")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for i := range presets {
			f.Add(b, byte(i))
		}
	}
	f.Add([]byte("process_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 1e9\ntidb_server_maxprocs 8\n"), byte(0))
	f.Add([]byte("# TYPE jvm_heap_size_bytes gauge\njvm_heap_size_bytes{type=\"used\"} NaN\njvm_heap_size_bytes{type=\"max\"} 0"), byte(3))
	f.Add([]byte("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\" 1\n#\n# TYPE\n"), byte(2))
	f.Fuzz(func(t *testing.T, text []byte, preset byte) {
		p := presets[int(preset)%len(presets)]
		if out := filter(text, wanted[p]); len(out) > len(text)+1 {
			t.Fatalf("filter grew %d bytes to %d", len(text), len(out))
		}
		for _, tgt := range []Target{{Preset: p}, {Preset: p, CPUs: 4, MemLimit: 1 << 30}} {
			smp, err := Reduce(text, tgt, time.Unix(1_700_000_000, 0))
			if err == nil && math.IsNaN(smp.CPUSeconds) && math.IsNaN(smp.Mem) {
				t.Fatalf("a sample without data and no error")
			}
		}
	})
}
