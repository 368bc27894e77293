package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type logged struct {
	mu    sync.Mutex
	lines []string
}

func (l *logged) log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logged) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func holder(pid int) Holder {
	return Holder{PID: pid, PIDStart: 77, Started: time.Now(), By: "tester", Host: "box"}
}

func TestAcquireAndRelease(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(context.Background(), dir, Options{Wait: time.Second, Holder: holder(123)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "lock", "holder"))
	if err != nil {
		t.Fatal(err)
	}
	// coopctl's format, so that both tools respect each other's lock.
	if !strings.HasPrefix(string(b), "pid=123\npidstart=77\nstarted=") || !strings.HasSuffix(string(b), "\nby=tester\nhost=box\n") {
		t.Fatalf("holder file:\n%s", b)
	}
	l.Release()
	l.Release()
	if _, err := os.Stat(filepath.Join(dir, "lock")); !os.IsNotExist(err) {
		t.Fatalf("lock still there after release: %v", err)
	}
}

func TestWaitsForALiveHolderThenGivesUp(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(context.Background(), dir, Options{Wait: time.Second, Holder: holder(os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	var log logged
	alive := func(int, uint64) bool { return true }
	_, err = Acquire(context.Background(), dir, Options{Wait: 600 * time.Millisecond, Holder: holder(1), Log: log.log, Alive: alive})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "locked by another deploy (pid=") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(log.text(), "waiting for the lock held by another deploy (pid=") {
		t.Fatalf("log: %s", log.text())
	}
}

func TestSecondTakesTheLockWhenTheFirstReleases(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(context.Background(), dir, Options{Wait: time.Second, Holder: holder(os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		first.Release()
	}()
	var log logged
	second, err := Acquire(context.Background(), dir, Options{Wait: 5 * time.Second, Holder: holder(2), Log: log.log, Alive: func(int, uint64) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	second.Release()
	if strings.Count(log.text(), "waiting for the lock") != 1 {
		t.Fatalf("want one waiting line, got:\n%s", log.text())
	}
}

func TestStaleHoldersAreTakenOver(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		holder string // holder file content; "" for none
		age    time.Duration
		alive  bool
		stale  bool
	}{
		{"dead holder", "pid=999999\npidstart=5\nstarted=%d\nby=a\nhost=h\n", 0, false, true},
		{"live holder", "pid=999999\npidstart=5\nstarted=%d\nby=a\nhost=h\n", 0, true, false},
		{"live holder older than 30 min", "pid=999999\npidstart=5\nstarted=%d\nby=a\nhost=h\n", 31 * time.Minute, true, true},
		{"no holder file, fresh", "", 0, true, false},
		{"no holder file, old", "", 2 * time.Minute, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ldir := filepath.Join(dir, "lock")
			if err := os.Mkdir(ldir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.holder != "" {
				content := fmt.Sprintf(tc.holder, now.Add(-tc.age).Unix())
				if err := os.WriteFile(filepath.Join(ldir, "holder"), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chtimes(ldir, now.Add(-tc.age), now.Add(-tc.age)); err != nil {
				t.Fatal(err)
			}
			var log logged
			l, err := Acquire(context.Background(), dir, Options{
				Wait: 0, Holder: holder(os.Getpid()), Log: log.log,
				Alive: func(pid int, start uint64) bool {
					if pid != 999999 || start != 5 {
						t.Errorf("asked about pid %d start %d", pid, start)
					}
					return tc.alive
				},
			})
			if tc.stale {
				if err != nil {
					t.Fatalf("not taken over: %v", err)
				}
				l.Release()
				if tc.holder != "" && !strings.Contains(log.text(), "took over a stale lock (pid=999999 pidstart=5 started=") {
					t.Fatalf("log: %s", log.text())
				}
				if tc.holder == "" && !strings.Contains(log.text(), "took over a stale lock (holder unknown)") {
					t.Fatalf("log: %s", log.text())
				}
				leftovers, _ := filepath.Glob(filepath.Join(dir, "lock.stale.*"))
				if len(leftovers) != 0 {
					t.Fatalf("left behind %v", leftovers)
				}
			} else if !errors.Is(err, ErrTimeout) {
				t.Fatalf("want a timeout, got %v", err)
			}
		})
	}
}

func TestManyContendersOneHolderAtATime(t *testing.T) {
	dir := t.TempDir()
	var (
		mu      sync.Mutex
		inside  int
		maxSeen int
		wg      sync.WaitGroup
	)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l, err := Acquire(context.Background(), dir, Options{Wait: 30 * time.Second, Holder: Self("contender"), Poll: 5 * time.Millisecond})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			maxSeen = max(maxSeen, inside)
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			l.Release()
		}(i)
	}
	wg.Wait()
	if maxSeen != 1 {
		t.Fatalf("%d holders at once", maxSeen)
	}
}

func TestCancelledWhileWaiting(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(context.Background(), dir, Options{Wait: time.Second, Holder: holder(os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("the client went away"))
	_, err = Acquire(ctx, dir, Options{Wait: time.Minute, Holder: holder(1), Alive: func(int, uint64) bool { return true }})
	if err == nil || !strings.Contains(err.Error(), "the client went away") {
		t.Fatalf("err = %v", err)
	}
}

func TestSelf(t *testing.T) {
	h := Self("someone")
	if h.PID != os.Getpid() || h.PIDStart == 0 || h.By != "someone" || h.Host == "" {
		t.Fatalf("%+v", h)
	}
}
