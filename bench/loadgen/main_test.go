package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// When LOADGEN_TEST_AS_MAIN=1 the test binary behaves as the loadgen command,
// so the signal path can be tested in a real child process.
func TestMain(m *testing.M) {
	if os.Getenv("LOADGEN_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

var kvNames = []string{
	"requests", "ok_2xx", "non_2xx", "failed_requests", "socket_errors",
	"timeouts", "dropped_by_client", "p50_ms", "p90_ms", "p99_ms", "max_ms",
	"achieved_rps", "elapsed_s", "retried_requests",
}

func TestIsLoopbackHost(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "127.9.9.9", "127.255.255.254", "::1", "localhost", "LOCALHOST", "localhost."} {
		if !isLoopbackHost(h) {
			t.Errorf("isLoopbackHost(%q) = false, want true", h)
		}
	}
	for _, h := range []string{"10.0.0.1", "192.168.1.1", "example.com", "0.0.0.0", "::", "128.0.0.1",
		"localhost.example.com", "127.0.0.1.nip.io", "2130706433", "127.1", "::1%lo", ""} {
		if isLoopbackHost(h) {
			t.Errorf("isLoopbackHost(%q) = true, want false", h)
		}
	}
}

func TestCheckTargetURL(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:8080/version", "http://127.9.9.9/", "http://[::1]:8080/x",
		"http://localhost:8080/version", "https://localhost/",
	} {
		if _, err := checkTargetURL(u); err != nil {
			t.Errorf("checkTargetURL(%q) = %v, want ok", u, err)
		}
	}
	for _, u := range []string{
		"http://10.0.0.1/", "http://192.168.1.1:8080/", "http://example.com/", "https://example.com:443/",
		"http://[2001:db8::1]/", "ftp://127.0.0.1/", "127.0.0.1:8080", "http:///path",
		"http://user@example.com/", "http://localhost.evil.com/",
	} {
		if _, err := checkTargetURL(u); err == nil {
			t.Errorf("checkTargetURL(%q) accepted, want refusal", u)
		}
	}
}

func TestDialControlRefusesNonLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1:80", "127.3.2.1:8080", "[::1]:443"} {
		if err := loopbackOnly("tcp", a, nil); err != nil {
			t.Errorf("loopbackOnly(%q) = %v", a, err)
		}
	}
	for _, a := range []string{"10.0.0.1:80", "[2001:db8::1]:80", "93.184.216.34:443", "garbage"} {
		if err := loopbackOnly("tcp", a, nil); err == nil {
			t.Errorf("loopbackOnly(%q) allowed", a)
		}
	}
}

func TestBadFlagsExit2OneLine(t *testing.T) {
	cases := [][]string{
		{"-url", "http://10.0.0.1/"},
		{"-url", "http://192.168.1.1:8080/version"},
		{"-url", "http://example.com/"},
		{},
		{"-url", "http://127.0.0.1/", "-rate", "0"},
		{"-url", "http://127.0.0.1/", "-rate", "-5"},
		{"-url", "http://127.0.0.1/", "-format", "xml"},
		{"-url", "http://127.0.0.1/", "-connections", "0"},
		{"-url", "http://127.0.0.1/", "-timeout", "0s"},
		{"-url", "http://127.0.0.1/", "-duration", "-1s"},
		{"-url", "http://127.0.0.1/", "-max-requests", "-1"},
		{"-url", "http://127.0.0.1/", "-host", "a b"},
		{"-url", "http://127.0.0.1/", "-nosuchflag"},
		{"-url", "http://127.0.0.1/", "extra"},
	}
	for _, args := range cases {
		var out, errb bytes.Buffer
		code := realMain(context.Background(), args, &out, &errb)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if out.Len() != 0 {
			t.Errorf("%q: unexpected stdout %q", args, out.String())
		}
		msg := errb.String()
		if !strings.HasSuffix(msg, "\n") || strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "loadgen: ") {
			t.Errorf("%q: stderr not a single line: %q", args, msg)
		}
	}
	var errb bytes.Buffer
	realMain(context.Background(), []string{"-url", "http://10.0.0.1/"}, &bytes.Buffer{}, &errb)
	if !strings.Contains(errb.String(), "not loopback") {
		t.Errorf("refusal message does not say why: %q", errb.String())
	}
}

func TestHistogramBuckets(t *testing.T) {
	if histBuckets > 2100 {
		t.Fatalf("histogram has %d buckets, expected a small fixed size", histBuckets)
	}
	rng := rand.New(rand.NewSource(1))
	check := func(v uint64) {
		i := bucketIndex(v)
		lo, hi := bucketBounds(i)
		if v < lo || v >= hi {
			t.Fatalf("value %d in bucket %d = [%d,%d)", v, i, lo, hi)
		}
		if lo >= 1000 && float64(hi-lo)/float64(lo) > 1.0/64+1e-12 {
			t.Fatalf("bucket %d [%d,%d) is wider than 1/64", i, lo, hi)
		}
	}
	for v := uint64(0); v < 5000; v++ {
		check(v)
	}
	for n := 0; n < 200000; n++ {
		check(uint64(rng.Int63n(int64(histMax))))
	}
	check(histMax)
	// Buckets are contiguous.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketBounds(i - 1)
		lo, _ := bucketBounds(i)
		if lo != prevHi {
			t.Fatalf("gap between bucket %d and %d", i-1, i)
		}
	}
}

func exactPercentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestHistogramPercentiles(t *testing.T) {
	datasets := map[string][]time.Duration{}
	var linear []time.Duration // 1 µs .. 100 ms in 1 µs steps
	for i := 1; i <= 100000; i++ {
		linear = append(linear, time.Duration(i)*time.Microsecond)
	}
	datasets["linear"] = linear
	rng := rand.New(rand.NewSource(42))
	var logspread []time.Duration // log-uniform 1 µs .. 60 s
	for i := 0; i < 50000; i++ {
		logspread = append(logspread, time.Duration(math.Exp(rng.Float64()*math.Log(6e7)))*time.Microsecond)
	}
	datasets["log-uniform"] = logspread
	var bimodal []time.Duration // mostly ~0.3 ms, 2% around 250 ms
	for i := 0; i < 10000; i++ {
		if i%50 == 0 {
			bimodal = append(bimodal, 250*time.Millisecond+time.Duration(rng.Intn(1000))*time.Microsecond)
		} else {
			bimodal = append(bimodal, 300*time.Microsecond+time.Duration(rng.Intn(100))*time.Microsecond)
		}
	}
	datasets["bimodal"] = bimodal

	for name, data := range datasets {
		h := newHistogram()
		for _, d := range data {
			h.Record(d)
		}
		sorted := append([]time.Duration(nil), data...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		for _, p := range []float64{1, 10, 50, 90, 98, 99, 99.9, 100} {
			want := exactPercentile(sorted, p)
			got := h.Percentile(p)
			if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
				t.Errorf("%s p%v = %v, want %v (error %.2f%%)", name, p, got, want, rel*100)
			}
		}
		if h.Max() != sorted[len(sorted)-1] {
			t.Errorf("%s max = %v, want %v", name, h.Max(), sorted[len(sorted)-1])
		}
		if h.Count() != uint64(len(data)) {
			t.Errorf("%s count = %d", name, h.Count())
		}
	}

	h := newHistogram()
	if h.Percentile(99) != 0 {
		t.Error("empty histogram should report 0")
	}
	h.Record(2 * time.Minute) // beyond the range: clamped in buckets, max exact
	if h.Max() != 2*time.Minute || h.Percentile(50) > 2*time.Minute || h.Percentile(50) < 59*time.Second {
		t.Errorf("out of range sample: max %v p50 %v", h.Max(), h.Percentile(50))
	}
}

func TestPlannedRequests(t *testing.T) {
	cases := []struct {
		rate     float64
		duration time.Duration
		max      int64
		want     int64
	}{
		{500, time.Second, 0, 500},
		{1000, 10 * time.Second, 0, 10000},
		{1000, 10 * time.Second, 37, 37},
		{3, 1500 * time.Millisecond, 0, 5}, // due at 0, .33, .67, 1.0, 1.33
		{100, 0, 0, -1},
		{100, 0, 250, 250},
	}
	for _, c := range cases {
		got := plannedRequests(config{rate: c.rate, duration: c.duration, maxRequests: c.max})
		if got != c.want {
			t.Errorf("plannedRequests(rate=%v dur=%v max=%d) = %d, want %d", c.rate, c.duration, c.max, got, c.want)
		}
	}
}

// A schedule that falls behind with nobody consuming keeps at most one second
// of requests and counts the rest as dropped by the client.
func TestScheduleBoundsBacklog(t *testing.T) {
	cfg := config{rate: 1000, duration: 5 * time.Second}
	jobs := make(chan time.Duration, 1000)
	st := newStats()
	begin := time.Now()
	schedule(context.Background(), cfg, time.Now().Add(-10*time.Second), jobs, st)
	if time.Since(begin) > 2*time.Second {
		t.Fatalf("schedule took %v; overdue requests should be issued at once", time.Since(begin))
	}
	if len(jobs) != 1000 || st.dropped.Load() != 4000 {
		t.Fatalf("queued %d dropped %d, want 1000 and 4000", len(jobs), st.dropped.Load())
	}
	// Queued entries keep their original due times.
	for i := 0; i < 3; i++ {
		if off := <-jobs; off != time.Duration(i)*time.Millisecond {
			t.Fatalf("job %d due at %v", i, off)
		}
	}
}

type testServer struct {
	*httptest.Server
	hits atomic.Int64
}

// newTestServer: "/" answers 200, except every 10th request gets 503;
// "/drop" resets the connection without answering; "/flaky" does that to
// every 5th request only; "/slow" takes 200 ms.
func newTestServer(t *testing.T) *testServer {
	ts := &testServer{}
	var mixed, flaky atomic.Int64
	abort := func(w http.ResponseWriter) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST instead of FIN
		}
		conn.Close()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		if mixed.Add(1)%10 == 0 {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/drop", func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		abort(w)
	})
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		if flaky.Add(1)%5 == 0 {
			abort(w)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		time.Sleep(200 * time.Millisecond)
		_, _ = w.Write([]byte("slow\n"))
	})
	ts.Server = httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	if _, err := checkTargetURL(ts.URL); err != nil {
		t.Fatalf("test server is not on loopback: %v", err)
	}
	return ts
}

func testConfig(url string) config {
	return config{url: url, rate: 500, duration: time.Second, connections: 16, timeout: 2 * time.Second, format: "kv"}
}

func checkAccounting(t *testing.T, s *summary) {
	t.Helper()
	if s.Requests != s.OK2xx+s.Non2xx+s.SocketErrors {
		t.Errorf("requests %d != ok %d + non2xx %d + socket %d", s.Requests, s.OK2xx, s.Non2xx, s.SocketErrors)
	}
	if s.FailedRequests != s.Non2xx+s.SocketErrors {
		t.Errorf("failed_requests %d != non_2xx + socket_errors", s.FailedRequests)
	}
	if s.Timeouts > s.SocketErrors {
		t.Errorf("timeouts %d > socket_errors %d", s.Timeouts, s.SocketErrors)
	}
	var byCode int64
	for _, n := range s.StatusCodes {
		byCode += n
	}
	if byCode != s.OK2xx+s.Non2xx {
		t.Errorf("status_codes sum %d != ok+non2xx %d", byCode, s.OK2xx+s.Non2xx)
	}
	if len(s.Errors) > 5 {
		t.Errorf("%d errors kept, want at most 5", len(s.Errors))
	}
}

func TestEndToEnd(t *testing.T) {
	ts := newTestServer(t)

	t.Run("mixed 200/503 at 500 rps for 1s", func(t *testing.T) {
		cfg := testConfig(ts.URL + "/")
		s := run(context.Background(), cfg, newClient(cfg))
		t.Logf("%+v", *s)
		checkAccounting(t, s)
		if s.Requests+s.DroppedByClient != 500 {
			t.Errorf("requests %d + dropped %d != 500 scheduled", s.Requests, s.DroppedByClient)
		}
		if s.Requests < 490 {
			t.Errorf("requests = %d, want ~500", s.Requests)
		}
		if s.Non2xx < 45 || s.Non2xx > 55 || s.StatusCodes["503"] != s.Non2xx {
			t.Errorf("non_2xx = %d (codes %v), want ~50 all 503", s.Non2xx, s.StatusCodes)
		}
		if s.SocketErrors != 0 {
			t.Errorf("socket_errors = %d, errors %v", s.SocketErrors, s.Errors)
		}
		if s.ElapsedS < 0.99 || s.ElapsedS > 1.5 {
			t.Errorf("elapsed_s = %v, want ~1", s.ElapsedS)
		}
		if s.AchievedRPS < 400 || s.AchievedRPS > 510 {
			t.Errorf("achieved_rps = %v, want ~500", s.AchievedRPS)
		}
		if !(s.P50Ms > 0 && s.P50Ms <= s.P90Ms && s.P90Ms <= s.P99Ms && s.P99Ms <= s.MaxMs) {
			t.Errorf("percentiles not ordered: %v %v %v %v", s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs)
		}
	})

	t.Run("connection reset path counts socket errors", func(t *testing.T) {
		cfg := testConfig(ts.URL + "/drop")
		cfg.rate, cfg.duration = 200, 500*time.Millisecond
		s := run(context.Background(), cfg, newClient(cfg))
		t.Logf("%+v", *s)
		checkAccounting(t, s)
		if s.Requests+s.DroppedByClient != 100 || s.Requests < 95 {
			t.Errorf("requests %d dropped %d, want 100 scheduled", s.Requests, s.DroppedByClient)
		}
		if s.SocketErrors != s.Requests || s.OK2xx != 0 || s.FailedRequests != s.Requests {
			t.Errorf("socket_errors %d ok %d failed %d, want all %d failed at socket level",
				s.SocketErrors, s.OK2xx, s.FailedRequests, s.Requests)
		}
		if len(s.Errors) == 0 {
			t.Error("no error messages recorded")
		}
		if s.Timeouts != 0 {
			t.Errorf("timeouts = %d, want 0", s.Timeouts)
		}
	})

	t.Run("resets on reused connections count as socket errors", func(t *testing.T) {
		before := ts.hits.Load()
		cfg := testConfig(ts.URL + "/flaky")
		cfg.rate, cfg.duration, cfg.connections = 200, 500*time.Millisecond, 4
		s := run(context.Background(), cfg, newClient(cfg))
		t.Logf("%+v", *s)
		checkAccounting(t, s)
		if s.Requests != 100 || s.DroppedByClient != 0 {
			t.Errorf("requests %d dropped %d, want 100 and 0", s.Requests, s.DroppedByClient)
		}
		if hits := ts.hits.Load() - before; hits != s.Requests {
			t.Errorf("server handled %d requests, client sent %d: requests were re-sent", hits, s.Requests)
		}
		if s.SocketErrors != 20 || s.RetriedRequests != 0 || s.OK2xx != 80 {
			t.Errorf("socket_errors %d retried %d ok %d, want 20, 0, 80", s.SocketErrors, s.RetriedRequests, s.OK2xx)
		}
	})

	t.Run("with -retry net/http re-sends them and we report it", func(t *testing.T) {
		cfg := testConfig(ts.URL + "/flaky")
		cfg.rate, cfg.duration, cfg.connections, cfg.retry = 200, 500*time.Millisecond, 4, true
		s := run(context.Background(), cfg, newClient(cfg))
		t.Logf("%+v", *s)
		checkAccounting(t, s)
		if s.Requests != 100 {
			t.Errorf("requests %d, want 100", s.Requests)
		}
		if s.RetriedRequests == 0 {
			t.Error("expected net/http to retry requests reset on reused connections")
		}
	})

	t.Run("timeouts are socket errors", func(t *testing.T) {
		cfg := testConfig(ts.URL + "/slow")
		cfg.rate, cfg.duration, cfg.timeout = 20, 250*time.Millisecond, 50*time.Millisecond
		s := run(context.Background(), cfg, newClient(cfg))
		t.Logf("%+v", *s)
		checkAccounting(t, s)
		if s.Requests != 5 || s.Timeouts != 5 || s.SocketErrors != 5 {
			t.Errorf("requests %d timeouts %d socket_errors %d, want 5/5/5", s.Requests, s.Timeouts, s.SocketErrors)
		}
	})

	t.Run("max-requests", func(t *testing.T) {
		cfg := testConfig(ts.URL + "/")
		cfg.rate, cfg.maxRequests = 1000, 37
		begin := time.Now()
		s := run(context.Background(), cfg, newClient(cfg))
		checkAccounting(t, s)
		if s.Requests+s.DroppedByClient != 37 {
			t.Errorf("requests %d + dropped %d, want 37", s.Requests, s.DroppedByClient)
		}
		if time.Since(begin) > 500*time.Millisecond {
			t.Errorf("took %v to send 37 requests at 1000 rps", time.Since(begin))
		}
	})

	t.Run("host header", func(t *testing.T) {
		got := make(chan string, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case got <- fmt.Sprintf("%s %s cl=%d te=%v %q %q", r.Host, r.Header.Get("User-Agent"),
				r.ContentLength, r.TransferEncoding, r.Header.Get("Content-Length"), r.Header.Get("Accept-Encoding")):
			default:
			}
		}))
		defer srv.Close()
		cfg := testConfig(srv.URL + "/version")
		cfg.host, cfg.maxRequests = "alpha.localhost", 3
		s := run(context.Background(), cfg, newClient(cfg))
		if s.OK2xx != 3 {
			t.Fatalf("ok_2xx = %d", s.OK2xx)
		}
		// No body or length headers despite the empty Body used to stop
		// retries, and no Accept-Encoding (compression disabled).
		if h := <-got; h != "alpha.localhost "+userAgent+` cl=0 te=[] "" ""` {
			t.Errorf("server saw %q", h)
		}
	})
}

// A slow target with few connections backs requests up: their latency is
// counted from the due time, and the queue never exceeds one second's worth.
func TestNoCoordinatedOmission(t *testing.T) {
	ts := newTestServer(t)
	cfg := testConfig(ts.URL + "/slow")
	cfg.rate, cfg.duration, cfg.connections = 50, time.Second, 2
	s := run(context.Background(), cfg, newClient(cfg))
	t.Logf("%+v", *s)
	checkAccounting(t, s)
	if s.Requests+s.DroppedByClient != 50 {
		t.Errorf("requests %d + dropped %d != 50", s.Requests, s.DroppedByClient)
	}
	// 2 workers x 5 req/s: ~10 served in the first second, the rest wait.
	// The last requests served waited ~the whole -timeout behind the others.
	if s.MaxMs < 1000 {
		t.Errorf("max_ms = %v; queueing time is not being counted", s.MaxMs)
	}
	if s.P50Ms < 400 {
		t.Errorf("p50_ms = %v; latency should include time spent queued", s.P50Ms)
	}
	if s.DroppedByClient == 0 {
		t.Errorf("expected queued requests to be abandoned after the drain timeout")
	}
}

func parseKV(t *testing.T, out string) ([]string, map[string]float64) {
	t.Helper()
	var names []string
	vals := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("bad kv line %q", line)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		names = append(names, k)
		vals[k] = f
	}
	return names, vals
}

func checkKVComplete(t *testing.T, out string, extra ...string) map[string]float64 {
	t.Helper()
	names, vals := parseKV(t, out)
	want := append(append([]string(nil), kvNames...), extra...)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("kv names/order:\n got %v\nwant %v", names, want)
	}
	return vals
}

// Cancelling the context (what SIGINT/SIGTERM do) stops an unlimited run and
// still yields a complete summary.
func TestCancelledRunSummary(t *testing.T) {
	ts := newTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(600*time.Millisecond, cancel)
	var out, errb bytes.Buffer
	begin := time.Now()
	code := realMain(ctx, []string{"-url", ts.URL + "/", "-rate", "200", "-duration", "0", "-self-stats"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("took %v to stop after cancel", took)
	}
	vals := checkKVComplete(t, out.String(), "loadgen_max_rss_kb")
	if vals["requests"] < 100 || vals["requests"] > 140 {
		t.Errorf("requests = %v, want ~120", vals["requests"])
	}
	if vals["requests"] != vals["ok_2xx"]+vals["non_2xx"]+vals["socket_errors"] {
		t.Errorf("counts do not add up: %v", vals)
	}
	if vals["elapsed_s"] < 0.55 || vals["elapsed_s"] > 1 || vals["achieved_rps"] < 150 || vals["p50_ms"] <= 0 || vals["max_ms"] <= 0 {
		t.Errorf("incomplete figures: %v", vals)
	}
	if vals["loadgen_max_rss_kb"] <= 0 {
		t.Errorf("loadgen_max_rss_kb = %v", vals["loadgen_max_rss_kb"])
	}

	// Cancelled before it starts: still a full (empty) summary.
	out.Reset()
	done, stop := context.WithCancel(context.Background())
	stop()
	if code := realMain(done, []string{"-url", ts.URL + "/", "-format", "json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range append(kvNames, "status_codes", "errors") {
		if _, ok := m[k]; !ok {
			t.Errorf("json lacks %q: %s", k, out.String())
		}
	}
}

// The real binary path: run as a child process, send SIGTERM, and expect the
// summary on stdout and exit status 0.
func TestSIGTERMPrintsSummary(t *testing.T) {
	for _, format := range []string{"kv", "json"} {
		t.Run(format, func(t *testing.T) {
			ts := newTestServer(t)
			cmd := exec.Command(os.Args[0], "-url", ts.URL+"/", "-rate", "300", "-duration", "1m", "-format", format)
			cmd.Env = append(os.Environ(), "LOADGEN_TEST_AS_MAIN=1")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for ts.hits.Load() < 100 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				if err != nil {
					t.Fatalf("exit: %v, stderr %q", err, errb.String())
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("loadgen did not exit after SIGTERM")
			}
			hits := float64(ts.hits.Load())
			var vals map[string]float64
			if format == "kv" {
				vals = checkKVComplete(t, out.String())
			} else {
				var s summary
				if err := json.Unmarshal(out.Bytes(), &s); err != nil {
					t.Fatalf("json: %v: %q", err, out.String())
				}
				vals = map[string]float64{"requests": float64(s.Requests), "ok_2xx": float64(s.OK2xx),
					"non_2xx": float64(s.Non2xx), "socket_errors": float64(s.SocketErrors),
					"p50_ms": s.P50Ms, "elapsed_s": s.ElapsedS, "achieved_rps": s.AchievedRPS}
				if s.StatusCodes["200"] != s.OK2xx {
					t.Errorf("status_codes %v", s.StatusCodes)
				}
			}
			if vals["requests"] < 100 || vals["requests"] != hits {
				t.Errorf("requests = %v, server saw %v", vals["requests"], hits)
			}
			if vals["requests"] != vals["ok_2xx"]+vals["non_2xx"]+vals["socket_errors"] || vals["socket_errors"] != 0 {
				t.Errorf("counts: %v", vals)
			}
			if vals["p50_ms"] <= 0 || vals["elapsed_s"] <= 0 || vals["achieved_rps"] <= 0 {
				t.Errorf("figures missing: %v", vals)
			}
		})
	}
}
