// Command coop-demo is a small stand-in for a co-op's web application.
//
// It is deliberately boring: an HTTP server with a health endpoint, a version
// endpoint and a page that shows what the deploy tooling handed to it, plus a
// "migrate" step that records a schema number on the data volume. It exists so
// that deploy, rollback and cutover behaviour can be exercised end to end.
//
// Only the Go standard library is used so it builds into a static binary that
// runs in a FROM scratch image.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Values baked in at build time with
//
//	-ldflags "-X main.version=v2 -X main.schema=2 -X main.failMigration=1"
//
// -X can only set string variables, hence schema and failMigration are strings.
var (
	version       = "dev"
	schema        = "1"
	failMigration = ""
)

const (
	defaultPort       = "8080"
	defaultDataDir    = "/data"
	defaultConfigFile = "/config/coop.yaml"
	defaultCoopID     = "demo"

	schemaFile      = "schema_version"
	migrationsLog   = "migrations.log"
	failHealthFile  = "fail-health"
	maxSlowMillis   = 60000
	defaultShutdown = 30 * time.Second

	// Exit codes.
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitMigrationErr = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		return serve(stdout, stderr)
	case "migrate":
		target, err := targetSchema()
		if err != nil {
			fmt.Fprintf(stderr, "migrate: %v\n", err)
			return exitError
		}
		fail := failMigration == "1" || os.Getenv("DEMO_FAIL_MIGRATION") == "1"
		return migrate(dataDir(), target, version, fail, time.Now(), stdout, stderr)
	case "healthcheck":
		url := "http://127.0.0.1:" + port() + "/health"
		return healthcheck(url, 2*time.Second, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, version)
		return exitOK
	case "help", "--help", "-h":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "coop-demo: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: coop-demo [command]

commands:
  serve        run the HTTP server on :$PORT (default; PORT defaults to 8080)
  migrate      bring $DATA_DIR/schema_version up to this build's schema
  healthcheck  exit 0 if http://127.0.0.1:$PORT/health answers 200, else 1
  version      print the version
`)
}

func port() string {
	if p := os.Getenv("PORT"); p != "" {
		return p
	}
	return defaultPort
}

func dataDir() string {
	if d := os.Getenv("DATA_DIR"); d != "" {
		return d
	}
	return defaultDataDir
}

func targetSchema() (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(schema))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("build-time schema %q is not a non-negative integer", schema)
	}
	return n, nil
}

// ---------------------------------------------------------------------------
// HTTP server

// app holds everything the handlers need. It is filled from the environment
// once at start-up (see appFromEnv); tests construct it directly.
type app struct {
	coopID     string
	version    string
	dataDir    string
	configFile string
	secretKey  string
	hostname   string
	// forceUnhealthy is set when DEMO_HEALTH=fail.
	forceUnhealthy bool
}

func appFromEnv() *app {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	coop := os.Getenv("COOP_ID")
	if coop == "" {
		coop = defaultCoopID
	}
	return &app{
		coopID:         coop,
		version:        version,
		dataDir:        dataDir(),
		configFile:     defaultConfigFile,
		secretKey:      os.Getenv("SECRET_KEY"),
		hostname:       host,
		forceUnhealthy: os.Getenv("DEMO_HEALTH") == "fail",
	}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", a.handleHealth)
	mux.HandleFunc("GET /version", a.handleVersion)
	mux.HandleFunc("GET /state", a.handleState)
	mux.HandleFunc("GET /slow", a.handleSlow)
	mux.HandleFunc("GET /{$}", a.handleIndex)
	return mux
}

// unhealthyReason returns "" when healthy.
func (a *app) unhealthyReason() string {
	if a.forceUnhealthy {
		return "forced by DEMO_HEALTH"
	}
	if _, err := os.Stat(filepath.Join(a.dataDir, failHealthFile)); err == nil {
		return "forced by " + failHealthFile + " file in data dir"
	}
	return ""
}

func (a *app) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if reason := a.unhealthyReason(); reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %s\n", reason)
		return
	}
	fmt.Fprint(w, "ok\n")
}

func (a *app) handleVersion(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, a.version)
}

func (a *app) handleSlow(w http.ResponseWriter, r *http.Request) {
	ms := 0
	if s := r.URL.Query().Get("ms"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			http.Error(w, "ms must be a non-negative integer", http.StatusBadRequest)
			return
		}
		ms = n
	}
	if ms > maxSlowMillis {
		ms = maxSlowMillis
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		// Client went away; nobody is left to answer.
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "slow done\n")
}

// snapshot is what / and /state report.
type snapshot struct {
	Coop                  string   `json:"coop"`
	Version               string   `json:"version"`
	Schema                int      `json:"schema"`
	Migrations            []string `json:"migrations"`
	SecretKeySha256Prefix *string  `json:"secretKeySha256Prefix"`
	Config                *string  `json:"config"`
	Hostname              string   `json:"-"`
}

func (a *app) snapshot() snapshot {
	s := snapshot{
		Coop:       a.coopID,
		Version:    a.version,
		Migrations: []string{},
		Hostname:   a.hostname,
	}
	if n, err := readSchema(a.dataDir); err == nil {
		s.Schema = n
	} else {
		s.Schema = -1
	}
	if b, err := os.ReadFile(filepath.Join(a.dataDir, migrationsLog)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimRight(line, "\r"); line != "" {
				s.Migrations = append(s.Migrations, line)
			}
		}
	}
	if a.secretKey != "" {
		p := secretPrefix(a.secretKey)
		s.SecretKeySha256Prefix = &p
	}
	if b, err := os.ReadFile(a.configFile); err == nil {
		c := string(b)
		s.Config = &c
	}
	return s
}

// secretPrefix returns the first 8 hex characters of sha256(secret): enough to
// tell whether two deployments got the same secret, useless for recovering it.
func secretPrefix(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])[:8]
}

func (a *app) handleState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep "migrated 1 -> 2" readable; this is not HTML
	if err := enc.Encode(a.snapshot()); err != nil {
		log.Printf("state: encode: %v", err)
	}
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>co-op {{.Coop}}</title></head>
<body>
<h1>co-op {{.Coop}}</h1>
<table>
<tr><th>version</th><td id="version">{{.Version}}</td></tr>
<tr><th>schema</th><td id="schema">{{.Schema}}</td></tr>
<tr><th>hostname</th><td id="hostname">{{.Hostname}}</td></tr>
<tr><th>SECRET_KEY</th><td id="secret">{{with .SecretKeySha256Prefix}}set (sha256 prefix {{.}}){{else}}not set{{end}}</td></tr>
</table>
<h2>/config/coop.yaml</h2>
{{with .Config}}<pre id="config">{{.}}</pre>{{else}}<p id="config">not present</p>{{end}}
</body>
</html>
`))

func (a *app) handleIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := indexTmpl.Execute(w, a.snapshot()); err != nil {
		log.Printf("index: render: %v", err)
	}
}

// statusRecorder remembers the status code written by a handler.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests writes one line per request: method, path, status, duration.
// The query string is left out on purpose (it could carry anything).
func logRequests(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			// Handler wrote nothing (e.g. client gone from /slow).
			status = http.StatusOK
			if r.Context().Err() != nil {
				status = 499
			}
		}
		logger.Printf("%s %s %d %s", r.Method, r.URL.Path, status, time.Since(start).Round(time.Microsecond))
	})
}

func shutdownTimeout() time.Duration {
	if s := os.Getenv("SHUTDOWN_TIMEOUT_MS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			return time.Duration(n) * time.Millisecond
		}
	}
	return defaultShutdown
}

func serve(stdout, stderr io.Writer) int {
	logger := log.New(stdout, "", log.LstdFlags|log.LUTC)
	log.SetOutput(stderr)
	a := appFromEnv()
	addr := ":" + port()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "serve: listen on %s: %v\n", addr, err)
		return exitError
	}
	srv := &http.Server{
		Handler:           logRequests(logger, a.routes()),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return serveUntilSignal(srv, ln, logger, shutdownTimeout())
}

// serveUntilSignal serves on ln until SIGTERM or SIGINT, then stops accepting
// new connections and waits up to grace for in-flight requests to finish.
func serveUntilSignal(srv *http.Server, ln net.Listener, logger *log.Logger, grace time.Duration) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Printf("coop-demo %s (schema %s) listening on %s", version, schema, ln.Addr())

	select {
	case err := <-errc:
		logger.Printf("server stopped unexpectedly: %v", err)
		return exitError
	case <-ctx.Done():
	}
	stop() // a second signal now kills the process the default way

	logger.Printf("shutting down: draining in-flight requests (up to %s)", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Printf("shutdown: %v; closing remaining connections", err)
		_ = srv.Close()
		return exitError
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Printf("server: %v", err)
	}
	logger.Printf("shutdown complete")
	return exitOK
}

// ---------------------------------------------------------------------------
// healthcheck

func healthcheck(url string, timeout time.Duration, stderr io.Writer) int {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitError
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return exitError
	}
	return exitOK
}

// ---------------------------------------------------------------------------
// migrate

// readSchema returns the schema number stored in dir; a missing file means 0.
func readSchema(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, schemaFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s holds %q, not a non-negative integer", filepath.Join(dir, schemaFile), strings.TrimSpace(string(b)))
	}
	return n, nil
}

// writeFileAtomic writes data to a temporary file in the same directory and
// renames it over path, so readers see either the old or the new content.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	cleanup := func() { _ = os.Remove(tmpName) }
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		cleanup()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		cleanup()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		cleanup()
		return err
	}
	if err := tmp.Close(); err != nil {
		cleanup()
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		cleanup()
		return err
	}
	// Make the rename itself durable; not all filesystems support this.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// migrate brings dir up to schema target. It returns a process exit code.
func migrate(dir string, target int, by string, fail bool, now time.Time, stdout, stderr io.Writer) int {
	if fail {
		fmt.Fprintf(stderr, "migrate: migration to schema %d failed (simulated failure in %s); data dir left unchanged\n", target, by)
		return exitMigrationErr
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "migrate: create data dir: %v\n", err)
		return exitError
	}
	current, err := readSchema(dir)
	if err != nil {
		fmt.Fprintf(stderr, "migrate: %v\n", err)
		return exitError
	}
	switch {
	case current == target:
		fmt.Fprintf(stdout, "schema already at %d\n", current)
		return exitOK
	case current > target:
		fmt.Fprintf(stderr, "migrate: warning: data dir schema %d is newer than this build's schema %d (%s); leaving it unchanged\n", current, target, by)
		return exitOK
	}

	// Append to the log first, then update schema_version: the schema file is
	// the commit point. If we die in between, a re-run logs the step again,
	// which is noisy but never claims a schema that was not reached.
	logPath := filepath.Join(dir, migrationsLog)
	old, err := os.ReadFile(logPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "migrate: read %s: %v\n", logPath, err)
		return exitError
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	line := fmt.Sprintf("%s migrated %d -> %d by %s\n", now.UTC().Format(time.RFC3339), current, target, by)
	if err := writeFileAtomic(logPath, append(old, line...), 0o644); err != nil {
		fmt.Fprintf(stderr, "migrate: write %s: %v\n", logPath, err)
		return exitError
	}
	if err := writeFileAtomic(filepath.Join(dir, schemaFile), []byte(strconv.Itoa(target)+"\n"), 0o644); err != nil {
		fmt.Fprintf(stderr, "migrate: write %s: %v\n", filepath.Join(dir, schemaFile), err)
		return exitError
	}
	fmt.Fprintf(stdout, "migrated %d -> %d\n", current, target)
	return exitOK
}
