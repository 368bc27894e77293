package objstore

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// server starts a real S3-compatible server (versitygw, which scripts/setup.sh installs) on a
// loopback port with a posix root in a temp dir; its keys reach it through its environment.
func server(t *testing.T) *Store {
	t.Helper()
	bin := os.Getenv("COOP_VERSITYGW")
	if bin == "" {
		bin, _ = exec.LookPath("versitygw")
	}
	if bin == "" {
		// Where scripts/toolchain.sh puts it (scripts/env.sh adds that to PATH; npm test may not).
		cache := os.Getenv("COOP_TOOLCHAIN_CACHE")
		if cache == "" {
			if home, err := os.UserHomeDir(); err == nil {
				cache = filepath.Join(home, ".cache", "coop-toolchain")
			}
		}
		if found, _ := filepath.Glob(filepath.Join(cache, "bin-pulumi-*", "versitygw")); len(found) > 0 {
			bin = found[len(found)-1]
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" || os.Getenv("COOP_REQUIRE_S3") != "" {
			t.Fatal("versitygw is not installed (scripts/setup.sh installs it)")
		}
		t.Skip("versitygw is not installed: run scripts/setup.sh (or set COOP_VERSITYGW)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	root, meta := t.TempDir(), t.TempDir()
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", "--sidecar", meta, root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID=testaccess", "ROOT_SECRET_ACCESS_KEY=test-secret-key-0123456789")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s: %s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := &Store{Endpoint: "http://" + addr, Region: "us-east-1", Bucket: "backups", AccessKeyID: "testaccess", SecretAccessKey: "test-secret-key-0123456789"}
	if err := s.CreateBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAgainstARealServer(t *testing.T) {
	s := server(t)
	ctx := context.Background()
	if err := s.CreateBucket(ctx); err != nil {
		t.Fatalf("a second CreateBucket: %v", err)
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB
	file := filepath.Join(t.TempDir(), "dump")
	if err := os.WriteFile(file, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(ctx, "alpha/20261201T100000Z.dump", file, map[string]string{"Coop-Before": "app@sha256:aa", "coop-live": "app@sha256:bb"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "alpha/20261201T110000Z.dump", []byte("second"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "beta/x y+z.dump", []byte("beta's"), nil); err != nil {
		t.Fatal(err)
	}

	var got bytes.Buffer
	if err := s.Get(ctx, "alpha/20261201T100000Z.dump", &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), big) {
		t.Fatalf("got %d bytes back, want %d", got.Len(), len(big))
	}
	got.Reset()
	if err := s.Get(ctx, "beta/x y+z.dump", &got); err != nil || got.String() != "beta's" {
		t.Fatalf("a key with a space and a plus: %q, %v", got.String(), err)
	}
	meta, err := s.Head(ctx, "alpha/20261201T100000Z.dump")
	if err != nil {
		t.Fatal(err)
	}
	if meta["coop-before"] != "app@sha256:aa" || meta["coop-live"] != "app@sha256:bb" {
		t.Fatalf("metadata: %v", meta)
	}

	list, err := s.List(ctx, "alpha/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range list {
		keys = append(keys, fmt.Sprintf("%s:%d", o.Key, o.Size))
	}
	if strings.Join(keys, ",") != "alpha/20261201T100000Z.dump:3200000,alpha/20261201T110000Z.dump:6" {
		t.Fatalf("list: %v", keys)
	}

	if err := s.Delete(ctx, "alpha/20261201T100000Z.dump"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(ctx, "alpha/20261201T100000Z.dump"); !NotFound(err) {
		t.Fatalf("after delete, head: %v", err)
	}
	if err := s.Get(ctx, "alpha/none", &got); !NotFound(err) {
		t.Fatalf("get of a missing key: %v", err)
	}
	if list, _ := s.List(ctx, "alpha/"); len(list) != 1 {
		t.Fatalf("after delete: %v", list)
	}
}

func TestAWrongKeyIsRefused(t *testing.T) {
	s := server(t)
	bad := *s
	bad.SecretAccessKey = "not-the-secret"
	err := bad.Put(context.Background(), "alpha/x", []byte("x"), nil)
	var e *Error
	if err == nil || !asError(err, &e) || e.Status != http.StatusForbidden {
		t.Fatalf("a wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), s.SecretAccessKey) {
		t.Fatalf("the error names a secret: %v", err)
	}
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}

// The signature of AWS's own documented example (GET /test.txt with a Range header is not
// signed here; this is the listing example of the S3 SigV4 documentation, whose signature is
// published): the canonical request is built as the spec says.
func TestSignatureOfThePublishedExample(t *testing.T) {
	s := &Store{
		Endpoint: "https://examplebucket.s3.amazonaws.com", Region: "us-east-1", Bucket: "",
		AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		Now: func() time.Time { return time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC) },
	}
	req, _ := http.NewRequest("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", nil)
	req.URL.RawQuery = "max-keys=2&prefix=J"
	s.sign(req, emptySHA256)
	want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
