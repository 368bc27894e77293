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
	"testing"
	"time"

	"coop/host/internal/engine"
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
	f = &fakeEngine{files: [][]byte{[]byte("{broken")}}
	if _, err := (&Proxy{Engine: f}).Routes(context.Background()); err == nil || f.reads != stateReadAttempts {
		t.Fatalf("err %v after %d reads", err, f.reads)
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
