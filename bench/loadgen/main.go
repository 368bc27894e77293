// Command loadgen is an open-loop, fixed-rate HTTP/1.1 load generator used by
// the benchmarks that count dropped requests while a reverse proxy moves a
// site from one backend container to another.
//
// Safety: it only ever sends traffic to this machine. The -url host must be a
// loopback address (127.0.0.0/8, ::1) or "localhost", and every socket it
// opens is checked again at connect time, so neither DNS nor a redirect can
// send traffic elsewhere (redirects are never followed).
//
// Schedule: request i is due at start + i/rate. Requests are handed to a fixed
// pool of -connections workers through a queue that holds at most one second
// of requests (rate entries). Latency is measured from the due time, so time a
// request spends waiting for a free worker is included (no coordinated
// omission). A request that finds the queue full is skipped and counted as
// dropped_by_client.
//
// Stopping: at the end of -duration, after -max-requests requests have been
// scheduled, or on SIGINT/SIGTERM. Requests already being sent are allowed to
// finish (each is bounded by -timeout); requests still queued when a signal
// arrives, or still queued -timeout after the schedule ended, are counted as
// dropped_by_client. The summary is then printed and the exit code is 0.
//
// Counting: requests = ok_2xx + non_2xx + socket_errors (dropped_by_client
// requests were never sent and are not in requests). A response whose body
// cannot be read completely is a socket error, not a status. Latency
// percentiles cover requests that got a response (2xx or not); socket errors
// are only counted. By default a request that fails on a reused keep-alive
// connection is a socket error: net/http is stopped from quietly re-sending
// it, because that would hide a connection the proxy dropped. With -retry it
// may re-send, and retried_requests says how often it did.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2

	maxRate        = 1e6 // bounds the queue allocation (8 bytes per entry)
	maxConnections = 10000
	maxErrorsKept  = 5
	userAgent      = "coop-loadgen/1"
)

type config struct {
	url         string
	host        string
	rate        float64
	duration    time.Duration
	connections int
	timeout     time.Duration
	format      string
	maxRequests int64
	selfStats   bool
	retry       bool
}

func main() {
	// Catch the signals before anything else so a caller that starts us in
	// the background and signals early still gets a summary.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// realMain parses args, runs the load and prints the summary. Cancelling ctx
// stops the run early; the summary for the work done so far is still printed.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stderr)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %s\n", oneLine(err.Error()))
		return exitUsage
	}

	sum := run(ctx, cfg, newClient(cfg))
	if cfg.selfStats {
		rss := maxRSSKB()
		sum.MaxRSSKB = &rss
	}
	if err := writeSummary(stdout, cfg.format, sum); err != nil {
		fmt.Fprintf(stderr, "loadgen: writing summary: %s\n", oneLine(err.Error()))
		return exitError
	}
	return exitOK
}

func newFlagSet(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by realMain on one line
	fs.StringVar(&c.url, "url", "", "target URL; its host must be loopback (127.0.0.0/8, ::1 or localhost)")
	fs.StringVar(&c.host, "host", "", "Host header to send (default: the URL's host)")
	fs.Float64Var(&c.rate, "rate", 1000, "requests per second (open loop, fixed schedule)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send for; 0 = until -max-requests or a signal")
	fs.IntVar(&c.connections, "connections", 64, "max keep-alive connections = max requests in flight")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "per-request timeout (connect, headers and body)")
	fs.StringVar(&c.format, "format", "kv", "output format: kv or json")
	fs.Int64Var(&c.maxRequests, "max-requests", 0, "stop after scheduling this many requests; 0 = unlimited")
	fs.BoolVar(&c.selfStats, "self-stats", false, "also report loadgen_max_rss_kb (VmHWM of this process)")
	fs.BoolVar(&c.retry, "retry", false, "let net/http silently re-send a GET that failed on a reused keep-alive\nconnection, as browsers do (default: count it as a socket error, like wrk)")
	return fs
}

func printUsage(w io.Writer) {
	var c config
	fs := newFlagSet(&c)
	fs.SetOutput(w)
	fmt.Fprintln(w, "usage: loadgen -url http://127.0.0.1:PORT/PATH [flags]")
	fs.PrintDefaults()
}

func parseConfig(args []string) (config, error) {
	var c config
	fs := newFlagSet(&c)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (all options are flags)", fs.Arg(0))
	}
	if c.url == "" {
		return c, errors.New("-url is required")
	}
	if _, err := checkTargetURL(c.url); err != nil {
		return c, err
	}
	if strings.ContainsAny(c.host, " \t\r\n/\\") {
		return c, fmt.Errorf("-host %q is not a valid Host header", c.host)
	}
	if math.IsNaN(c.rate) || c.rate <= 0 || c.rate > maxRate {
		return c, fmt.Errorf("-rate must be > 0 and <= %g, got %g", float64(maxRate), c.rate)
	}
	if c.duration < 0 {
		return c, fmt.Errorf("-duration must be >= 0, got %s", c.duration)
	}
	if c.connections < 1 || c.connections > maxConnections {
		return c, fmt.Errorf("-connections must be between 1 and %d, got %d", maxConnections, c.connections)
	}
	if c.timeout <= 0 {
		return c, fmt.Errorf("-timeout must be > 0, got %s", c.timeout)
	}
	if c.format != "kv" && c.format != "json" {
		return c, fmt.Errorf("-format must be kv or json, got %q", c.format)
	}
	if c.maxRequests < 0 {
		return c, fmt.Errorf("-max-requests must be >= 0, got %d", c.maxRequests)
	}
	return c, nil
}

// checkTargetURL parses raw and enforces the safety rule: http or https, and a
// host that is a loopback address or "localhost".
func checkTargetURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid -url: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-url must be http:// or https://, got %q", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("-url %q has no host", raw)
	}
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("refusing -url %q: host %q is not loopback (only 127.0.0.0/8, ::1 and localhost are allowed)", raw, host)
	}
	return u, nil
}

// isLoopbackHost reports whether host (without port or brackets) names this
// machine: "localhost", an IPv4 address in 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loopbackOnly is a net.Dialer Control hook: it runs after name resolution,
// just before connect(2), and refuses any non-loopback destination.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("loadgen: refusing to connect to %q: %v", address, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("loadgen: refusing to connect to non-loopback address %s", address)
	}
	return nil
}

func newClient(cfg config) *http.Client {
	dialer := &net.Dialer{
		Timeout:   cfg.timeout,
		KeepAlive: 30 * time.Second,
		Control:   loopbackOnly,
	}
	tr := &http.Transport{
		Proxy:               nil, // never route through $HTTP_PROXY
		DialContext:         dialer.DialContext,
		MaxIdleConns:        cfg.connections,
		MaxIdleConnsPerHost: cfg.connections,
		MaxConnsPerHost:     cfg.connections,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.timeout,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		// A non-nil empty map disables HTTP/2 over TLS: always HTTP/1.1.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is a non_2xx result
		},
	}
}

// ---------------------------------------------------------------------------
// Latency histogram

// The histogram stores nanoseconds in log-linear buckets: values below
// histSub are exact, and every power-of-two range above is split into
// histHalf equal buckets, so a bucket is at most 1/64 of its lower bound wide
// and its midpoint is within 1/128 (0.78%) of any value in it. Covering
// 0..60 s takes under 2000 buckets (16 KB), whatever the number of samples.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histHalf    = histSub / 2
	histMax     = uint64(60 * time.Second)
)

var histBuckets = bucketIndex(histMax) + 1

func bucketIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits
	m := v >> uint(shift) // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(m-histHalf)
}

// bucketBounds returns the half-open range [lo, hi) covered by bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i) + 1
	}
	j := i - histSub
	shift := uint(j/histHalf + 1)
	m := uint64(j%histHalf + histHalf)
	return m << shift, (m + 1) << shift
}

type histogram struct {
	counts []atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64 // exact, not clamped
}

func newHistogram() *histogram {
	return &histogram{counts: make([]atomic.Uint64, histBuckets)}
}

// Record adds one sample; safe for concurrent use.
func (h *histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	v := uint64(d)
	if v > histMax {
		v = histMax
	}
	h.counts[bucketIndex(v)].Add(1)
	h.total.Add(1)
	for {
		cur := h.max.Load()
		if int64(d) <= cur || h.max.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (h *histogram) Count() uint64      { return h.total.Load() }
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Percentile returns the value at percentile p (0 < p <= 100): the midpoint of
// the bucket holding the sample of rank ceil(p/100*n), capped at the maximum.
func (h *histogram) Percentile(p float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if cum >= rank {
			lo, hi := bucketBounds(i)
			mid := time.Duration(lo) // exact buckets hold a single value
			if hi-lo > 1 {
				mid = time.Duration((lo + hi) / 2)
			}
			if m := h.Max(); mid > m {
				return m
			}
			return mid
		}
	}
	return h.Max()
}

// ---------------------------------------------------------------------------
// Counters

type stats struct {
	hist         *histogram
	ok2xx        atomic.Int64
	non2xx       atomic.Int64
	socketErrors atomic.Int64
	timeouts     atomic.Int64
	dropped      atomic.Int64
	retried      atomic.Int64
	status       [1000]atomic.Int64 // by status code; out-of-range codes land in 0

	mu   sync.Mutex
	errs []string // first maxErrorsKept distinct messages
}

func newStats() *stats { return &stats{hist: newHistogram()} }

// localAddrRE matches the local "ip:port->" part of net.OpError messages,
// which differs per connection and would make every message distinct.
var localAddrRE = regexp.MustCompile(`(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d+->`)

func (s *stats) transportError(err error) {
	s.socketErrors.Add(1)
	if isTimeout(err) {
		s.timeouts.Add(1)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is the same for every request
	}
	msg := localAddrRE.ReplaceAllString(oneLine(err.Error()), "")
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) >= maxErrorsKept {
		return
	}
	for _, e := range s.errs {
		if e == msg {
			return
		}
	}
	s.errs = append(s.errs, msg)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ---------------------------------------------------------------------------
// Load loop

// plannedRequests is how many requests the schedule will make, or -1 when it
// only ends on cancellation.
func plannedRequests(cfg config) int64 {
	n := int64(-1)
	if cfg.duration > 0 {
		// request i is sent when i/rate < duration
		n = int64(math.Ceil(cfg.rate*cfg.duration.Seconds() - 1e-9))
	}
	if cfg.maxRequests > 0 && (n < 0 || cfg.maxRequests < n) {
		n = cfg.maxRequests
	}
	return n
}

// schedule puts the due offset (from start) of every request on jobs when it
// falls due, until the plan is done or ctx is cancelled. When jobs is full
// (rate entries = one second of backlog) the request is counted as dropped.
// It never blocks on jobs; if it wakes up late it catches up in one burst,
// keeping the original due times.
func schedule(ctx context.Context, cfg config, start time.Time, jobs chan<- time.Duration, st *stats) {
	total := plannedRequests(cfg)
	interval := float64(time.Second) / cfg.rate
	dueAt := func(i int64) time.Duration { return time.Duration(float64(i) * interval) }
	more := func(i int64) bool { return total < 0 || i < total }

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	var i int64
	for more(i) {
		if ctx.Err() != nil {
			return
		}
		now := time.Since(start)
		for more(i) {
			due := dueAt(i)
			if due > now {
				break
			}
			select {
			case jobs <- due:
			default:
				st.dropped.Add(1)
			}
			i++
		}
		if !more(i) {
			return
		}
		wait := dueAt(i) - time.Since(start)
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// run executes the load described by cfg and returns its summary. Cancelling
// ctx stops it early (see the package comment for what happens to requests
// that are queued or in flight at that point).
func run(ctx context.Context, cfg config, client *http.Client) *summary {
	st := newStats()
	backlog := int(math.Ceil(cfg.rate))
	jobs := make(chan time.Duration, backlog)
	abort := make(chan struct{})
	var abortOnce sync.Once
	stopQueued := func() { abortOnce.Do(func() { close(abort) }) }

	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < cfg.connections; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := range jobs {
				select {
				case <-abort:
					st.dropped.Add(1)
					continue
				default:
				}
				doRequest(client, cfg, start.Add(off), st)
			}
		}()
	}

	schedule(ctx, cfg, start, jobs, st)
	close(jobs)

	// Let the queue drain for at most one -timeout after the schedule ends,
	// or not at all once we have been signalled.
	done := make(chan struct{})
	go func() {
		t := time.NewTimer(cfg.timeout)
		defer t.Stop()
		select {
		case <-done:
		case <-ctx.Done():
			stopQueued()
		case <-t.C:
			stopQueued()
		}
	}()
	wg.Wait()
	close(done)

	return summarize(st, time.Since(start))
}

func doRequest(client *http.Client, cfg config, due time.Time, st *stats) {
	// Not derived from the run's context: a signal must not turn requests
	// that are already on the wire into errors. -timeout bounds them.
	reqCtx := context.Background()
	var attempts atomic.Int32
	if cfg.retry {
		// Count connections used, to tell when net/http re-sent the request.
		reqCtx = httptrace.WithClientTrace(reqCtx, &httptrace.ClientTrace{
			GotConn: func(httptrace.GotConnInfo) { attempts.Add(1) },
		})
	}
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, cfg.url, nil)
	if err != nil {
		st.transportError(err)
		return
	}
	if cfg.host != "" {
		req.Host = cfg.host
	}
	req.Header.Set("User-Agent", userAgent)
	if !cfg.retry {
		// net/http re-sends a GET on a fresh connection when a reused one
		// fails before the response starts; that would hide a connection the
		// proxy dropped. It never re-sends a request whose body it cannot
		// rewind, so give it an empty body without GetBody. The transport
		// sees that the body is empty and sends no body or length headers:
		// the request on the wire is unchanged.
		req.Body = emptyBody{}
		req.GetBody = nil
	}

	resp, err := client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body) // read it all so the connection is reused
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
	}
	latency := time.Since(due)
	if attempts.Load() > 1 {
		// net/http re-sent the request after a reused keep-alive connection
		// failed (only possible with -retry); the failure is hidden, so
		// report it.
		st.retried.Add(1)
	}
	if err != nil {
		st.transportError(err)
		return
	}
	st.hist.Record(latency)
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		st.ok2xx.Add(1)
	} else {
		st.non2xx.Add(1)
	}
	if code < 0 || code >= len(st.status) {
		code = 0
	}
	st.status[code].Add(1)
}

// emptyBody is a request body that is always at EOF.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }

// ---------------------------------------------------------------------------
// Output

type summary struct {
	Requests        int64            `json:"requests"`
	OK2xx           int64            `json:"ok_2xx"`
	Non2xx          int64            `json:"non_2xx"`
	FailedRequests  int64            `json:"failed_requests"`
	SocketErrors    int64            `json:"socket_errors"`
	Timeouts        int64            `json:"timeouts"`
	DroppedByClient int64            `json:"dropped_by_client"`
	P50Ms           float64          `json:"p50_ms"`
	P90Ms           float64          `json:"p90_ms"`
	P99Ms           float64          `json:"p99_ms"`
	MaxMs           float64          `json:"max_ms"`
	AchievedRPS     float64          `json:"achieved_rps"`
	ElapsedS        float64          `json:"elapsed_s"`
	RetriedRequests int64            `json:"retried_requests"`
	StatusCodes     map[string]int64 `json:"status_codes"`
	Errors          []string         `json:"errors"`
	MaxRSSKB        *int64           `json:"loadgen_max_rss_kb,omitempty"`
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func summarize(st *stats, elapsed time.Duration) *summary {
	s := &summary{
		OK2xx:           st.ok2xx.Load(),
		Non2xx:          st.non2xx.Load(),
		SocketErrors:    st.socketErrors.Load(),
		Timeouts:        st.timeouts.Load(),
		DroppedByClient: st.dropped.Load(),
		P50Ms:           ms(st.hist.Percentile(50)),
		P90Ms:           ms(st.hist.Percentile(90)),
		P99Ms:           ms(st.hist.Percentile(99)),
		MaxMs:           ms(st.hist.Max()),
		ElapsedS:        round(elapsed.Seconds(), 3),
		RetriedRequests: st.retried.Load(),
		StatusCodes:     map[string]int64{},
		Errors:          []string{},
	}
	s.Requests = s.OK2xx + s.Non2xx + s.SocketErrors
	s.FailedRequests = s.Non2xx + s.SocketErrors
	if elapsed > 0 {
		s.AchievedRPS = round(float64(s.Requests)/elapsed.Seconds(), 1)
	}
	for code := range st.status {
		if n := st.status[code].Load(); n > 0 {
			s.StatusCodes[strconv.Itoa(code)] = n
		}
	}
	st.mu.Lock()
	s.Errors = append(s.Errors, st.errs...)
	st.mu.Unlock()
	return s
}

// kvLines returns the kv output in its fixed order.
func (s *summary) kvLines() []string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	i := func(x int64) string { return strconv.FormatInt(x, 10) }
	lines := []string{
		"requests=" + i(s.Requests),
		"ok_2xx=" + i(s.OK2xx),
		"non_2xx=" + i(s.Non2xx),
		"failed_requests=" + i(s.FailedRequests),
		"socket_errors=" + i(s.SocketErrors),
		"timeouts=" + i(s.Timeouts),
		"dropped_by_client=" + i(s.DroppedByClient),
		"p50_ms=" + f(s.P50Ms),
		"p90_ms=" + f(s.P90Ms),
		"p99_ms=" + f(s.P99Ms),
		"max_ms=" + f(s.MaxMs),
		"achieved_rps=" + f(s.AchievedRPS),
		"elapsed_s=" + f(s.ElapsedS),
		"retried_requests=" + i(s.RetriedRequests),
	}
	if s.MaxRSSKB != nil {
		lines = append(lines, "loadgen_max_rss_kb="+i(*s.MaxRSSKB))
	}
	return lines
}

func writeSummary(w io.Writer, format string, s *summary) error {
	var out []byte
	if format == "json" {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		out = append(b, '\n')
	} else {
		out = []byte(strings.Join(s.kvLines(), "\n") + "\n")
	}
	_, err := w.Write(out) // one write, so an interrupted caller sees all or nothing
	return err
}

// maxRSSKB returns this process's peak resident set size (VmHWM) in kB, or -1
// if /proc is unavailable.
func maxRSSKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
