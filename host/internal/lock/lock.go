// Package lock is the per-co-op lock: a directory made with mkdir (atomic) holding a holder
// file that says who holds it. A holder whose process is gone (its pid dead, or reused by a
// process that started at another time), or a lock older than StaleAfter, is stale and is taken
// over with a message. The format is coopctl's, so the agent and the bash tool it replaces
// respect each other's locks during an upgrade.
package lock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"coop/host/internal/procfs"
)

const (
	// StaleAfter: a lock older than this is stale whatever its holder says (a deploy never
	// takes this long).
	StaleAfter = 30 * time.Minute
	// HolderlessGrace: a lock directory without a holder file is being taken (between mkdir
	// and writing the file); only a crash leaves it so for longer than this.
	HolderlessGrace = time.Minute
	// PollInterval is how often a waiting deploy looks at the lock again.
	PollInterval = 500 * time.Millisecond

	dirName    = "lock"
	holderName = "holder"
)

// Holder is who holds a lock.
type Holder struct {
	PID      int
	PIDStart uint64 // the process's start time in clock ticks since boot: a reused pid differs
	Started  time.Time
	By       string
	Host     string
}

// String is the holder as messages show it: pid=... pidstart=... started=... by=... host=...
func (h Holder) String() string {
	return fmt.Sprintf("pid=%d pidstart=%d started=%d by=%s host=%s", h.PID, h.PIDStart, h.Started.Unix(), h.By, h.Host)
}

func (h Holder) encode() string {
	return fmt.Sprintf("pid=%d\npidstart=%d\nstarted=%d\nby=%s\nhost=%s\n", h.PID, h.PIDStart, h.Started.Unix(), h.By, h.Host)
}

func parseHolder(text string) (Holder, error) {
	var h Holder
	fields := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = v
		}
	}
	pid, err := strconv.Atoi(fields["pid"])
	if err != nil || pid <= 0 {
		return h, fmt.Errorf("holder file has no pid")
	}
	h.PID = pid
	h.PIDStart, _ = strconv.ParseUint(fields["pidstart"], 10, 64)
	started, err := strconv.ParseInt(fields["started"], 10, 64)
	if err != nil {
		return h, fmt.Errorf("holder file has no start time")
	}
	h.Started = time.Unix(started, 0)
	h.By, h.Host = fields["by"], fields["host"]
	return h, nil
}

// Options are what a lock is taken with. Zero values of the functions use the real ones.
type Options struct {
	// Wait is how long to wait for another holder before giving up.
	Wait time.Duration
	// Holder is written into the lock; PID and PIDStart identify this process.
	Holder Holder
	// Log prints progress (waiting, taking over).
	Log func(format string, args ...any)
	// Poll is how often to look again while waiting; default PollInterval.
	Poll time.Duration
	// Now and Alive are the clock and the process table (tests replace them).
	Now   func() time.Time
	Alive func(pid int, start uint64) bool
}

// Lock is a held lock; Release gives it up.
type Lock struct {
	dir string
}

// ErrTimeout is wrapped by Acquire's error when another deploy held the lock for too long.
var ErrTimeout = errors.New("lock wait timed out")

// Self is the holder for this process: its pid and start time, now, the given name and host.
func Self(by string) Holder {
	host, _ := os.Hostname()
	start, _ := procfs.StartTime(os.Getpid())
	return Holder{PID: os.Getpid(), PIDStart: start, Started: time.Now(), By: by, Host: host}
}

// Acquire takes the lock in coopDir (coopDir/lock), waiting for another holder up to o.Wait and
// taking over a stale one.
func Acquire(ctx context.Context, coopDir string, o Options) (*Lock, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Alive == nil {
		o.Alive = procfs.Alive
	}
	if o.Poll == 0 {
		o.Poll = PollInterval
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	dir := filepath.Join(coopDir, dirName)
	deadline := o.Now().Add(o.Wait)
	waiting := false
	for {
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			if err := os.WriteFile(filepath.Join(dir, holderName), []byte(o.Holder.encode()), 0o600); err != nil {
				_ = os.RemoveAll(dir)
				return nil, fmt.Errorf("writing the lock's holder: %w", err)
			}
			return &Lock{dir: dir}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("taking the lock %s: %w", dir, err)
		}
		holder := describe(dir)
		if stale(dir, o) {
			// Renaming is atomic: of two deploys that both find the lock stale, one takes it over.
			aside := fmt.Sprintf("%s.stale.%d", dir, os.Getpid())
			if os.Rename(dir, aside) == nil {
				o.Log("took over a stale lock (%s)", holder)
				_ = os.RemoveAll(aside)
				continue
			}
		}
		if !o.Now().Before(deadline) {
			return nil, fmt.Errorf("locked by another deploy (%s); waited %d s: %w", holder, int(o.Wait.Seconds()), ErrTimeout)
		}
		if !waiting {
			o.Log("waiting for the lock held by another deploy (%s)", holder)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gave up waiting for the lock held by another deploy (%s): %w", holder, context.Cause(ctx))
		case <-time.After(o.Poll):
		}
	}
}

// describe is the lock's holder as a message shows it.
func describe(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, holderName))
	if err != nil {
		return "holder unknown"
	}
	if h, err := parseHolder(string(b)); err == nil {
		return h.String()
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\n", " "))
}

// stale: the lock in dir is held by nobody alive, or for too long.
func stale(dir string, o Options) bool {
	b, err := os.ReadFile(filepath.Join(dir, holderName))
	if err != nil {
		info, err := os.Stat(dir)
		return err == nil && o.Now().Sub(info.ModTime()) > HolderlessGrace
	}
	h, err := parseHolder(string(b))
	if err != nil {
		// A holder file that cannot be read is as good as none once the grace has passed.
		info, err := os.Stat(dir)
		return err == nil && o.Now().Sub(info.ModTime()) > HolderlessGrace
	}
	if !o.Alive(h.PID, h.PIDStart) {
		return true
	}
	return o.Now().Sub(h.Started) > StaleAfter
}

// Release gives the lock up; releasing twice is harmless.
func (l *Lock) Release() {
	if l == nil || l.dir == "" {
		return
	}
	_ = os.RemoveAll(l.dir)
	l.dir = ""
}

// Held says whether the lock in coopDir is held by someone alive (a deploy under way), and who.
func Held(coopDir string) (Holder, bool) {
	dir := filepath.Join(coopDir, dirName)
	if _, err := os.Stat(dir); err != nil {
		return Holder{}, false
	}
	if stale(dir, Options{Now: time.Now, Alive: procfs.Alive}) {
		return Holder{}, false
	}
	b, err := os.ReadFile(filepath.Join(dir, holderName))
	if err != nil {
		return Holder{}, true // being taken: held
	}
	h, _ := parseHolder(string(b))
	return h, true
}
