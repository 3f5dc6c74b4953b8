package proxy

import (
	"errors"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/internal/config"
)

// The scheduler runs the active rows of runtime_scheduler as ProxySQL's
// ProxySQL_External_Scheduler does: after each LOAD SCHEDULER TO RUNTIME
// every active job is first due interval_ms later, and then every
// interval_ms; a due job's filename is executed with argv = filename,
// arg1…arg5 up to the first NULL, and an empty environment, and the proxy
// does not wait for it. ProxySQL logs "Scheduler starting id: …" and
// leaves the child's output on its own stdout/stderr; Sluice logs the start
// the same way and the end with the exit status and the output (each of
// stdout and stderr clipped to schedMaxOutput).
//
// Sluice's bound (ProxySQL has none): a job whose previous run has not
// ended is skipped for that interval, with a warning, so a script slower
// than its interval does not pile up processes. Each run has its own
// process group; Close sends SIGTERM to the groups still running.

const schedMaxOutput = 4 << 10

type scheduler struct {
	log    zerolog.Logger
	reload chan []config.SchedulerJob
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once

	mu      sync.Mutex
	running map[int]int // job id → pid of its run still going
}

func newScheduler(log zerolog.Logger) *scheduler {
	s := &scheduler{log: log, reload: make(chan []config.SchedulerJob, 1), stop: make(chan struct{}),
		done: make(chan struct{}), running: make(map[int]int)}
	go s.loop()
	return s
}

// load makes jobs the scheduler's table (LOAD SCHEDULER TO RUNTIME).
func (s *scheduler) load(jobs []config.SchedulerJob) {
	jobs = append([]config.SchedulerJob(nil), jobs...)
	for {
		select {
		case s.reload <- jobs:
			return
		case <-s.reload: // an older table nobody ran yet: replace it
		}
	}
}

type schedJob struct {
	config.SchedulerJob
	next time.Time
}

func (s *scheduler) loop() {
	defer close(s.done)
	var jobs []schedJob
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var next time.Time
		for _, j := range jobs {
			if next.IsZero() || j.next.Before(next) {
				next = j.next
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-s.stop:
			return
		case table := <-s.reload:
			now := time.Now()
			jobs = jobs[:0]
			for _, j := range table {
				if j.Active {
					jobs = append(jobs, schedJob{SchedulerJob: j, next: now.Add(time.Duration(j.IntervalMs) * time.Millisecond)})
				}
			}
		case now := <-timer.C:
			for i := range jobs {
				j := &jobs[i]
				if now.Before(j.next) {
					continue
				}
				j.next = now.Add(time.Duration(j.IntervalMs) * time.Millisecond)
				s.start(j.SchedulerJob)
			}
		}
	}
}

// argv is the job's command line: the filename, then arg1…arg5 up to the
// first NULL (execve's argv ends at the first NULL pointer).
func argv(j config.SchedulerJob) []string {
	args := []string{j.Filename}
	for _, a := range j.Args {
		if !a.Valid {
			break
		}
		args = append(args, a.String)
	}
	return args
}

func (s *scheduler) start(j config.SchedulerJob) {
	s.mu.Lock()
	if pid, busy := s.running[j.ID]; busy {
		s.mu.Unlock()
		s.log.Warn().Int("id", j.ID).Str("filename", j.Filename).Int("pid", pid).
			Msg("Scheduler: the previous run of the job has not ended, this one is skipped")
		return
	}
	args := argv(j)
	cmd := &exec.Cmd{Path: j.Filename, Args: args, Env: []string{},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	// A child of the job that keeps its output open must not keep the
	// job "running" once the job itself has exited.
	cmd.WaitDelay = time.Second
	stdout := &capBuffer{max: schedMaxOutput, over: func() {}}
	stderr := &capBuffer{max: schedMaxOutput, over: func() {}}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	s.log.Info().Int("id", j.ID).Str("filename", j.Filename).Msg("Scheduler starting")
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.log.Error().Int("id", j.ID).Str("filename", j.Filename).Err(err).Msg("Scheduler: Failed to run")
		return
	}
	s.running[j.ID] = cmd.Process.Pid
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		delete(s.running, j.ID)
		s.mu.Unlock()
		ev := s.log.Debug()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			ev = s.log.Warn().Str("status", exitErr.ProcessState.String())
		} else if err != nil {
			ev = s.log.Warn().Err(err)
		}
		out, _ := stdout.bytes()
		errOut, _ := stderr.bytes()
		ev.Int("id", j.ID).Str("filename", j.Filename).Bytes("stdout", out).Bytes("stderr", errOut).
			Msg("Scheduler job ended")
	}()
}

// close stops scheduling and sends SIGTERM to the runs still going.
func (s *scheduler) close() {
	s.closed.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pid := range s.running {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
}
