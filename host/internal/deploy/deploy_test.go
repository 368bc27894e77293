package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"coop/host/internal/backup"
	"coop/host/internal/engine"
	"coop/host/internal/proxy"
	"coop/host/internal/release"
)

const (
	v1 = "127.0.0.1:5001/coop-demo@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	v2 = "127.0.0.1:5001/coop-demo@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	v3 = "127.0.0.1:5001/coop-demo@sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

type harness struct {
	t       *testing.T
	host    *fakeHost
	retirer *fakeRetirer
	dir     string
	mu      sync.Mutex
	logs    []string
	sleeps  []time.Duration
	alive   map[int]bool
	d       *Deployer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "coops", "alpha")
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, host: newFakeHost(), dir: dir, alive: map[int]bool{}}
	h.env("COOP_ID=alpha\nSECRET_KEY=sentinel\n")
	h.retirer = &fakeRetirer{host: h.host}
	h.d = &Deployer{
		Engine: h.host, Proxy: h.host, Retirer: h.retirer,
		Log: func(format string, args ...any) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.logs = append(h.logs, fmt.Sprintf(format, args...))
		},
		Block: func(b []byte) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.logs = append(h.logs, "    "+strings.TrimRight(string(b), "\n"))
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.sleeps = append(h.sleeps, d)
			h.mu.Unlock()
			return ctx.Err()
		},
		Alive:     func(pid int, _ uint64) bool { h.mu.Lock(); defer h.mu.Unlock(); return h.alive[pid] },
		StartTime: func(int) (uint64, error) { return 99, nil },
		// The fake's slots have documentation addresses: each takes the connection.
		Dial: func(string) error { return nil },
	}
	return h
}

func (h *harness) env(content string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, "env"), []byte(content), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.logs, "\n")
}

func rel(image string) release.Release {
	return release.Release{
		Coop: "alpha", Image: image, Port: 8080, HealthPath: "/health", Domains: []string{"alpha.localhost"},
		Migrate: []string{"migrate"}, Network: "coop", Retain: 2, HealthTimeoutSeconds: 10, DrainTimeoutSeconds: 5,
	}
}

func (h *harness) deploy(r release.Release, o Options) (Result, error) {
	h.t.Helper()
	if o.By == "" {
		o.By = "tester"
	}
	if o.LockWait == 0 {
		o.LockWait = time.Second
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 100 * time.Millisecond
	}
	return h.d.Run(context.Background(), r, h.dir, o)
}

func (h *harness) mustRelease(r release.Release) *Released {
	h.t.Helper()
	res, err := h.deploy(r, Options{})
	if err != nil {
		h.t.Fatalf("deploy: %v\n%s", err, h.log())
	}
	if res.Released == nil {
		h.t.Fatalf("not released: %+v", res.Report())
	}
	return res.Released
}

func (h *harness) records() []Record {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "releases.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []Record
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			h.t.Fatalf("releases.log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

func (h *harness) state(name string) string {
	h.host.mu.Lock()
	defer h.host.mu.Unlock()
	c, ok := h.host.containers[name]
	if !ok {
		return "missing"
	}
	return c.state + " " + c.image
}

func (h *harness) lockFree() bool {
	_, err := os.Stat(filepath.Join(h.dir, "lock"))
	return os.IsNotExist(err)
}

func TestFirstRelease(t *testing.T) {
	h := newHarness(t)
	rep := h.mustRelease(rel(v1))
	if rep.Slot != "blue" || rep.PreviousSlot != "" || rep.Reused || !rep.Changed || rep.Image != v1 || len(rep.ReleaseKey) != 16 {
		t.Fatalf("report %+v", rep)
	}
	want := []string{
		"pull " + v1,
		"run coop-alpha-migrate " + v1 + " migrate",
		"create coop-alpha-blue " + v1,
		"start coop-alpha-blue",
		"switch coop-alpha coop-alpha-blue:8080",
	}
	if got := h.host.mutations(); !reflect.DeepEqual(got, want) {
		t.Fatalf("ops\n got %q\nwant %q", got, want)
	}
	c := h.host.containers["coop-alpha-blue"]
	wantLabels := map[string]string{"coop.managed": "true", "coop.id": "alpha", "coop.slot": "blue", "coop.release": rep.ReleaseKey, "coop.image": v1}
	if !reflect.DeepEqual(c.labels, wantLabels) {
		t.Errorf("labels %v", c.labels)
	}
	if !reflect.DeepEqual(c.env, []string{"COOP_ID=alpha", "SECRET_KEY=sentinel"}) {
		t.Errorf("env %v", c.env)
	}
	if !reflect.DeepEqual(c.mounts, []engine.Mount{{Volume: "coop-alpha-data", Target: "/data"}, {HostDir: h.dir + "/config", Target: "/config", ReadOnly: true}}) {
		t.Errorf("mounts %v", c.mounts)
	}
	d := h.host.deployments[0]
	if d.HealthPath != "/health" || d.DeployTimeout != 10*time.Second || d.DrainTimeout != 5*time.Second || d.HealthInterval != 100*time.Millisecond || !reflect.DeepEqual(d.Hosts, []string{"alpha.localhost"}) {
		t.Errorf("deployment %+v", d)
	}
	if len(h.retirer.calls) != 0 {
		t.Errorf("retired %v with no old slot", h.retirer.calls)
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Coop != "alpha" || recs[0].Image != v1 || recs[0].Slot != "blue" || recs[0].By != "tester" || recs[0].ReleaseKey != rep.ReleaseKey {
		t.Errorf("record %+v", recs)
	}
	if _, err := time.Parse(recordTimeFormat, recs[0].Time); err != nil {
		t.Errorf("record time %q: %v", recs[0].Time, err)
	}
	if !h.lockFree() {
		t.Error("lock held after the deploy")
	}
	if _, err := os.Stat(filepath.Join(h.dir, switchMarker)); !os.IsNotExist(err) {
		t.Error("switch marker left behind")
	}
}

func TestSameInputsChangeNothing(t *testing.T) {
	h := newHarness(t)
	first := h.mustRelease(rel(v1))
	before := len(h.host.mutations())
	res, err := h.deploy(rel(v1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Unchanged{Coop: "alpha", Changed: false, Slot: "blue", Image: v1, ReleaseKey: first.ReleaseKey}
	if !reflect.DeepEqual(res.Unchanged, want) {
		t.Fatalf("got %+v", res.Report())
	}
	if got := h.host.mutations()[before:]; len(got) != 0 {
		t.Fatalf("touched %v", got)
	}
	if len(h.records()) != 1 || !h.lockFree() {
		t.Fatal("recorded again or kept the lock")
	}
}

func TestNewReleaseCutsOverAndKeepsTheOldSlot(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	rep := h.mustRelease(rel(v2))
	if rep.Slot != "green" || rep.PreviousSlot != "blue" {
		t.Fatalf("report %+v", rep)
	}
	if h.host.routes["coop-alpha"] != "coop-alpha-green:8080" {
		t.Fatalf("routes %v", h.host.routes)
	}
	if !reflect.DeepEqual(h.retirer.calls, []string{"stop=coop-alpha-blue timeout=5s remove="}) {
		t.Fatalf("retired %v", h.retirer.calls)
	}
	if h.state("coop-alpha-blue") != "exited "+v1 {
		t.Fatalf("old slot %s", h.state("coop-alpha-blue"))
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, stoppingMarker))
	if string(b) != "4242 99\n" {
		t.Fatalf("stopping marker %q", b)
	}
}

func TestAChangedEnvFileIsANewRelease(t *testing.T) {
	h := newHarness(t)
	first := h.mustRelease(rel(v1))
	h.env("COOP_ID=alpha\nSECRET_KEY=sentinel\nGREETING=changed\n")
	second := h.mustRelease(rel(v1))
	if second.ReleaseKey == first.ReleaseKey || second.Slot != "green" {
		t.Fatalf("%+v after %+v", second, first)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "config", "coop.yaml"), []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	third := h.mustRelease(rel(v1))
	if third.ReleaseKey == second.ReleaseKey {
		t.Fatal("a new config file made no new release")
	}
}

func TestFailedHealthCheckPutsTheIdleSlotBack(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2)) // live green v2, idle blue v1
	h.host.images[v3] = true
	h.host.unhealthy[v3] = true
	before := len(h.host.mutations())
	_, err := h.deploy(rel(v3), Options{})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "health check" {
		t.Fatalf("err = %v", err)
	}
	wantMsg := "deploy alpha: health check failed: coop-alpha-blue did not become healthy on /health within 10 s; container running (exit 0); proxy: Error: target failed to become healthy within configured timeout"
	if err.Error() != wantMsg {
		t.Fatalf("message\n got %s\nwant %s", err, wantMsg)
	}
	if !strings.Contains(h.log(), "last lines of coop-alpha-blue:\n    GET /health 503") {
		t.Fatalf("log:\n%s", h.log())
	}
	want := []string{
		"run coop-alpha-migrate " + v3 + " migrate",
		"stop coop-alpha-blue 1s",
		"rename coop-alpha-blue coop-alpha-blue-old",
		"create coop-alpha-blue " + v3,
		"start coop-alpha-blue",
		"stop coop-alpha-blue 5s",
		"remove coop-alpha-blue",
		"rename coop-alpha-blue-old coop-alpha-blue",
	}
	if got := h.host.mutations()[before:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("ops\n got %q\nwant %q", got, want)
	}
	if h.state("coop-alpha-blue") != "exited "+v1 || h.state("coop-alpha-green") != "running "+v2 || h.host.routes["coop-alpha"] != "coop-alpha-green:8080" {
		t.Fatalf("blue %s, green %s, route %s", h.state("coop-alpha-blue"), h.state("coop-alpha-green"), h.host.routes["coop-alpha"])
	}
	if len(h.records()) != 2 || !h.lockFree() {
		t.Fatal("a failed release was recorded, or the lock kept")
	}
}

func TestGoingBackToTheIdleSlotsReleaseIsASwitch(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2))
	h.alive[4242] = true // the previous deploy still stops blue
	go func() {
		time.Sleep(20 * time.Millisecond)
		h.mu.Lock()
		h.alive[4242] = false
		h.mu.Unlock()
	}()
	before := len(h.host.mutations())
	h.d.Sleep = func(ctx context.Context, d time.Duration) error { time.Sleep(time.Millisecond); return nil }
	rep := h.mustRelease(rel(v1))
	if !rep.Reused || rep.Slot != "blue" || rep.PreviousSlot != "green" {
		t.Fatalf("report %+v", rep)
	}
	want := []string{"start coop-alpha-blue", "switch coop-alpha coop-alpha-blue:8080", "stop coop-alpha-green 5s"}
	if got := h.host.mutations()[before:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("ops\n got %q\nwant %q", got, want)
	}
	if recs := h.records(); !recs[2].Reused {
		t.Fatalf("record %+v", recs[2])
	}
}

func TestOnlyIfRetained(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2))
	h.host.images[v3] = true
	before := len(h.host.mutations())
	res, err := h.deploy(rel(v3), Options{OnlyIfRetained: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.NotRetained, &NotRetained{Coop: "alpha", Changed: false, Retained: false, Image: v3}) {
		t.Fatalf("got %+v", res.Report())
	}
	if got := h.host.mutations()[before:]; len(got) != 0 {
		t.Fatalf("touched %v", got)
	}
	res, err = h.deploy(rel(v1), Options{OnlyIfRetained: true})
	if err != nil || res.Released == nil || !res.Released.Reused {
		t.Fatalf("the retained release: %+v, %v", res.Report(), err)
	}
}

func TestFailedMigrationChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.host.migrateCode = 3
	h.host.migrateOut = "migration to schema 3 failed\n"
	before := len(h.host.mutations())
	_, err := h.deploy(rel(v2), Options{})
	if err == nil || err.Error() != "deploy alpha: migration failed: exit 3 from migrate" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(h.log(), "migration output:\n    migration to schema 3 failed") {
		t.Fatalf("log:\n%s", h.log())
	}
	want := []string{"pull " + v2, "run coop-alpha-migrate " + v2 + " migrate"}
	if got := h.host.mutations()[before:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("ops %q", got)
	}
}

func TestPullRetriesThenFails(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	boom := errors.New("pulling: manifest unknown")
	h.host.pullErrs = []error{boom, boom, boom}
	h.sleeps = nil
	_, err := h.deploy(rel(v2), Options{})
	if err == nil || err.Error() != "deploy alpha: pull failed: "+v2+" could not be pulled after 3 attempts: pulling: manifest unknown" {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(h.sleeps, []time.Duration{2 * time.Second, 4 * time.Second}) {
		t.Fatalf("slept %v", h.sleeps)
	}
	if strings.Count(h.log(), "failed (attempt") != 2 {
		t.Fatalf("log:\n%s", h.log())
	}
	// A pull that succeeds on the second try is a release.
	h.host.pullErrs = []error{boom}
	if rep := h.mustRelease(rel(v2)); rep.Slot != "green" {
		t.Fatalf("report %+v", rep)
	}
}

func TestAnInterruptedDeployConverges(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2)) // live green v2, idle blue v1
	// What a deploy killed during its switch leaves: blue's release set aside, a new blue
	// running, a migration container, its switch still running in the proxy, its lock.
	h.host.images[v3] = true
	h.host.mu.Lock()
	h.host.containers["coop-alpha-blue-old"] = h.host.containers["coop-alpha-blue"]
	h.host.containers["coop-alpha-blue"] = &fakeContainer{state: "running", image: v3, labels: map[string]string{"coop.id": "alpha", "coop.release": "k3"}}
	h.host.containers["coop-alpha-migrate"] = &fakeContainer{state: "exited", image: v3, labels: map[string]string{"coop.id": "alpha"}}
	h.host.execRunning["exec-9"] = []bool{true, true, false}
	h.host.mu.Unlock()
	if err := os.WriteFile(filepath.Join(h.dir, switchMarker), []byte("exec-9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(h.dir, "lock"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "lock", "holder"), fmt.Appendf(nil, "pid=999999\npidstart=1\nstarted=%d\nby=x\nhost=h\n", time.Now().Unix()), 0o600); err != nil {
		t.Fatal(err)
	}

	res, err := h.deploy(rel(v2), Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, h.log())
	}
	if res.Unchanged == nil || res.Unchanged.Slot != "green" {
		t.Fatalf("got %+v", res.Report())
	}
	for _, line := range []string{
		"took over a stale lock (pid=999999",
		"waiting for the proxy switch of an interrupted deploy to finish",
		"removing coop-alpha-migrate, left over by an interrupted deploy",
		"putting back coop-alpha-blue's previous release, set aside by an interrupted deploy",
	} {
		if !strings.Contains(h.log(), line) {
			t.Errorf("log does not say %q:\n%s", line, h.log())
		}
	}
	if strings.Count(h.log(), "waiting for the proxy switch") != 1 {
		t.Errorf("said it waits more than once:\n%s", h.log())
	}
	if h.state("coop-alpha-blue") != "exited "+v1 || h.state("coop-alpha-blue-old") != "missing" || h.state("coop-alpha-migrate") != "missing" || h.state("coop-alpha-green") != "running "+v2 {
		t.Fatalf("blue %s, blue-old %s, migrate %s, green %s", h.state("coop-alpha-blue"), h.state("coop-alpha-blue-old"), h.state("coop-alpha-migrate"), h.state("coop-alpha-green"))
	}
	if !h.lockFree() {
		t.Fatal("lock held")
	}
	if _, err := os.Stat(filepath.Join(h.dir, switchMarker)); !os.IsNotExist(err) {
		t.Fatal("switch marker left")
	}
}

func TestASlotLeftRunningIsStopped(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2))
	// blue was started again by someone (or a killed deploy) while green serves.
	h.host.containers["coop-alpha-blue"].state = "running"
	h.host.images[v3] = true
	before := len(h.host.mutations())
	if _, err := h.deploy(rel(v2), Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.log(), "stopping coop-alpha-blue, left running by an interrupted deploy") {
		t.Fatalf("log:\n%s", h.log())
	}
	if got := h.host.mutations()[before:]; !reflect.DeepEqual(got, []string{"stop coop-alpha-blue 5s"}) {
		t.Fatalf("ops %q", got)
	}
}

func TestTheClientGoingAwayBeforeTheSwitchSwitchesNothing(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	h.mustRelease(rel(v2))
	h.host.images[v3] = true
	client, gone := context.WithCancelCause(context.Background())
	defer gone(nil)
	// The client goes while the new slot starts.
	h.d.Engine = &goneOnStart{fakeHost: h.host, gone: func() { gone(errors.New("the client went away (stdout closed)")) }}
	_, err := h.deploy(rel(v3), Options{Client: client})
	if err == nil || err.Error() != "deploy alpha: switch failed: the client went away (stdout closed) before the switch; nothing was switched" {
		t.Fatalf("err = %v", err)
	}
	if h.host.routes["coop-alpha"] != "coop-alpha-green:8080" || len(h.host.deployments) != 2 {
		t.Fatalf("switched: %v", h.host.routes)
	}
	if h.state("coop-alpha-blue") != "exited "+v1 || h.state("coop-alpha-blue-old") != "missing" {
		t.Fatalf("blue %s", h.state("coop-alpha-blue"))
	}
}

func TestTheClientGoingAwayAfterTheSwitchFinishes(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	client, gone := context.WithCancelCause(context.Background())
	defer gone(nil)
	h.host.deployHook = func() { gone(errors.New("the client went away")) }
	res, err := h.deploy(rel(v2), Options{Client: client})
	if err != nil || res.Released == nil {
		t.Fatalf("%+v, %v", res.Report(), err)
	}
	if len(h.records()) != 2 || len(h.retirer.calls) != 1 {
		t.Fatal("did not finish")
	}
}

func TestTheClientGoneWhileWaitingForTheLock(t *testing.T) {
	h := newHarness(t)
	if err := os.Mkdir(filepath.Join(h.dir, "lock"), 0o700); err != nil {
		t.Fatal(err)
	}
	holder := fmt.Sprintf("pid=%d\npidstart=0\nstarted=%d\nby=x\nhost=h\n", os.Getpid(), time.Now().Unix())
	if err := os.WriteFile(filepath.Join(h.dir, "lock", "holder"), []byte(holder), 0o600); err != nil {
		t.Fatal(err)
	}
	client, gone := context.WithCancelCause(context.Background())
	gone(errors.New("the client went away"))
	_, err := h.deploy(rel(v1), Options{Client: client, LockWait: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "the client went away") {
		t.Fatalf("err = %v", err)
	}
}

func TestNoReleaseWithoutARunningProxy(t *testing.T) {
	h := newHarness(t)
	h.host.proxyState = "exited"
	h.host.images[v1] = true
	_, err := h.deploy(rel(v1), Options{})
	if err == nil || err.Error() != "deploy alpha: the proxy coop-proxy is exited; a release needs it running (host-up starts it)" {
		t.Fatalf("err = %v", err)
	}
	if len(h.host.mutations()) != 0 {
		t.Fatalf("touched %v", h.host.mutations())
	}
}

func TestMissingDirectoryOrEnvFile(t *testing.T) {
	h := newHarness(t)
	if err := os.Remove(filepath.Join(h.dir, "env")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.deploy(rel(v1), Options{}); err == nil || !strings.HasSuffix(err.Error(), "/coops/alpha/env is missing") {
		t.Fatalf("err = %v", err)
	}
	h.dir = filepath.Join(h.dir, "nope")
	if _, err := h.deploy(rel(v1), Options{}); err == nil || !strings.Contains(err.Error(), "is missing (run prepare alpha first)") {
		t.Fatalf("err = %v", err)
	}
}

func TestPruneKeepsTheLiveAndRetainedImages(t *testing.T) {
	h := newHarness(t)
	images := []string{v1, v2, v3}
	r := rel(v1)
	r.Retain = 1
	for _, img := range images {
		r.Image = img
		h.mustRelease(r)
	}
	// v1 is two releases back with retain 1: pruned (no container uses it once blue holds v3).
	if h.host.images[v1] || !h.host.images[v2] || !h.host.images[v3] {
		t.Fatalf("images %v", h.host.images)
	}
}

func TestImagesToPrune(t *testing.T) {
	for _, tc := range []struct {
		released []string
		retain   int
		want     []string
	}{
		{[]string{"c", "b", "a"}, 2, nil},
		{[]string{"c", "b", "a"}, 1, []string{"a"}},
		{[]string{"d", "c", "b", "a"}, 1, []string{"b", "a"}},
		{nil, 1, nil},
	} {
		if got := imagesToPrune(tc.released, tc.retain); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("imagesToPrune(%v, %d) = %v", tc.released, tc.retain, got)
		}
	}
	path := filepath.Join(t.TempDir(), "releases.log")
	lines := `{"image":"a"}` + "\n" + `{"image":"b"}` + "\n" + `not json` + "\n" + `{"image":"a"}` + "\n" + `{"image":"c"}` + "\n"
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := releasedImages(path); !reflect.DeepEqual(got, []string{"c", "a", "b"}) {
		t.Errorf("releasedImages = %v", got)
	}
}

func TestLiveSlot(t *testing.T) {
	for _, tc := range []struct {
		target, want string
	}{
		{"coop-alpha-green:8080", "green"},
		{"coop-alpha-blue:3000", "blue"},
		{"coop-alpha-blue-old:3000", ""},
		{"coop-alphabet-blue:3000", ""},
		{"", ""},
	} {
		routes := []proxy.Route{{Service: "coop-alpha", Targets: []string{tc.target}}}
		if tc.target == "" {
			routes = nil
		}
		if got := liveSlot(routes, "alpha"); got != tc.want {
			t.Errorf("liveSlot(%q) = %q", tc.target, got)
		}
	}
}

// goneOnStart is the fake engine, with the client going away when a container starts.
type goneOnStart struct {
	*fakeHost
	gone func()
}

func (g *goneOnStart) Start(ctx context.Context, name string) error {
	err := g.fakeHost.Start(ctx, name)
	g.gone()
	return err
}

func TestTheClientGoingAwayDuringTheMigrationStartsNothing(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	client, gone := context.WithCancelCause(context.Background())
	defer gone(nil)
	h.d.Engine = &goneOnMigrate{fakeHost: h.host, gone: func() { gone(errors.New("the client went away")) }}
	before := len(h.host.mutations())
	_, err := h.deploy(rel(v2), Options{Client: client})
	if err == nil || err.Error() != "deploy alpha: start failed: the client went away before the switch; nothing was switched" {
		t.Fatalf("err = %v", err)
	}
	want := []string{"pull " + v2, "run coop-alpha-migrate " + v2 + " migrate"}
	if got := h.host.mutations()[before:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("ops %q", got)
	}
	if !h.lockFree() {
		t.Fatal("lock held")
	}
}

// goneOnMigrate is the fake engine, with the client going away while a migration runs.
type goneOnMigrate struct {
	*fakeHost
	gone func()
}

func (g *goneOnMigrate) RunToCompletion(ctx context.Context, s engine.Spec) (int, []byte, error) {
	g.gone()
	return g.fakeHost.RunToCompletion(ctx, s)
}

// fakeBackup records what it was asked and fails when told to.
type fakeBackup struct {
	host  *fakeHost
	fail  error
	calls []string
}

func (b *fakeBackup) Take(_ context.Context, r release.Release, _, live, deployID string) (backup.Taken, error) {
	b.host.op("backup %s before %s (live %s)", r.Coop, r.Image, live)
	b.calls = append(b.calls, r.Image)
	if b.fail != nil {
		return backup.Taken{}, b.fail
	}
	return backup.Taken{Key: "local/alpha/" + deployID + ".dump", Bytes: 42, Before: r.Image, Live: live}, nil
}

func withBackup(r release.Release) release.Release {
	r.Backup = &release.Backup{Image: v3, Keep: 3, Database: "postgresql://u:pw@db/alpha", Store: release.Store{Endpoint: "http://127.0.0.1:1", Region: "r", Bucket: "b", AccessKeyID: "a", SecretAccessKey: "s"}}
	return r
}

func TestABackupPrecedesTheMigrationsAndIsRecorded(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackup{host: h.host}
	h.d.Backup = b
	h.mustRelease(withBackup(rel(v1)))
	before := len(h.host.mutations())
	res, err := h.deploy(withBackup(rel(v2)), Options{DeployID: "d2"})
	if err != nil {
		t.Fatal(err)
	}
	ops := h.host.mutations()[before:]
	if ops[1] != "backup alpha before "+v2+" (live "+v1+")" || ops[2] != "run coop-alpha-migrate "+v2+" migrate" {
		t.Fatalf("ops %q", ops)
	}
	if res.Released.Backup != "local/alpha/d2.dump" {
		t.Fatalf("report %+v", res.Released)
	}
	if r := h.records(); r[len(r)-1].Backup != "local/alpha/d2.dump" {
		t.Fatalf("record %+v", r[len(r)-1])
	}
	saved, _ := os.ReadFile(filepath.Join(h.dir, ReleaseFile))
	if strings.Contains(string(saved), "backup") || strings.Contains(string(saved), "pw@") {
		t.Fatalf("release.json keeps the backup section: %s", saved)
	}
	// No migrations, no backup; going back to the idle slot's release, no backup either.
	noMigrate := withBackup(rel(v3))
	noMigrate.Migrate = []string{}
	h.mustRelease(noMigrate)
	h.mustRelease(withBackup(rel(v2)))
	if len(b.calls) != 2 {
		t.Fatalf("backups taken for %q", b.calls)
	}
}

func TestAFailedBackupStopsTheReleaseBeforeAnyMigration(t *testing.T) {
	h := newHarness(t)
	h.d.Backup = &fakeBackup{host: h.host}
	h.mustRelease(withBackup(rel(v1)))
	h.d.Backup = &fakeBackup{host: h.host, fail: errors.New("pg_dump exited 1: connection refused")}
	before := len(h.host.mutations())
	_, err := h.deploy(withBackup(rel(v2)), Options{})
	if err == nil || err.Error() != "deploy alpha: backup failed: pg_dump exited 1: connection refused; no migration ran" {
		t.Fatalf("err = %v", err)
	}
	want := []string{"pull " + v2, "backup alpha before " + v2 + " (live " + v1 + ")"}
	if got := h.host.mutations()[before:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("ops %q", got)
	}
	if h.state("coop-alpha-blue") != "running "+v1 || h.host.routes["coop-alpha"] != "coop-alpha-blue:8080" {
		t.Fatalf("the old slot does not serve: %s, %+v", h.state("coop-alpha-blue"), h.host.routes)
	}
	if !h.lockFree() {
		t.Fatal("the lock is held")
	}
}

func TestAReleaseMadeStaleByARestoreIsDeployedAnew(t *testing.T) {
	h := newHarness(t)
	h.mustRelease(rel(v1))
	v2Key := h.mustRelease(rel(v2)).ReleaseKey
	h.mustRelease(rel(v1)) // a rollback: v2 waits in the idle slot
	if err := MarkStale(h.dir, []string{v2Key}); err != nil {
		t.Fatal(err)
	}
	before := len(h.host.mutations())
	r := h.mustRelease(rel(v2))
	if r.Reused {
		t.Fatal("a stale release was switched to as it sat in its slot")
	}
	if ops := strings.Join(h.host.mutations()[before:], "\n"); !strings.Contains(ops, "run coop-alpha-migrate "+v2+" migrate") {
		t.Fatalf("its migrations did not run again: %s", ops)
	}
	if StaleRelease(h.dir, v2Key) {
		t.Fatal("still stale after it was deployed anew")
	}
}
