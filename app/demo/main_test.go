package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func testApp(t *testing.T) *app {
	t.Helper()
	return &app{
		coopID:     "test-coop",
		version:    "v9",
		dataDir:    t.TempDir(),
		configFile: filepath.Join(t.TempDir(), "coop.yaml"),
		hostname:   "host-1",
	}
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func TestHealthOK(t *testing.T) {
	a := testApp(t)
	rec := get(t, a.routes(), "/health")
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Fatalf("got %d %q, want 200 \"ok\\n\"", rec.Code, rec.Body.String())
	}
}

func TestHealthFailByEnv(t *testing.T) {
	t.Setenv("DEMO_HEALTH", "fail")
	t.Setenv("DATA_DIR", t.TempDir())
	a := appFromEnv()
	rec := get(t, a.routes(), "/health")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if !strings.HasPrefix(rec.Body.String(), "unhealthy: ") || !strings.HasSuffix(rec.Body.String(), "\n") {
		t.Fatalf("body %q", rec.Body.String())
	}
}

func TestHealthFailByFileAtRuntime(t *testing.T) {
	a := testApp(t)
	h := a.routes()
	if rec := get(t, h, "/health"); rec.Code != http.StatusOK {
		t.Fatalf("before: status %d", rec.Code)
	}
	flag := filepath.Join(a.dataDir, failHealthFile)
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := get(t, h, "/health")
	if rec.Code != http.StatusServiceUnavailable || !strings.HasPrefix(rec.Body.String(), "unhealthy: ") {
		t.Fatalf("with flag: got %d %q", rec.Code, rec.Body.String())
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, "/health"); rec.Code != http.StatusOK {
		t.Fatalf("after removing flag: status %d", rec.Code)
	}
}

func TestVersion(t *testing.T) {
	a := testApp(t)
	rec := get(t, a.routes(), "/version")
	if rec.Code != http.StatusOK || rec.Body.String() != "v9\n" {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
}

func TestUnknownPathIs404(t *testing.T) {
	a := testApp(t)
	if rec := get(t, a.routes(), "/nope"); rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", rec.Code)
	}
}

func TestIndexEscapesConfigAndHidesSecret(t *testing.T) {
	a := testApp(t)
	a.secretKey = "super-secret-value-123"
	if err := os.WriteFile(a.configFile, []byte("name: <script>alert(1)</script>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := get(t, a.routes(), "/")
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	for _, want := range []string{"test-coop", "v9", "host-1", secretPrefix(a.secretKey), "&lt;script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("index lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("config not escaped:\n%s", body)
	}
	if strings.Contains(body, a.secretKey) {
		t.Errorf("index leaks the secret")
	}
}

func TestStateNeverContainsSecret(t *testing.T) {
	a := testApp(t)
	a.secretKey = "hunter2-this-is-secret"
	var out bytes.Buffer
	if code := migrate(a.dataDir, 2, "v9", false, time.Unix(0, 0), &out, io.Discard); code != 0 {
		t.Fatalf("migrate exit %d", code)
	}
	if err := os.WriteFile(a.configFile, []byte("plan: small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := get(t, a.routes(), "/state")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if strings.Contains(rec.Body.String(), a.secretKey) {
		t.Fatalf("/state leaks the secret: %s", rec.Body.String())
	}
	if !strings.Contains(rec.Body.String(), "migrated 0 -> 2 by v9") {
		t.Errorf("/state should show log lines verbatim: %s", rec.Body.String())
	}
	var st struct {
		Coop       string   `json:"coop"`
		Version    string   `json:"version"`
		Schema     int      `json:"schema"`
		Migrations []string `json:"migrations"`
		Prefix     *string  `json:"secretKeySha256Prefix"`
		Config     *string  `json:"config"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Coop != "test-coop" || st.Version != "v9" || st.Schema != 2 {
		t.Errorf("unexpected state %+v", st)
	}
	if len(st.Migrations) != 1 || st.Migrations[0] != "1970-01-01T00:00:00Z migrated 0 -> 2 by v9" {
		t.Errorf("migrations %q", st.Migrations)
	}
	if st.Prefix == nil || len(*st.Prefix) != 8 || *st.Prefix != secretPrefix(a.secretKey) {
		t.Errorf("prefix %v", st.Prefix)
	}
	if st.Config == nil || *st.Config != "plan: small\n" {
		t.Errorf("config %v", st.Config)
	}
}

func TestStateNullsWhenUnset(t *testing.T) {
	a := testApp(t)
	rec := get(t, a.routes(), "/state")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"secretKeySha256Prefix": "null", "config": "null", "schema": "0", "migrations": "[]"} {
		if got := string(raw[k]); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
}

func TestSlow(t *testing.T) {
	a := testApp(t)
	h := a.routes()
	start := time.Now()
	rec := get(t, h, "/slow?ms=150")
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("returned after %s, want >= 150ms", el)
	}
	if rec.Code != http.StatusOK || rec.Body.String() != "slow done\n" {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
	if rec := get(t, h, "/slow?ms=abc"); rec.Code != http.StatusBadRequest {
		t.Errorf("bad ms: status %d, want 400", rec.Code)
	}
}

func TestMigrateIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	var out, errb bytes.Buffer
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

	if code := migrate(dir, 1, "v1", false, now, &out, &errb); code != 0 {
		t.Fatalf("first migrate: exit %d, stderr %q", code, errb.String())
	}
	if got := readFile(t, filepath.Join(dir, schemaFile)); got != "1\n" {
		t.Fatalf("schema_version %q", got)
	}
	wantLog := "2024-05-06T07:08:09Z migrated 0 -> 1 by v1\n"
	if got := readFile(t, filepath.Join(dir, migrationsLog)); got != wantLog {
		t.Fatalf("log %q", got)
	}

	out.Reset()
	if code := migrate(dir, 1, "v1", false, now.Add(time.Hour), &out, &errb); code != 0 {
		t.Fatalf("second migrate: exit %d", code)
	}
	if !strings.Contains(out.String(), "schema already at 1") {
		t.Errorf("stdout %q", out.String())
	}
	if got := readFile(t, filepath.Join(dir, migrationsLog)); got != wantLog {
		t.Fatalf("log changed on no-op migrate: %q", got)
	}

	if code := migrate(dir, 2, "v2", false, now.Add(2*time.Hour), &out, &errb); code != 0 {
		t.Fatalf("upgrade: exit %d", code)
	}
	wantLog += "2024-05-06T09:08:09Z migrated 1 -> 2 by v2\n"
	if got := readFile(t, filepath.Join(dir, migrationsLog)); got != wantLog {
		t.Fatalf("log %q", got)
	}

	// No temp files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("data dir has %d entries, want 2: %v", len(entries), entries)
	}
}

func TestMigrateOlderCodeOnNewerSchema(t *testing.T) {
	dir := t.TempDir()
	mustMigrate(t, dir, 3)
	var out, errb bytes.Buffer
	if code := migrate(dir, 1, "v1", false, time.Now(), &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "warning") {
		t.Errorf("no warning: %q", errb.String())
	}
	if got := readFile(t, filepath.Join(dir, schemaFile)); got != "3\n" {
		t.Errorf("schema changed to %q", got)
	}
}

func TestMigrateFailureLeavesStateUnchanged(t *testing.T) {
	dir := t.TempDir()
	mustMigrate(t, dir, 2)
	beforeSchema := readFile(t, filepath.Join(dir, schemaFile))
	beforeLog := readFile(t, filepath.Join(dir, migrationsLog))

	var out, errb bytes.Buffer
	if code := migrate(dir, 3, "v4", true, time.Now(), &out, &errb); code != 3 {
		t.Fatalf("exit %d, want 3", code)
	}
	if errb.Len() == 0 {
		t.Error("no message on stderr")
	}
	if readFile(t, filepath.Join(dir, schemaFile)) != beforeSchema || readFile(t, filepath.Join(dir, migrationsLog)) != beforeLog {
		t.Error("failed migration changed the data dir")
	}
}

func TestMigrateFailureViaEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DATA_DIR", dir)
	t.Setenv("DEMO_FAIL_MIGRATION", "1")
	var out, errb bytes.Buffer
	if code := run([]string{"migrate"}, &out, &errb); code != 3 {
		t.Fatalf("exit %d, want 3", code)
	}
	if _, err := os.Stat(filepath.Join(dir, schemaFile)); !os.IsNotExist(err) {
		t.Errorf("schema file created: %v", err)
	}
}

func TestMigrateRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, schemaFile), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := migrate(dir, 1, "v1", false, time.Now(), io.Discard, io.Discard); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	a := testApp(t)
	srv := httptest.NewServer(a.routes())
	defer srv.Close()
	if code := healthcheck(srv.URL+"/health", 2*time.Second, io.Discard); code != 0 {
		t.Fatalf("healthy: exit %d", code)
	}
	a.forceUnhealthy = true
	if code := healthcheck(srv.URL+"/health", 2*time.Second, io.Discard); code != 1 {
		t.Fatalf("unhealthy: exit %d", code)
	}
	srv.Close()
	if code := healthcheck(srv.URL+"/health", 2*time.Second, io.Discard); code != 1 {
		t.Fatalf("down: exit %d", code)
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, io.Discard); code != 0 || out.String() != version+"\n" {
		t.Fatalf("exit %d, out %q", code, out.String())
	}
	if code := run([]string{"bogus"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}

func TestRequestLogLine(t *testing.T) {
	var buf bytes.Buffer
	a := testApp(t)
	h := logRequests(log.New(&buf, "", 0), a.routes())
	get(t, h, "/version?token=abc")
	line := buf.String()
	if !strings.HasPrefix(line, "GET /version 200 ") {
		t.Fatalf("log line %q", line)
	}
	if strings.Contains(line, "token") {
		t.Fatalf("query string logged: %q", line)
	}
}

// TestGracefulShutdownDrains starts a real server, begins a slow request, sends
// SIGTERM to ourselves and checks that the slow request still completes.
func TestGracefulShutdownDrains(t *testing.T) {
	a := testApp(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logBuf safeBuffer
	srv := &http.Server{Handler: logRequests(log.New(&logBuf, "", 0), a.routes())}
	done := make(chan int, 1)
	go func() { done <- serveUntilSignal(srv, ln, log.New(&logBuf, "", 0), 5*time.Second) }()

	base := "http://" + ln.Addr().String()
	waitFor(t, func() bool { return strings.Contains(logBuf.String(), "listening") })

	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow?ms=700")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), err}
	}()
	time.Sleep(150 * time.Millisecond) // let the request reach the handler

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-slow
	if r.err != nil || r.body != "slow done\n" {
		t.Fatalf("in-flight request: body %q err %v", r.body, r.err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
	if !strings.Contains(logBuf.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", logBuf.String())
	}
	if _, err := http.Get(base + "/health"); err == nil {
		t.Error("server still accepting after shutdown")
	}
}

// helpers

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustMigrate(t *testing.T, dir string, target int) {
	t.Helper()
	if code := migrate(dir, target, "test", false, time.Now(), io.Discard, io.Discard); code != 0 {
		t.Fatalf("migrate to %d: exit %d", target, code)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
