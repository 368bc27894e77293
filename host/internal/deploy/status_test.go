package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestCoopsListsTheCoopDirectoriesInOrder(t *testing.T) {
	root := t.TempDir()
	for _, id := range []string{"beta", "alpha"} {
		if err := os.MkdirAll(filepath.Join(root, "coops", id), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "coops", "stray-file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := Coops(root)
	if err != nil || len(ids) != 2 || ids[0] != "alpha" || ids[1] != "beta" {
		t.Fatalf("Coops = %v, %v; want [alpha beta]", ids, err)
	}
	none, err := Coops(t.TempDir())
	if err != nil || len(none) != 0 {
		t.Fatalf("Coops of a root without coops = %v, %v", none, err)
	}
}

func TestStatusOfACoopNothingServes(t *testing.T) {
	dir := t.TempDir()
	host := newFakeHost()
	s, err := Status(context.Background(), host, host, "alpha", dir, func(string) bool { t.Fatal("no probe without a live release"); return false })
	if err != nil {
		t.Fatal(err)
	}
	if s.Coop != "alpha" || s.Live != nil || s.Idle != nil || s.Healthy != nil || s.Lock != "" {
		t.Fatalf("status = %+v; want nothing live", s)
	}
}

func TestStatusAfterTwoReleases(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2))
	var asked []string
	s, err := Status(context.Background(), h.host, h.host, "alpha", h.dir, func(url string) bool { asked = append(asked, url); return true })
	if err != nil {
		t.Fatal(err)
	}
	// The fake engine says every running container last started at 2026-12-01T12:00:00Z, as if
	// it had restarted them: the release still serves since its switch, which its record dates.
	if s.Live == nil || s.Live.Slot != "green" || s.Live.Image != v2 || !s.Live.Running || s.Last == nil || s.Live.Since != s.Last.Time || s.Live.Since == "2026-12-01T12:00:00Z" {
		t.Fatalf("live %+v, last %+v: since the switch, not the container's last start", s.Live, s.Last)
	}
	if s.Idle == nil || s.Idle.Slot != "blue" || s.Idle.Image != v1 || s.Idle.Running {
		t.Fatalf("idle %+v: the previous release, kept stopped", s.Idle)
	}
	if s.Healthy == nil || !*s.Healthy || len(asked) != 1 || asked[0] != "http://192.0.2.10:8080/health" {
		t.Fatalf("healthy %v, asked %v", s.Healthy, asked)
	}
	if s.Lock != "" || s.Last == nil || s.Last.Image != v2 {
		t.Fatalf("lock %q, last %+v", s.Lock, s.Last)
	}
}
