package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"coop/host/internal/lock"
)

func TestTheEngineGoingAwaySaysSo(t *testing.T) {
	for _, tc := range []struct {
		step  string
		setup func(h *harness)
	}{
		{"health check", func(h *harness) {
			// The engine dies while the proxy polls the new slot: the exec's stream breaks.
			h.host.images[v3] = true
			h.host.unhealthy[v3] = true
			h.host.deployHook = func() { h.host.mu.Lock(); h.host.down = true; h.host.mu.Unlock() }
		}},
		{"migration", func(h *harness) {
			h.host.images[v3] = true
			h.host.migrateCode = 137
			h.host.down = true
		}},
		{"health check", func(h *harness) {
			// The engine dies during the health gate and its supervisor has it back within
			// seconds: it answers again by the time the failure is looked at.
			h.host.images[v3] = true
			h.host.unhealthy[v3] = true
			h.host.deployHook = h.host.restart
		}},
	} {
		t.Run(tc.step, func(t *testing.T) {
			h := newHarness(t)
			h.mustRelease(rel(v1))
			h.mustRelease(rel(v2))
			tc.setup(h)
			_, err := h.deploy(rel(v3), Options{})
			var gone *EngineGoneError
			if !errors.As(err, &gone) || gone.Step != tc.step {
				t.Fatalf("err = %v", err)
			}
			if want := "deploy alpha: the Docker engine went away during the " + tc.step + " ("; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("message %q, want it to start %q", err, want)
			}
			if strings.Contains(err.Error(), "did not become healthy") {
				t.Fatalf("blames the app: %v", err)
			}
			if len(h.records()) != 2 || !h.lockFree() {
				t.Fatal("recorded, or the lock kept")
			}
		})
	}
}

func TestReconcileStartsTheLiveSlotAndLeavesTheIdleStopped(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2)) // live green v2, idle blue v1
	// An engine that crashed and came back: every container stopped, and a deploy cut short
	// by it left the idle slot running and its previous release set aside.
	h.host.containers["coop-alpha-green"].state = "exited"
	h.host.containers["coop-alpha-blue-old"] = h.host.containers["coop-alpha-blue"]
	h.host.containers["coop-alpha-blue"] = &fakeContainer{state: "running", image: v3, labels: map[string]string{LabelID: "alpha"}}
	before := len(h.host.mutations())
	r := h.d.Reconcile(context.Background(), "alpha", h.dir)
	want := Reconciled{Coop: "alpha", Slot: "green", Started: true, Stopped: []string{"coop-alpha-blue"}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("report %+v, want %+v", r, want)
	}
	ops := []string{"remove coop-alpha-blue", "rename coop-alpha-blue-old coop-alpha-blue", "start coop-alpha-green"}
	if got := h.host.mutations()[before:]; !reflect.DeepEqual(got, ops) {
		t.Fatalf("ops\n got %q\nwant %q", got, ops)
	}
	if h.state("coop-alpha-green") != "running "+v2 || h.state("coop-alpha-blue") != "exited "+v1 || h.host.routes["coop-alpha"] != "coop-alpha-green:8080" {
		t.Fatalf("blue %s, green %s", h.state("coop-alpha-blue"), h.state("coop-alpha-green"))
	}
	// Again: nothing to do.
	before = len(h.host.mutations())
	if r := h.d.Reconcile(context.Background(), "alpha", h.dir); r.Started || r.Error != "" || len(h.host.mutations()) != before {
		t.Fatalf("second reconcile %+v did %q", r, h.host.mutations()[before:])
	}
	if !h.lockFree() {
		t.Fatal("lock kept")
	}
}

func TestReconcileStopsAnIdleSlotLeftRunning(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2))
	h.host.containers["coop-alpha-blue"].state = "running"
	r := h.d.Reconcile(context.Background(), "alpha", h.dir)
	if !reflect.DeepEqual(r.Stopped, []string{"coop-alpha-blue"}) || r.Started || r.Error != "" {
		t.Fatalf("report %+v", r)
	}
	if h.state("coop-alpha-blue") != "exited "+v1 {
		t.Fatalf("blue %s", h.state("coop-alpha-blue"))
	}
}

func TestReconcileRoutesAgainWhenTheProxyLostItsRoute(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2))
	delete(h.host.routes, "coop-alpha")
	h.host.containers["coop-alpha-green"].state = "exited"
	r := h.d.Reconcile(context.Background(), "alpha", h.dir)
	if !r.Started || !r.Routed || r.Slot != "green" || r.Error != "" {
		t.Fatalf("report %+v", r)
	}
	if h.host.routes["coop-alpha"] != "coop-alpha-green:8080" {
		t.Fatalf("route %q", h.host.routes["coop-alpha"])
	}
	d := h.host.deployments[len(h.host.deployments)-1]
	if d.HealthPath != "/health" || !reflect.DeepEqual(d.Hosts, []string{"alpha.localhost"}) {
		t.Fatalf("deployment %+v", d)
	}
}

func TestReconcileLeavesACoopBeingDeployedAlone(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	l, err := lock.Acquire(context.Background(), h.dir, lock.Options{Holder: lock.Self("deployer")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	h.host.containers["coop-alpha-blue"].state = "exited"
	before := len(h.host.mutations())
	if r := h.d.Reconcile(context.Background(), "alpha", h.dir); !r.Busy || r.Started {
		t.Fatalf("report %+v", r)
	}
	if len(h.host.mutations()) != before {
		t.Fatalf("touched %q", h.host.mutations()[before:])
	}
}

func TestReconcileOfACoopNeverReleased(t *testing.T) {
	h := newHarness(t)
	before := len(h.host.mutations())
	if r := h.d.Reconcile(context.Background(), "alpha", h.dir); r.Slot != "" || r.Started || r.Error != "" {
		t.Fatalf("report %+v", r)
	}
	if len(h.host.mutations()) != before {
		t.Fatalf("touched %q", h.host.mutations()[before:])
	}
}

func TestStateSaysWhatRuns(t *testing.T) {
	h := newHarness(t)
	s, err := State(context.Background(), h.host, h.host, "alpha", h.dir)
	if err != nil || s.Live != nil || s.Last != nil || s.Deploying {
		t.Fatalf("before any release: %+v %v", s, err)
	}
	h.host.images[v1] = true
	res, err := h.deploy(rel(v1), Options{DeployID: "d-1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err = State(context.Background(), h.host, h.host, "alpha", h.dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Live{Slot: "blue", Image: v1, ReleaseKey: res.Released.ReleaseKey, Running: true}
	if s.Live == nil || *s.Live != want || s.Last == nil || s.Last.DeployID != "d-1" || s.Last.Image != v1 || s.Deploying {
		t.Fatalf("state %+v live %+v last %+v", s, s.Live, s.Last)
	}
	if _, err := os.Stat(filepath.Join(h.dir, ReleaseFile)); err != nil {
		t.Fatalf("release.json: %v", err)
	}
	// Removed by hand: the proxy routes it nowhere.
	delete(h.host.routes, "coop-alpha")
	if s, _ := State(context.Background(), h.host, h.host, "alpha", h.dir); s.Live != nil {
		t.Fatalf("live %+v", s.Live)
	}
}
