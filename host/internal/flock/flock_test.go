package flock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestASecondHolderWaitsForTheFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.lock")
	first, err := Acquire(context.Background(), path, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1)
	go func() {
		second, err := Acquire(context.Background(), path, Exclusive)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- time.Now()
		second.Release()
	}()
	time.Sleep(150 * time.Millisecond)
	released := time.Now()
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	at, ok := <-got
	if !ok {
		return
	}
	if at.Before(released) {
		t.Fatalf("the second holder got the lock %s before the first let it go", released.Sub(at))
	}
}

func TestSharedHoldersTogetherNeverWithAnExclusiveOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.lock")
	a, err := Acquire(context.Background(), path, Shared)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(context.Background(), path, Shared)
	if err != nil {
		t.Fatalf("a second shared holder: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, path, Exclusive); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an exclusive holder beside shared ones: %v", err)
	}
	a.Release()
	b.Release()
	c, err := Acquire(context.Background(), path, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
}

func TestADirectoryCanBeLocked(t *testing.T) {
	dir := t.TempDir()
	a, err := Acquire(context.Background(), dir, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, dir, Exclusive); err == nil {
		t.Fatal("the directory's lock was taken twice")
	}
	a.Release()
}
