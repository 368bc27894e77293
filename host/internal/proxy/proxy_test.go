package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"coop/host/internal/engine"
	"coop/host/internal/flock"
	"coop/host/internal/release"
)

// stateFile is kamal-proxy v0.9.2's saved state after `deploy coop-it-a --target
// coop-it-a-green:8080 --host it-a.localhost --tls-redirect=false` and one other service, as
// copied out of a real proxy container (options trimmed to what matters and a few others).
const stateFile = `[{"name":"coop-it-a","options":{"hosts":["it-a.localhost"],"path_prefixes":["/"],"tls_enabled":false,"tls_certificate_path":"","tls_private_key_path":"","tls_redirect":false,"canonical_host":"","acme_directory":"","acme_cache_path":"/home/kamal-proxy/.config/kamal-proxy/certs","error_page_path":"","strip_prefix":true,"writer_affinity_timeout":1000000000,"read_targets_accept_websockets":false},"target_options":{"health_check_config":{"path":"/health","port":0,"interval":100000000,"timeout":5000000000,"host":""},"response_timeout":30000000000,"buffer_requests":false,"buffer_responses":false,"max_memory_buffer_size":1048576,"max_request_body_size":0,"max_response_body_size":0,"log_request_headers":null,"log_response_headers":null,"forward_headers":true,"scope_cookie_paths":false},"active_targets":["coop-it-a-green:8080"],"active_readers":[],"rollout_targets":null,"rollout_readers":null,"pause_controller":{"state":0,"stop_message":"","fail_after":0},"rollout_controller":null},
{"name":"coop-beta","options":{"hosts":["beta.example.org","www.beta.example.org"],"tls_enabled":true},"active_targets":["coop-beta-blue:3000"]}]
`

type fakeEngine struct {
	files   [][]byte // successive reads of the state file
	fileErr error
	reads   int
	execs   [][]string
	results []engine.ExecResult
	execErr error
	ids     []string
}

func (f *fakeEngine) Exec(_ context.Context, name string, argv []string, started func(string) error) (engine.ExecResult, error) {
	if name != Container {
		return engine.ExecResult{}, fmt.Errorf("exec in %s", name)
	}
	f.execs = append(f.execs, argv)
	if started != nil {
		id := fmt.Sprintf("exec-%d", len(f.execs))
		f.ids = append(f.ids, id)
		if err := started(id); err != nil {
			return engine.ExecResult{}, err
		}
	}
	if f.execErr != nil {
		return engine.ExecResult{}, f.execErr
	}
	if len(f.results) == 0 {
		return engine.ExecResult{}, nil
	}
	r := f.results[0]
	if len(f.results) > 1 {
		f.results = f.results[1:]
	}
	return r, nil
}

func (f *fakeEngine) CopyFile(_ context.Context, name, path string) ([]byte, error) {
	if name != Container || path != "/home/kamal-proxy/.config/kamal-proxy/kamal-proxy.state" {
		return nil, fmt.Errorf("copy %s:%s", name, path)
	}
	f.reads++
	if f.fileErr != nil {
		return nil, f.fileErr
	}
	b := f.files[0]
	if len(f.files) > 1 {
		f.files = f.files[1:]
	}
	return b, nil
}

func TestRoutesFromTheStateFile(t *testing.T) {
	p := &Proxy{Engine: &fakeEngine{files: [][]byte{[]byte(stateFile)}}}
	routes, err := p.Routes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Service: "coop-it-a", Hosts: []string{"it-a.localhost"}, Targets: []string{"coop-it-a-green:8080"}, TLS: false},
		{Service: "coop-beta", Hosts: []string{"beta.example.org", "www.beta.example.org"}, Targets: []string{"coop-beta-blue:3000"}, TLS: true},
	}
	if !reflect.DeepEqual(routes, want) {
		t.Fatalf("got %+v", routes)
	}
	if got := LiveTarget(routes, "coop-it-a"); got != "coop-it-a-green:8080" {
		t.Errorf("LiveTarget = %q", got)
	}
	if got := LiveTarget(routes, "coop-it"); got != "" {
		t.Errorf("LiveTarget of a prefix = %q", got)
	}
}

func TestRoutesOfAnOlderStateFormat(t *testing.T) {
	routes, err := ParseState([]byte(`[{"name":"coop-a","active_target":"coop-a-blue:80","hosts":["a.b"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(routes, []Route{{Service: "coop-a", Hosts: []string{"a.b"}, Targets: []string{"coop-a-blue:80"}}}) {
		t.Fatalf("got %+v", routes)
	}
}

func TestRoutesReadsAgainWhileTheFileIsRewritten(t *testing.T) {
	f := &fakeEngine{files: [][]byte{[]byte(""), []byte(`[{"name":"coop-a","act`), []byte(stateFile)}}
	routes, err := (&Proxy{Engine: f}).Routes(context.Background())
	if err != nil || len(routes) != 2 || f.reads != 3 {
		t.Fatalf("routes %v, err %v, reads %d", routes, err, f.reads)
	}
	// What two overlapping saves leave: one list, then the tail of the other. Refused, and said so.
	f = &fakeEngine{files: [][]byte{[]byte(`[{"name":"coop-a"}]` + "\n" + `"coop-b"}]` + "\n")}}
	_, err = (&Proxy{Engine: f}).Routes(context.Background())
	if err == nil || f.reads != stateReadAttempts {
		t.Fatalf("err %v after %d reads", err, f.reads)
	}
	for _, want := range []string{"damaged: two of its saves overlapped", "the next route change on this host rewrites it whole", "invalid character"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("the error %q does not say %q", err, want)
		}
	}
}

func TestRoutesWithoutAStateFileOrAProxy(t *testing.T) {
	f := &fakeEngine{fileErr: fmt.Errorf("copying: %w", engine.ErrNotFound)}
	routes, err := (&Proxy{Engine: f}).Routes(context.Background())
	if err != nil || len(routes) != 0 {
		t.Fatalf("no state file: %v, %v", routes, err)
	}
	f = &fakeEngine{fileErr: fmt.Errorf("copying: %w", engine.ErrNoContainer)}
	if _, err := (&Proxy{Engine: f}).Routes(context.Background()); err == nil || !strings.Contains(err.Error(), "coop-proxy is not on this host") {
		t.Fatalf("no proxy: %v", err)
	}
}

func TestDeploymentArgs(t *testing.T) {
	d := Deployment{
		Service: "coop-alpha", Target: Target("coop-alpha-green", 8080), HealthPath: "/health",
		HealthInterval: 100 * time.Millisecond, DeployTimeout: 60 * time.Second, DrainTimeout: 30 * time.Second,
		Hosts: []string{"alpha.example.org", "www.alpha.example.org"},
	}
	want := "deploy coop-alpha --target coop-alpha-green:8080 --health-check-path /health " +
		"--health-check-interval 100ms --deploy-timeout 1m0s --drain-timeout 30s " +
		"--host alpha.example.org --host www.alpha.example.org --tls-redirect=false"
	if got := strings.Join(d.Args(), " "); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	d.TLS = true
	if args := d.Args(); args[len(args)-1] != "--tls" {
		t.Fatalf("tls: %v", args)
	}
	for _, s := range []string{"1m0s", "100ms", "30s"} {
		if _, err := time.ParseDuration(s); err != nil {
			t.Errorf("kamal-proxy cannot parse %s: %v", s, err)
		}
	}
}

func TestDeployReportsTheProxysLastLine(t *testing.T) {
	f := &fakeEngine{results: []engine.ExecResult{{ExitCode: 1, Output: []byte("\x1b[31mError:\x1b[0m target failed to become healthy within configured timeout\n")}}}
	var id string
	err := (&Proxy{Engine: f}).Deploy(context.Background(), Deployment{Service: "coop-a"}, func(execID string) error { id = execID; return nil })
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.LastLine != "Error: target failed to become healthy within configured timeout" || refused.ExitCode != 1 {
		t.Fatalf("err = %v", err)
	}
	if id != "exec-1" {
		t.Fatalf("started got %q", id)
	}
}

func TestRemoveIgnoresAServiceItDoesNotHave(t *testing.T) {
	f := &fakeEngine{results: []engine.ExecResult{{ExitCode: 1, Output: []byte("Error: service not found\n")}}}
	if err := (&Proxy{Engine: f}).Remove(context.Background(), "coop-a"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.execs[0], " ") != "/kamal-proxy remove coop-a" {
		t.Fatalf("ran %v", f.execs)
	}
}

func TestWaitAnswering(t *testing.T) {
	f := &fakeEngine{results: []engine.ExecResult{{ExitCode: 1}, {ExitCode: 1}, {ExitCode: 0}}}
	if err := (&Proxy{Engine: f}).WaitAnswering(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.execs) != 3 || strings.Join(f.execs[2], " ") != "/kamal-proxy list" {
		t.Fatalf("ran %v", f.execs)
	}
}

func TestConfigHashIsCoopctls(t *testing.T) {
	h := release.Host{Network: "coop", Proxy: release.Proxy{
		Image: "127.0.0.1:5001/kamal-proxy@sha256:a0930c78ebc274ba7b66a9609a7a838fa868a972613b1c5ca2daec2c58d88ab6", BindAddress: "127.0.0.1", HTTPPort: 8080, HTTPSPort: 8443,
	}}
	// printf '%s\n' IMAGE coop 127.0.0.1 8080 8443 | sha256sum | cut -c1-16
	if got := ConfigHash(h); got != "6aa5114e45417677" {
		t.Fatalf("ConfigHash = %s", got)
	}
	spec := ContainerSpec(h, "coop.managed", "", "")
	if spec.Name != "coop-proxy" || spec.Labels["coop.config"] != "6aa5114e45417677" || spec.Labels["coop.managed"] != "true" || !spec.Restart || len(spec.Mounts) != 1 ||
		spec.Mounts[0] != (engine.Mount{Volume: "coop-proxy-state", Target: "/home/kamal-proxy/.config/kamal-proxy"}) || spec.Ports[1] != (engine.Port{HostIP: "127.0.0.1", HostPort: 8443, ContainerPort: 443}) {
		t.Fatalf("spec %+v", spec)
	}
	// An image that says where its socket is gets the run directory there; the hash is the same.
	spec = ContainerSpec(h, "coop.managed", "/run/kamal-proxy", "/opt/coop/proxy/run")
	if len(spec.Mounts) != 2 || spec.Mounts[1] != (engine.Mount{HostDir: "/opt/coop/proxy/run", Target: "/run/kamal-proxy"}) || spec.Labels["coop.config"] != "6aa5114e45417677" {
		t.Fatalf("spec with a socket directory %+v", spec.Mounts)
	}
}

// directProxy is a Proxy whose directory holds client (a shell script standing in for the
// host's copy of kamal-proxy) and, when listen, a unix socket that answers where kamal-proxy's
// would be.
func directProxy(t *testing.T, f *fakeEngine, client string, listen bool) *Proxy {
	t.Helper()
	p := &Proxy{Engine: f, Dir: t.TempDir()}
	if err := os.MkdirAll(p.RunDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Client(), []byte("#!/bin/sh\n"+client), 0o700); err != nil {
		t.Fatal(err)
	}
	if listen {
		l, err := net.Listen("unix", filepath.Join(p.RunDir(), "kamal-proxy.sock"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	return p
}

func TestCommandsGoThroughTheSocketWhenItAnswers(t *testing.T) {
	f := &fakeEngine{}
	// The client sees the run directory as XDG_RUNTIME_DIR and nothing else of the environment.
	p := directProxy(t, f, `echo "$XDG_RUNTIME_DIR|${HOME:-nohome}|$*"; exit 7`+"\n", true)
	var handle string
	err := p.Deploy(context.Background(), Deployment{Service: "coop-a", Target: "coop-a-blue:8080"}, func(h string) error { handle = h; return nil })
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.ExitCode != 7 || !strings.HasPrefix(refused.LastLine, p.RunDir()+"|nohome|deploy coop-a --target coop-a-blue:8080 ") {
		t.Fatalf("err = %v", err)
	}
	if len(f.execs) != 0 {
		t.Fatalf("went through exec: %v", f.execs)
	}
	if !strings.HasPrefix(handle, "pid ") {
		t.Fatalf("handle %q", handle)
	}
	if running, err := RunningHandle(context.Background(), handle, nil); err != nil || running {
		t.Fatalf("the ended client still runs by its handle (%v, %v)", running, err)
	}
	if err := p.Run(context.Background(), "stop", "coop-a"); err == nil || !strings.Contains(err.Error(), "|stop coop-a") {
		t.Fatalf("stop: %v", err)
	}
}

func TestCommandsGoThroughExecWithoutTheSocketOrTheClient(t *testing.T) {
	f := &fakeEngine{}
	if err := directProxy(t, f, "exit 9\n", false).Run(context.Background(), "resume", "coop-a"); err != nil {
		t.Fatalf("no socket: %v", err)
	}
	p := directProxy(t, f, "exit 9\n", true)
	if err := os.Remove(p.Client()); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(context.Background(), "coop-a"); err != nil {
		t.Fatalf("no client: %v", err)
	}
	if len(f.execs) != 2 || strings.Join(f.execs[0], " ") != "/kamal-proxy resume coop-a" || strings.Join(f.execs[1], " ") != "/kamal-proxy remove coop-a" {
		t.Fatalf("execs %v", f.execs)
	}
}

func TestACommandOutlivesItsContextAndItsHandleSaysSo(t *testing.T) {
	f := &fakeEngine{}
	done := filepath.Join(t.TempDir(), "done")
	p := directProxy(t, f, "sleep 1; touch "+done+"\n", true)
	ctx, cancel := context.WithCancel(context.Background())
	var handle string
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	err := p.Deploy(ctx, Deployment{Service: "coop-a"}, func(h string) error { handle = h; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if running, _ := RunningHandle(context.Background(), handle, nil); !running {
		t.Fatal("the command ended with its context; like an exec, it must go on")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if running, _ := RunningHandle(context.Background(), handle, nil); !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never ended")
		}
	}
	if _, err := os.Stat(done); err != nil {
		t.Fatalf("the command did not finish its work: %v", err)
	}
}

func TestRunningHandleAsksTheEngineForAnExec(t *testing.T) {
	asked := ""
	running, err := RunningHandle(context.Background(), "3f2a", func(_ context.Context, id string) (bool, error) { asked = id; return true, nil })
	if err != nil || !running || asked != "3f2a" {
		t.Fatalf("(%v, %v), asked %q", running, err, asked)
	}
}

// statEngine is fakeEngine that can also stat the state file.
type statEngine struct {
	fakeEngine
	stat  engine.FileStat
	stats int
}

func (f *statEngine) StatFile(_ context.Context, name, path string) (engine.FileStat, error) {
	f.stats++
	return f.stat, nil
}

func TestRoutesFromTheCacheWhileTheFileIsUnchanged(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "proxy-state.json")
	eng := &statEngine{fakeEngine: fakeEngine{files: [][]byte{[]byte(stateFile)}}, stat: engine.FileStat{Size: int64(len(stateFile)), Mtime: time.Now().Add(-time.Minute)}}
	p := &Proxy{Engine: eng, Cache: cache}
	for i := 0; i < 3; i++ {
		routes, err := p.Routes(context.Background())
		if err != nil || len(routes) != 2 || routes[0].Targets[0] != "coop-it-a-green:8080" {
			t.Fatalf("read %d: %v %v", i, routes, err)
		}
	}
	if eng.reads != 1 {
		t.Fatalf("copied the file %d times; the cache should have served the later reads", eng.reads)
	}
	// The file changed (another time): copied again.
	next := strings.Replace(stateFile, "coop-it-a-green:8080", "coop-it-a-blue:8080", 1)
	eng.files = [][]byte{[]byte(next)}
	eng.stat = engine.FileStat{Size: int64(len(next)), Mtime: time.Now().Add(-30 * time.Second)}
	routes, err := p.Routes(context.Background())
	if err != nil || routes[0].Targets[0] != "coop-it-a-blue:8080" || eng.reads != 2 {
		t.Fatalf("after a change: %v %v, %d copies", routes, err, eng.reads)
	}
	// A file changed a moment ago is not trusted to the cache: a rewrite within the file
	// system's timestamp granularity would keep its time.
	eng.stat.Mtime = time.Now()
	eng.files = [][]byte{[]byte(stateFile)}
	for i := 0; i < 2; i++ {
		if _, err := p.Routes(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if eng.reads != 4 {
		t.Fatalf("%d copies of a file that just changed, want a copy each time", eng.reads)
	}
}

// gatedEngine is an engine whose execs of `kamal-proxy remove NAME` wait until NAME's gate is
// closed, and which records, in order, when each exec and each state read starts and ends.
type gatedEngine struct {
	mu     sync.Mutex
	gates  map[string]chan struct{}
	events []string
}

func (g *gatedEngine) record(e string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, e)
}

func (g *gatedEngine) Exec(_ context.Context, _ string, argv []string, _ func(string) error) (engine.ExecResult, error) {
	name := strings.Join(argv[1:], " ")
	g.record("start " + name)
	g.mu.Lock()
	gate := g.gates[argv[len(argv)-1]]
	g.mu.Unlock()
	if gate != nil && argv[1] != "list" {
		<-gate
	}
	g.record("end " + name)
	return engine.ExecResult{}, nil
}

func (g *gatedEngine) CopyFile(context.Context, string, string) ([]byte, error) {
	g.record("read")
	g.record("read done")
	return []byte(stateFile), nil
}

func (g *gatedEngine) seen() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.events...)
}

// waitFor waits until the engine has seen event.
func (g *gatedEngine) waitFor(t *testing.T, event string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, e := range g.seen() {
			if e == event {
				return
			}
		}
	}
	t.Fatalf("never saw %q: %v", event, g.seen())
}

func TestRouteChangesOnAHostTakeTurnsAndReadsWaitForThem(t *testing.T) {
	g := &gatedEngine{gates: map[string]chan struct{}{"coop-a": make(chan struct{}), "coop-b": make(chan struct{})}}
	lockPath := filepath.Join(t.TempDir(), ".proxy-routes.lock")
	// Two agents' proxies (two deploys on one host): each its own descriptor of the same file.
	pa, pb, pr := &Proxy{Engine: g, Lock: lockPath}, &Proxy{Engine: g, Lock: lockPath}, &Proxy{Engine: g, Lock: lockPath}
	var wg sync.WaitGroup
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				t.Error(err)
			}
		}()
	}
	run(func() error { return pa.Remove(context.Background(), "coop-a") })
	g.waitFor(t, "start remove coop-a")
	run(func() error { return pb.Remove(context.Background(), "coop-b") })
	run(func() error { _, err := pr.Routes(context.Background()); return err })
	// A list saves nothing: it does not wait.
	if err := pa.WaitAnswering(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, e := range g.seen() {
		if e == "start remove coop-b" || e == "read" {
			t.Fatalf("%q while coop-a's remove (and its save) had not ended: %v", e, g.seen())
		}
	}
	close(g.gates["coop-a"])
	g.waitFor(t, "end remove coop-a")
	time.Sleep(50 * time.Millisecond)
	close(g.gates["coop-b"])
	wg.Wait()
	events := g.seen()
	// Apart from list, which overlapped the first remove, one thing at a time: a remove, the
	// read, the other remove.
	want := []string{"start remove coop-a", "start list", "end list", "end remove coop-a"}
	if strings.Join(events[:4], ",") != strings.Join(want, ",") || len(events) != 8 {
		t.Fatalf("events %v", events)
	}
	inside := 0
	for _, e := range events[4:] {
		if strings.HasPrefix(e, "start ") || e == "read" {
			inside++
		} else {
			inside--
		}
		if inside > 1 {
			t.Fatalf("commands overlapped: %v", events)
		}
	}
}

func TestWithoutALockNothingWaits(t *testing.T) {
	g := &gatedEngine{gates: map[string]chan struct{}{"coop-a": make(chan struct{})}}
	p := &Proxy{Engine: g}
	go func() { _ = p.Remove(context.Background(), "coop-a") }()
	g.waitFor(t, "start remove coop-a")
	if err := p.Remove(context.Background(), "coop-b"); err != nil {
		t.Fatal(err)
	}
	close(g.gates["coop-a"])
}

func TestARouteChangeGivesUpWaitingWithItsContext(t *testing.T) {
	lockPath := filepath.Join(t.TempDir(), ".proxy-routes.lock")
	held, err := flock.Acquire(context.Background(), lockPath, flock.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	f := &fakeEngine{}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = (&Proxy{Engine: f, Lock: lockPath}).Remove(ctx, "coop-a")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for another route change on this host") || len(f.execs) != 0 {
		t.Fatalf("err %v, execs %v", err, f.execs)
	}
}

func TestTheHostsClientHoldsTheLockUntilItExits(t *testing.T) {
	f := &fakeEngine{}
	done := filepath.Join(t.TempDir(), "done")
	p := directProxy(t, f, "sleep 1; touch "+done+"\n", true)
	p.Lock = filepath.Join(t.TempDir(), ".proxy-routes.lock")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if err := p.Deploy(ctx, Deployment{Service: "coop-a"}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// The agent gave up on the command; the command still runs, and will save: the lock is its.
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	if l, err := flock.Acquire(short, p.Lock, flock.Exclusive); err == nil {
		l.Release()
		t.Fatal("the lock was free while the proxy's command still ran")
	}
	l, err := flock.Acquire(context.Background(), p.Lock, flock.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := os.Stat(done); err != nil {
		t.Fatalf("the lock was free before the command ended: %v", err)
	}
}
