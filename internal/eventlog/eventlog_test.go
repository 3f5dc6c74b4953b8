package eventlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func newTestWriter(t *testing.T, dir string) *Writer {
	t.Helper()
	w := New(dir, zerolog.Nop())
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func queryEvent(i int) *Event {
	e := baseEvent()
	e.ThreadID = uint64(i)
	e.Query = fmt.Sprintf("SELECT %d /* padding padding padding */", i)
	return e
}

// logFiles lists dir's files named <base>.NNNNNNNN, in id order.
func logFiles(t *testing.T, dir, base string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), base+".") && len(e.Name()) == len(base)+9 {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// jsonLines returns the thread ids of the JSON lines in a file.
func jsonLines(t *testing.T, path string) []uint64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct {
			ThreadID uint64 `json:"thread_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		ids = append(ids, m.ThreadID)
	}
	return ids
}

func TestOffUntilConfigured(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir)
	w.Log(queryEvent(1))
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files written while off: %v", ents)
	}
	if w.Dropped() != 0 {
		t.Fatalf("events ignored while off must not count as dropped")
	}
}

// TestConfigureFailureKeepsFile: a new filename that cannot be created
// fails Configure (and so the LOAD) and leaves the current file in use.
func TestConfigureFailureKeepsFile(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir)
	if err := w.Configure(Settings{Filename: "q.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := w.Configure(Settings{Filename: "no/such/dir/q.log", Format: 2, MaxSize: 1 << 20}); err == nil {
		t.Fatal("a filename in a missing directory was accepted")
	}
	w.Log(queryEvent(3))
	path := filepath.Join(dir, "q.log.00000001")
	deadline := time.Now().Add(3 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if bytes.Count(data, []byte("\n")) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the current file stopped logging after a failed Configure (have %q)", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFlushedPromptly(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir)
	if err := w.Configure(Settings{Filename: "queries.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(7))
	path := filepath.Join(dir, "queries.log.00000001")
	deadline := time.Now().Add(3 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if bytes.Count(data, []byte("\n")) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("line not flushed within 3s (have %q)", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ids := jsonLines(t, path); len(ids) != 1 || ids[0] != 7 {
		t.Fatalf("got %v", ids)
	}
}

func TestRotationBySize(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir)
	const maxSize = 1000
	if err := w.Configure(Settings{Filename: "q.log", Format: 2, MaxSize: maxSize}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := 0; i < n; i++ {
		w.Log(queryEvent(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, dir, "q.log")
	if len(files) < 3 {
		t.Fatalf("want several files, got %v", files)
	}
	var all []uint64
	for i, f := range files {
		if want := fmt.Sprintf("q.log.%08d", i+1); f != want {
			t.Fatalf("file %d is %s, want %s", i, f, want)
		}
		path := filepath.Join(dir, f)
		st, _ := os.Stat(path)
		ids := jsonLines(t, path)
		if i < len(files)-1 {
			// Every closed file went past the limit with its last line, and
			// was still within it before that line (ProxySQL's tellp check).
			data, _ := os.ReadFile(path)
			lastLen := len(data) - bytes.LastIndexByte(data[:len(data)-1], '\n') - 1
			if st.Size() <= maxSize || st.Size()-int64(lastLen) > maxSize {
				t.Errorf("%s: size %d (last line %d) does not match rotation at %d", f, st.Size(), lastLen, maxSize)
			}
		}
		all = append(all, ids...)
	}
	if len(all) != n {
		t.Fatalf("got %d events across files, want %d", len(all), n)
	}
	for i, id := range all {
		if id != uint64(i) {
			t.Fatalf("event order broken at %d: %v", i, all)
		}
	}
}

func TestRotateCommand(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir)
	if err := w.Configure(Settings{Filename: "q.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(1))
	w.Log(queryEvent(2))
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(3))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if files := logFiles(t, dir, "q.log"); len(files) != 2 {
		t.Fatalf("files %v", files)
	}
	if a, b := jsonLines(t, filepath.Join(dir, "q.log.00000001")), jsonLines(t, filepath.Join(dir, "q.log.00000002")); fmt.Sprint(a, b) != "[1 2] [3]" {
		t.Fatalf("got %v %v", a, b)
	}
}

func TestNumberingContinuesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"q.log.00000003", "q.log.00000007", "q.log.0000000x", "q.log.123", "q.log.000000099", "other.log.00000050", "q.log"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := New(dir, zerolog.Nop())
	if err := w.Configure(Settings{Filename: "q.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(1))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := jsonLines(t, filepath.Join(dir, "q.log.00000008")); len(ids) != 1 {
		t.Fatalf("want the event in q.log.00000008, got %v", ids)
	}
	// A second process start continues from there.
	w2 := New(dir, zerolog.Nop())
	if err := w2.Configure(Settings{Filename: "q.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w2.Log(queryEvent(2))
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := jsonLines(t, filepath.Join(dir, "q.log.00000009")); len(ids) != 1 || ids[0] != 2 {
		t.Fatalf("second start: got %v", ids)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "q.log.00000007")); string(data) != "old\n" {
		t.Fatal("an existing file was overwritten")
	}
}

func TestConfigureChanges(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir)
	if err := w.Configure(Settings{Filename: "a.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(1))
	// Same name and format: same file, only the limit changes.
	if err := w.Configure(Settings{Filename: "a.log", Format: 2, MaxSize: 2 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(2))
	// New name: the old file is closed, the new one starts at 1.
	if err := w.Configure(Settings{Filename: "b.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(3))
	// Format change on the same name starts a new file.
	if err := w.Configure(Settings{Filename: "b.log", Format: 1, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(4))
	// Off: nothing more is written.
	if err := w.Configure(Settings{Filename: "", Format: 1, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(5))
	// Absolute path in a subdirectory.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.Configure(Settings{Filename: filepath.Join(sub, "c.log"), Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Log(queryEvent(6))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	if got := jsonLines(t, filepath.Join(dir, "a.log.00000001")); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("a.log: %v", got)
	}
	if got := logFiles(t, dir, "a.log"); len(got) != 1 {
		t.Errorf("a.log files: %v", got)
	}
	if got := jsonLines(t, filepath.Join(dir, "b.log.00000001")); fmt.Sprint(got) != "[3]" {
		t.Errorf("b.log.1: %v", got)
	}
	data, err := os.ReadFile(filepath.Join(dir, "b.log.00000002"))
	if err != nil {
		t.Fatal(err)
	}
	r, rest, err := readRecord(data)
	if err != nil || len(rest) != 0 || r.threadID != 4 {
		t.Errorf("b.log.2 (binary): %+v rest %d err %v", short(r), len(rest), err)
	}
	if got := jsonLines(t, filepath.Join(sub, "c.log.00000001")); fmt.Sprint(got) != "[6]" {
		t.Errorf("c.log: %v", got)
	}
}

func TestConfigureErrors(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir)
	for _, c := range []struct {
		name   string
		format int
		size   int64
		want   error
	}{
		{"q.log", 4, 1 << 20, ErrFormat}, // 3 is FormatAudit, not a mysql-eventslog_format value (its range is 1..2)
		{"q.log", 2, 0, ErrSize},
		{"logs/", 2, 1 << 20, ErrFilename},
	} {
		if err := w.Configure(Settings{Filename: c.name, Format: c.format, MaxSize: c.size}); !errors.Is(err, c.want) {
			t.Errorf("Configure(%q, %d, %d) = %v, want %v", c.name, c.format, c.size, err, c.want)
		}
	}
	if err := w.Configure(Settings{Filename: "missing/q.log", Format: 2, MaxSize: 1 << 20}); err == nil {
		t.Error("opening in a missing directory succeeded")
	}
	// Once the directory exists the same settings work.
	if err := os.Mkdir(filepath.Join(dir, "missing"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.Configure(Settings{Filename: "missing/q.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Configure(Settings{Filename: "q.log", Format: 2, MaxSize: 1 << 20}); !errors.Is(err, ErrClosed) {
		t.Errorf("Configure after Close = %v", err)
	}
	if err := w.Rotate(); !errors.Is(err, ErrClosed) {
		t.Errorf("Rotate after Close = %v", err)
	}
	w.Log(queryEvent(1)) // must not panic or block
}

func TestDroppedWhenQueueFull(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(dir, zerolog.Nop(), 4)
	defer w.Close()
	if err := w.Configure(Settings{Filename: "q.log", Format: 2, MaxSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() { held <- w.onWriter(func() { close(entered); <-release }) }()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("writer goroutine did not pause")
	}
	start := time.Now()
	for i := 0; i < 10; i++ {
		w.Log(queryEvent(i))
	}
	if time.Since(start) > time.Second {
		t.Fatal("Log blocked on a full queue")
	}
	if got := w.Dropped(); got != 6 {
		t.Fatalf("Dropped() = %d, want 6", got)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := jsonLines(t, filepath.Join(dir, "q.log.00000001")); fmt.Sprint(ids) != "[0 1 2 3]" {
		t.Fatalf("written %v", ids)
	}
}

func TestLogDoesNotAllocate(t *testing.T) {
	w := newWriter(t.TempDir(), zerolog.Nop(), 1<<16)
	defer w.Close()
	if err := w.Configure(Settings{Filename: "q.log", Format: 2, MaxSize: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	e := queryEvent(1)
	if n := testing.AllocsPerRun(1000, func() { w.Log(e) }); n != 0 {
		t.Fatalf("Log allocates %.1f times per call", n)
	}
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	e := queryEvent(1)
	e.Query = "SELECT 'ü\x00\xff'"
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(1000, func() { buf = appendJSON(buf[:0], e) }); n != 0 {
		t.Errorf("appendJSON allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { buf = appendBinary(buf[:0], e) }); n != 0 {
		t.Errorf("appendBinary allocates %.1f times", n)
	}
}

func BenchmarkLog(b *testing.B) {
	for _, format := range []int{1, 2} {
		b.Run(fmt.Sprintf("format%d", format), func(b *testing.B) {
			w := New(b.TempDir(), zerolog.Nop())
			if err := w.Configure(Settings{Filename: "q.log", Format: format, MaxSize: 1 << 30}); err != nil {
				b.Fatal(err)
			}
			// Keep the disk out of it: this measures what a client pays.
			if err := w.onWriter(func() { w.bw.Reset(io.Discard) }); err != nil {
				b.Fatal(err)
			}
			e := queryEvent(1)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w.Log(e)
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(w.Dropped())/float64(b.N), "dropped/op")
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	e := queryEvent(1)
	e.HasRowsAffected, e.RowsAffected = true, 1
	buf := make([]byte, 0, 4096)
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = appendJSON(buf[:0], e)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = appendBinary(buf[:0], e)
		}
		b.SetBytes(int64(len(buf)))
	})
}

// BenchmarkWriterThroughput measures the writer goroutine's side: encoding
// plus the buffered write path. The buffer drains to io.Discard so the figure
// does not depend on the disk (and the benchmark does not fill it).
func BenchmarkWriterThroughput(b *testing.B) {
	for _, format := range []int{1, 2} {
		b.Run(fmt.Sprintf("format%d", format), func(b *testing.B) {
			w := New(b.TempDir(), zerolog.Nop())
			defer w.Close()
			if err := w.Configure(Settings{Filename: "q.log", Format: format, MaxSize: 1 << 40}); err != nil {
				b.Fatal(err)
			}
			e := queryEvent(1)
			b.ReportAllocs()
			b.ResetTimer()
			if err := w.onWriter(func() {
				w.bw.Reset(io.Discard)
				for i := 0; i < b.N; i++ {
					w.write(e)
				}
			}); err != nil {
				b.Fatal(err)
			}
		})
	}
}
