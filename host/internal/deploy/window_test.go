package deploy

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"coop/host/internal/release"
)

// windowed is rel(image) with a rollback window of 10 minutes.
func windowed(image string) release.Release {
	r := rel(image)
	r.RollbackWindowSeconds = 600
	return r
}

// at sets the harness's clock.
func (h *harness) at(t time.Time) { h.d.Now = func() time.Time { return t } }

// releasedTwice is a harness where v1 then v2 were released at t0, both with a window: v2 is
// live in green, v1 runs idle in blue until t0 + 10 minutes.
func releasedTwice(t *testing.T) (*harness, time.Time) {
	h := newHarness(t)
	t0 := time.Unix(1_800_000_000, 0)
	h.at(t0)
	h.mustRelease(windowed(v1))
	h.mustRelease(windowed(v2))
	return h, t0
}

func TestTheOldSlotKeepsRunningForTheRollbackWindow(t *testing.T) {
	h, t0 := releasedTwice(t)
	// The proxy drained blue; it keeps running, and the retiring process only refreshes the proxy's state.
	if h.state("coop-alpha-blue") != "running "+v1 || h.host.routes["coop-alpha"] != "coop-alpha-green:8080" {
		t.Fatalf("blue %s, routes %v", h.state("coop-alpha-blue"), h.host.routes)
	}
	if want := []string{"stop= timeout=5s remove="}; !reflect.DeepEqual(h.retirer.calls, want) {
		t.Fatalf("retired %q, want %q", h.retirer.calls, want)
	}
	w, ok := ReadWindow(h.dir)
	if !ok || w.Slot != "coop-alpha-blue" || !w.Until.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("window %+v %v", w, ok)
	}
	// status says until when.
	st, err := Status(context.Background(), h.host, h.host, "alpha", h.dir, func(string) bool { return true })
	if err != nil || st.Idle == nil || !st.Idle.Running || st.Idle.Until != "2027-01-15T08:10:00Z" {
		t.Fatalf("status %+v %v", st.Idle, err)
	}

	// A rollback inside the window is the switch alone: no start, no stop of the slot it left.
	h.at(t0.Add(9 * time.Minute))
	before := len(h.host.mutations())
	rep := h.mustRelease(windowed(v1))
	if !rep.Reused || rep.Slot != "blue" {
		t.Fatalf("report %+v", rep)
	}
	if got, want := h.host.mutations()[before:], []string{"switch coop-alpha coop-alpha-blue:8080"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ops\n got %q\nwant %q", got, want)
	}
	// ... and opens a window for the release it left.
	if w, _ := ReadWindow(h.dir); w.Slot != "coop-alpha-green" || !w.Until.Equal(t0.Add(19*time.Minute)) {
		t.Fatalf("window after the rollback %+v", w)
	}
	if h.state("coop-alpha-green") != "running "+v2 {
		t.Fatalf("green %s", h.state("coop-alpha-green"))
	}
}

func TestReconcileKeepsTheWindowThenStopsTheIdleSlot(t *testing.T) {
	h, t0 := releasedTwice(t)

	h.at(t0.Add(5 * time.Minute))
	if r := h.d.Reconcile(context.Background(), "alpha", h.dir); len(r.Stopped) != 0 || r.Error != "" {
		t.Fatalf("inside the window: %+v", r)
	}
	if h.state("coop-alpha-blue") != "running "+v1 || WindowEnded(h.dir, t0.Add(5*time.Minute)) {
		t.Fatalf("inside the window: blue %s", h.state("coop-alpha-blue"))
	}

	end := t0.Add(10 * time.Minute)
	if !WindowEnded(h.dir, end) {
		t.Fatal("the window did not end at its deadline")
	}
	h.at(end)
	r := h.d.Reconcile(context.Background(), "alpha", h.dir)
	if !reflect.DeepEqual(r.Stopped, []string{"coop-alpha-blue"}) || r.Error != "" {
		t.Fatalf("after the window: %+v\n%s", r, h.log())
	}
	if h.state("coop-alpha-blue") != "exited "+v1 || h.state("coop-alpha-green") != "running "+v2 {
		t.Fatalf("blue %s, green %s", h.state("coop-alpha-blue"), h.state("coop-alpha-green"))
	}
	if _, open := ReadWindow(h.dir); open {
		t.Fatal("the window is still open")
	}
	if !strings.Contains(h.log(), "stopping coop-alpha-blue: its rollback window ended at 2027-01-15T08:10:00Z") {
		t.Fatalf("log:\n%s", h.log())
	}
	// The stopped slot is still the retained release: going back to it starts it.
	before := len(h.host.mutations())
	if rep := h.mustRelease(windowed(v1)); !rep.Reused {
		t.Fatalf("report %+v", rep)
	}
	if got := h.host.mutations()[before]; got != "start coop-alpha-blue" {
		t.Fatalf("first op %q", got)
	}
}

func TestANewReleaseInsideTheWindowReplacesTheKeptSlot(t *testing.T) {
	h, t0 := releasedTwice(t)
	h.at(t0.Add(time.Minute))
	h.mustRelease(windowed(v3)) // into blue, which held v1 running
	if h.state("coop-alpha-blue") != "running "+v3 || h.state("coop-alpha-green") != "running "+v2 || h.host.routes["coop-alpha"] != "coop-alpha-blue:8080" {
		t.Fatalf("blue %s, green %s, routes %v", h.state("coop-alpha-blue"), h.state("coop-alpha-green"), h.host.routes)
	}
	if w, _ := ReadWindow(h.dir); w.Slot != "coop-alpha-green" {
		t.Fatalf("window %+v", w)
	}
	if strings.Contains(h.log(), "interrupted") {
		t.Fatalf("a kept slot was taken for an interrupted deploy's:\n%s", h.log())
	}
}

func TestNoWindowStopsTheOldSlotAndClosesAnOpenOne(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(windowed(v1))
	h.mustRelease(windowed(v2))
	h.mustRelease(rel(v3)) // no window: green (v2) is stopped once drained
	if h.state("coop-alpha-green") != "exited "+v2 {
		t.Fatalf("green %s", h.state("coop-alpha-green"))
	}
	if _, open := ReadWindow(h.dir); open {
		t.Fatal("a release without a window left one open")
	}
}
