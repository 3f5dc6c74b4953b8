// Package eventlog writes ProxySQL's events log (the query log): one record
// per COM_QUERY, COM_STMT_PREPARE and COM_STMT_EXECUTE, in ProxySQL's binary
// format 1 or JSON format 2, to files named <base>.00000001, <base>.00000002,
// … that rotate by size and on PROXYSQL FLUSH LOGS (reference §6).
//
// Logging is off the hot path. Log hands the *Event to a buffered channel and
// returns; one goroutine per Writer encodes into a reused buffer and writes
// through a bufio.Writer that it flushes at least every 100 ms. When the
// channel is full the event is dropped and counted rather than making the
// client wait, which is the one place Sluice deliberately differs from
// ProxySQL (whose workers write the file under a global lock).
package eventlog

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// EventType is the kind of request logged. The values are ProxySQL's
// log_event_type numbers, which format 1 writes as the record's type byte.
type EventType uint8

// The logged request kinds.
const (
	ComQuery       EventType = 0  // PROXYSQL_COM_QUERY
	ComStmtExecute EventType = 16 // PROXYSQL_COM_STMT_EXECUTE
	ComStmtPrepare EventType = 17 // PROXYSQL_COM_STMT_PREPARE
)

// String returns the name format 2 writes in "event". Like ProxySQL, any
// value other than the two statement kinds is reported as COM_QUERY.
func (t EventType) String() string {
	switch t {
	case ComStmtExecute:
		return "COM_STMT_EXECUTE"
	case ComStmtPrepare:
		return "COM_STMT_PREPARE"
	}
	return "COM_QUERY"
}

func (t EventType) isStmt() bool { return t == ComStmtExecute || t == ComStmtPrepare }

// Event is one logged request. The caller fills it at request end and hands
// it to Log; from then on it belongs to the Writer and must not be changed.
type Event struct {
	Type         EventType
	ThreadID     uint64 // Sluice session id
	Username     string
	Schemaname   string
	Client       string    // "ip:port"
	HostgroupID  int       // -1 if no backend was used
	Server       string    // "host:port", "" if none
	Start, End   time.Time // wall clock; written as epoch microseconds
	RowsAffected uint64
	// HasRowsAffected says the response was an OK packet: rows_affected (and
	// a non-zero last_insert_id) are logged only then.
	HasRowsAffected bool
	RowsSent        uint64
	// HasRowsSent says the response was a result set. ProxySQL 2.7 logs
	// rows_sent for every event (0 without a result set), so the file formats
	// do not depend on it; it is kept for callers that want the distinction.
	HasRowsSent  bool
	LastInsertID uint64
	Digest       uint64
	ClientStmtID uint32 // PREPARE/EXECUTE only
	Query        string // the statement text; for EXECUTE the prepared text

	// The audit log's fields (FormatAudit): the event (Audit* names,
	// ProxySQL's), the listener's address, TLS, an optional note, and for
	// close events the session's creation time (its duration runs to
	// Start).
	Audit     string
	ProxyAddr string
	SSL       bool
	ExtraInfo string
	Created   time.Time
}

// FormatAudit is the audit log's format (mysql-auditlog_filename): JSON
// lines of connection events, as ProxySQL's MySQL_Logger::write_auth.
const FormatAudit = 3

// The audit events Sluice writes, with ProxySQL's names.
const (
	AuditClientConnectOK  = "MySQL_Client_Connect_OK"
	AuditClientConnectERR = "MySQL_Client_Connect_ERR"
	AuditClientQuit       = "MySQL_Client_Quit"
	AuditClientClose      = "MySQL_Client_Close"
	AuditClientInitDB     = "MySQL_Client_Init_DB"
	AuditAdminConnectOK   = "Admin_Connect_OK"
	AuditAdminConnectERR  = "Admin_Connect_ERR"
	AuditAdminQuit        = "Admin_Quit"
	AuditAdminClose       = "Admin_Close"
)

// Errors returned by Configure, Rotate and Close.
var (
	ErrClosed   = errors.New("eventlog: writer is closed")
	ErrFormat   = errors.New("eventlog: format must be 1 (binary), 2 (JSON) or 3 (audit)")
	ErrFilename = errors.New("eventlog: filename must name a file, not a directory")
	ErrSize     = errors.New("eventlog: maximum file size must be positive")
)

const (
	defaultQueueLen = 16384 // events waiting for the writer goroutine
	flushInterval   = 100 * time.Millisecond
	maxBatch        = 512                // events written per wake-up before control requests are looked at
	bufSize         = 64 << 10           // bufio buffer per open file
	maxKeptBuf      = 1 << 20            // encode buffers beyond this are not kept for reuse
	fileMode        = os.FileMode(0o600) // query texts (and what they carry) for the owner only; ProxySQL leaves 0644
)

type ctlKind int

const (
	ctlConfigure ctlKind = iota
	ctlRotate
	ctlClose
	ctlRun // test hook: run fn on the writer goroutine
)

type ctlReq struct {
	kind     ctlKind
	filename string
	format   int
	maxSize  int64
	fn       func()
	reply    chan error
}

// Writer writes the events log. All methods are safe for concurrent use.
type Writer struct {
	datadir string
	log     zerolog.Logger

	events chan *Event
	ctl    chan ctlReq
	done   chan struct{}

	active    atomic.Bool // a file is open: Log queues events
	closed    atomic.Bool
	dropped   atomic.Uint64
	closeOnce sync.Once
	closeErr  error

	// Owned by the run goroutine.
	base       string // datadir-resolved filename without the .NNNNNNNN suffix; "" = off
	format     int
	maxSize    int64
	f          *os.File
	bw         *bufio.Writer
	path       string // file currently open
	size       int64  // bytes written to it, buffered or not (ProxySQL's tellp())
	buf        []byte
	dirty      bool
	timer      *time.Timer
	timerArmed bool
}

// New returns a Writer that is off until Configure names a file. Relative
// filenames are resolved against datadir.
func New(datadir string, log zerolog.Logger) *Writer {
	return newWriter(datadir, log, defaultQueueLen)
}

func newWriter(datadir string, log zerolog.Logger, queueLen int) *Writer {
	w := &Writer{
		datadir: datadir,
		log:     log,
		events:  make(chan *Event, queueLen),
		ctl:     make(chan ctlReq),
		done:    make(chan struct{}),
		format:  1,
		maxSize: 100 << 20,
		timer:   time.NewTimer(time.Hour),
	}
	w.timer.Stop()
	go w.run()
	return w
}

// Settings are the events-log variables.
type Settings struct {
	Filename string // mysql-eventslog_filename; "" turns logging off
	Format   int    // mysql-eventslog_format: 1 binary, 2 JSON
	MaxSize  int64  // mysql-eventslog_filesize: rotate past this many bytes
}

// Check reports settings the writer cannot act on.
func (st Settings) Check() error {
	if st.Format != 1 && st.Format != 2 && st.Format != FormatAudit {
		return fmt.Errorf("%w: got %d", ErrFormat, st.Format)
	}
	if st.MaxSize <= 0 {
		return fmt.Errorf("%w: got %d", ErrSize, st.MaxSize)
	}
	if strings.HasSuffix(st.Filename, "/") {
		return fmt.Errorf("%w: %q", ErrFilename, st.Filename)
	}
	return nil
}

// Configure applies the settings. An empty filename turns logging off. As
// in ProxySQL, a new filename closes the current file and opens
// <filename>.<max existing id + 1>; the same filename keeps the current
// file (only the size limit changes), except that a format change starts a
// new file so that one file never mixes formats. Events already queued are
// written under the old settings first.
func (w *Writer) Configure(st Settings) error {
	if err := st.Check(); err != nil {
		return err
	}
	return w.call(ctlReq{kind: ctlConfigure, filename: st.Filename, format: st.Format, maxSize: st.MaxSize})
}

// Rotate closes the current file and opens the next one (PROXYSQL FLUSH
// LOGS). It does nothing while logging is off.
func (w *Writer) Rotate() error { return w.call(ctlReq{kind: ctlRotate}) }

// Log queues e for writing and returns at once. It never blocks: when logging
// is off the event is ignored, and when the queue is full it is dropped and
// counted (see Dropped). Log takes ownership of e.
func (w *Writer) Log(e *Event) {
	if !w.active.Load() {
		return
	}
	select {
	case w.events <- e:
	default:
		w.dropped.Add(1)
	}
}

// Dropped returns how many events were discarded because the queue was full.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Close writes what is queued, flushes and closes the file, and stops the
// writer goroutine. Later calls return the first call's result.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		w.closeErr = w.call(ctlReq{kind: ctlClose})
	})
	return w.closeErr
}

// call hands a control request to the run goroutine and waits for its result.
func (w *Writer) call(req ctlReq) error {
	if w.closed.Load() && req.kind != ctlClose {
		return ErrClosed
	}
	req.reply = make(chan error, 1)
	select {
	case w.ctl <- req:
	case <-w.done:
		return ErrClosed
	}
	return <-req.reply
}

func (w *Writer) run() {
	defer close(w.done)
	for {
		select {
		case e := <-w.events:
			w.writeBatch(e)
		case req := <-w.ctl:
			w.drain()
			var err error
			switch req.kind {
			case ctlConfigure:
				err = w.configure(req.filename, req.format, req.maxSize)
			case ctlRotate:
				if w.base != "" {
					err = w.rotate()
				}
			case ctlRun:
				req.fn()
			case ctlClose:
				err = w.closeFile()
				w.base = ""
				w.timer.Stop()
				req.reply <- err
				return
			}
			req.reply <- err
		case <-w.timerC():
			w.timerArmed = false
			if err := w.flush(); err != nil {
				w.fail(err)
			}
		}
		if w.dirty && !w.timerArmed {
			w.timer.Reset(flushInterval)
			w.timerArmed = true
		}
	}
}

// timerC is the flush timer's channel while a flush is pending, else nil (a
// nil channel never fires, so an idle writer sleeps without waking up).
func (w *Writer) timerC() <-chan time.Time {
	if w.timerArmed {
		return w.timer.C
	}
	return nil
}

// writeBatch writes e and whatever else is already queued, up to maxBatch.
func (w *Writer) writeBatch(e *Event) {
	w.write(e)
	for n := 1; n < maxBatch; n++ {
		select {
		case e = <-w.events:
			w.write(e)
		default:
			return
		}
	}
}

// drain writes every event queued so far, so that a control request applies
// after the events logged before it.
func (w *Writer) drain() {
	for {
		select {
		case e := <-w.events:
			w.write(e)
		default:
			return
		}
	}
}

func (w *Writer) write(e *Event) {
	if w.f == nil {
		return // logging was turned off or the file failed after e was queued
	}
	switch w.format {
	case 1:
		w.buf = appendBinary(w.buf[:0], e)
	case FormatAudit:
		w.buf = appendAudit(w.buf[:0], e)
	default:
		w.buf = appendJSON(w.buf[:0], e)
	}
	n, err := w.bw.Write(w.buf)
	w.size += int64(n)
	w.dirty = true
	if cap(w.buf) > maxKeptBuf {
		w.buf = nil
	}
	if err != nil {
		w.fail(err)
		return
	}
	// ProxySQL checks tellp() after each write and rotates once it is past
	// the limit, so a file ends with the event that crossed it.
	if w.size > w.maxSize {
		if err := w.rotate(); err != nil {
			w.log.Error().Err(err).Msg("events log rotation failed")
		}
	}
}

func (w *Writer) configure(filename string, format int, maxSize int64) error {
	base := ""
	if filename != "" {
		base = filename
		if !filepath.IsAbs(base) {
			base = filepath.Join(w.datadir, base)
		}
	}
	if base == w.base {
		w.maxSize = maxSize
		formatChanged := format != w.format
		w.format = format
		switch {
		case base == "":
			return nil
		case w.f == nil:
			return w.openNext() // the last open failed: try again
		case formatChanged:
			return w.rotate()
		}
		return nil
	}
	if base == "" {
		err := w.closeFile()
		w.base, w.format, w.maxSize = "", format, maxSize
		return err
	}
	// Open the new file before letting go of the current one: a name that
	// cannot be created fails the LOAD and leaves logging as it was.
	f, path, err := w.createNext(base)
	if err != nil {
		return err
	}
	cerr := w.closeCurrent()
	w.base, w.format, w.maxSize = base, format, maxSize
	w.adopt(f, path)
	return cerr
}

// rotate moves to the next file. Logging stays active throughout: events
// logged while the files change wait in the queue instead of being dropped.
func (w *Writer) rotate() error {
	return errors.Join(w.closeCurrent(), w.openNext())
}

// openNext opens <base>.<max existing id + 1>, scanning the directory each
// time as ProxySQL's events_find_next_id does, so numbering continues across
// restarts and never reuses a file that is already there.
func (w *Writer) openNext() error {
	f, path, err := w.createNext(w.base)
	if err != nil {
		return err
	}
	w.adopt(f, path)
	return nil
}

// createNext creates <base>.<max existing id + 1>.
func (w *Writer) createNext(base string) (*os.File, string, error) {
	dir, name := filepath.Split(base)
	if dir == "" {
		dir = "."
	}
	id, err := maxFileID(dir, name)
	if err != nil {
		return nil, "", fmt.Errorf("eventlog: scan %s: %w", dir, err)
	}
	path := fmt.Sprintf("%s.%08d", base, id+1)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		w.log.Error().Err(err).Str("file", path).Msg("cannot create events log file")
		return nil, "", fmt.Errorf("eventlog: %w", err)
	}
	return f, path, nil
}

// adopt makes f the file events go to.
func (w *Writer) adopt(f *os.File, path string) {
	w.f, w.path, w.size = f, path, 0
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, bufSize)
	} else {
		w.bw.Reset(f)
	}
	w.active.Store(true)
	w.log.Info().Str("file", path).Int("format", w.format).Msg("starting new events log file")
}

// maxFileID returns the highest N among files named <name>.NNNNNNNN in dir
// (exactly eight digits, as ProxySQL matches them), or 0.
func maxFileID(dir, name string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	maxID := 0
	for _, ent := range ents {
		n := ent.Name()
		if len(n) != len(name)+9 || !strings.HasPrefix(n, name) || n[len(name)] != '.' {
			continue
		}
		digits := n[len(name)+1:]
		if strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			continue
		}
		if id, err := strconv.Atoi(digits); err == nil && id > maxID {
			maxID = id
		}
	}
	return maxID, nil
}

func (w *Writer) flush() error {
	if w.f == nil || !w.dirty {
		return nil
	}
	w.dirty = false
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("eventlog: write %s: %w", w.path, err)
	}
	return nil
}

// closeFile flushes and closes the open file, if any; afterwards Log ignores
// events until a file is opened again.
func (w *Writer) closeFile() error {
	w.active.Store(false)
	return w.closeCurrent()
}

// closeCurrent flushes and closes the open file without turning logging off.
func (w *Writer) closeCurrent() error {
	if w.f == nil {
		return nil
	}
	err := w.flush()
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("eventlog: close %s: %w", w.path, cerr)
	}
	w.f = nil
	w.bw.Reset(nil)
	w.dirty = false
	return err
}

// fail gives up on the current file after a write error (disk full, file
// system gone): the error is logged once and logging pauses until Configure
// or Rotate opens a file again.
func (w *Writer) fail(err error) {
	w.log.Error().Err(err).Str("file", w.path).Msg("events log write failed; logging paused until the next rotation")
	w.active.Store(false)
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
		w.bw.Reset(nil)
	}
	w.dirty = false
}

// onWriter runs fn on the writer goroutine and waits for it; tests use it to
// hold the goroutine while they fill the queue.
func (w *Writer) onWriter(fn func()) error { return w.call(ctlReq{kind: ctlRun, fn: fn}) }
