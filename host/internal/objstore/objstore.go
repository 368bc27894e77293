// Package objstore is a small client of the S3 API (DigitalOcean Spaces, or any S3-compatible
// server): put, get, head, list and delete objects of one bucket, each request signed with AWS
// Signature Version 4 (path-style addressing, the payload's SHA-256 signed). It is what the agent
// needs to keep a co-op's database backups off the host, and nothing more.
//
// The secret key never leaves this process: it only keys the HMAC of each request.
package objstore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// Store is a bucket on an S3-compatible server.
type Store struct {
	// Endpoint is the server's base URL (https://ams3.digitaloceanspaces.com, http://127.0.0.1:7070).
	Endpoint string
	// Region names the signing scope (Spaces: the datacenter, ams3; any other name for a server
	// that ignores it).
	Region string
	Bucket string
	// AccessKeyID and SecretAccessKey are the key pair the requests are signed with.
	AccessKeyID     string
	SecretAccessKey string
	// HTTP is the client used; nil: one with a 5-minute timeout per request.
	HTTP *http.Client
	// Now is the clock (tests replace it); nil: time.Now.
	Now func() time.Time
}

// Object is an entry of a listing.
type Object struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// Error is a request the server refused: its status and the S3 error code and message.
type Error struct {
	Op, Key string
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Op, e.Key, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// NotFound: the object (or the bucket) does not exist.
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// PutFile uploads the file at path as key, with metadata (x-amz-meta-NAME: value).
func (s *Store) PutFile(ctx context.Context, key, path string, meta map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	headers := map[string]string{}
	for k, v := range meta {
		headers["x-amz-meta-"+strings.ToLower(k)] = v
	}
	resp, err := s.do(ctx, "PUT", key, nil, headers, io.NopCloser(f), size, hex.EncodeToString(h.Sum(nil)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return check(resp, "put", key)
}

// Put uploads data as key.
func (s *Store) Put(ctx context.Context, key string, data []byte, meta map[string]string) error {
	headers := map[string]string{}
	for k, v := range meta {
		headers["x-amz-meta-"+strings.ToLower(k)] = v
	}
	sum := sha256.Sum256(data)
	resp, err := s.do(ctx, "PUT", key, nil, headers, io.NopCloser(bytes.NewReader(data)), int64(len(data)), hex.EncodeToString(sum[:]))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return check(resp, "put", key)
}

// Get writes the object's content to w.
func (s *Store) Get(ctx context.Context, key string, w io.Writer) error {
	resp, err := s.do(ctx, "GET", key, nil, nil, nil, 0, emptySHA256)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := check(resp, "get", key); err != nil {
		return err
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// Head returns the object's metadata (names lower-case, without x-amz-meta-).
func (s *Store) Head(ctx context.Context, key string) (map[string]string, error) {
	resp, err := s.do(ctx, "HEAD", key, nil, nil, nil, 0, emptySHA256)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := check(resp, "head", key); err != nil {
		return nil, err
	}
	meta := map[string]string{}
	for k, v := range resp.Header {
		if name, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-meta-"); ok && len(v) > 0 {
			meta[name] = v[0]
		}
	}
	return meta, nil
}

// CreateBucket makes the bucket (the local stack's store and the tests; the program makes the
// cloud stacks' Spaces bucket). A bucket that is already this key's is no error.
func (s *Store) CreateBucket(ctx context.Context) error {
	resp, err := s.do(ctx, "PUT", "", nil, nil, nil, 0, emptySHA256)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = check(resp, "create bucket", s.Bucket)
	var e *Error
	if errors.As(err, &e) && e.Code == "BucketAlreadyOwnedByYou" {
		return nil
	}
	return err
}

// Delete removes the object (an object that is not there is no error, as S3 has it).
func (s *Store) Delete(ctx context.Context, key string) error {
	resp, err := s.do(ctx, "DELETE", key, nil, nil, nil, 0, emptySHA256)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return check(resp, "delete", key)
}

// List returns every object whose key starts with prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := s.do(ctx, "GET", "", q, nil, nil, 0, emptySHA256)
		if err != nil {
			return nil, err
		}
		if err := check(resp, "list", prefix); err != nil {
			resp.Body.Close()
			return nil, err
		}
		var page struct {
			Contents []struct {
				Key          string
				Size         int64
				LastModified time.Time
			}
			IsTruncated           bool
			NextContinuationToken string
		}
		err = xml.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("list %s: the server's answer: %w", prefix, err)
		}
		for _, c := range page.Contents {
			out = append(out, Object{Key: c.Key, Size: c.Size, LastModified: c.LastModified})
		}
		if !page.IsTruncated || page.NextContinuationToken == "" {
			break
		}
		token = page.NextContinuationToken
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// do sends one signed request for key (none: the bucket itself).
func (s *Store) do(ctx context.Context, method, key string, query url.Values, headers map[string]string, body io.ReadCloser, size int64, payloadSHA256 string) (*http.Response, error) {
	base, err := url.Parse(s.Endpoint)
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("object store endpoint %q is not an http(s) URL", s.Endpoint)
	}
	path := "/" + s.Bucket
	if key != "" {
		path += "/" + key
	}
	u := *base
	u.Path = path
	u.RawPath = encodePath(path)
	u.RawQuery = canonicalQuery(query)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Body = body
		req.ContentLength = size
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	s.sign(req, payloadSHA256)
	client := s.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL holds no secret; the error names it as the client does.
		return nil, err
	}
	return resp, nil
}

// sign adds the SigV4 headers: x-amz-date, x-amz-content-sha256 and Authorization.
func (s *Store) sign(req *http.Request, payloadSHA256 string) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now().UTC()
	amzDate := t.Format("20060102T150405Z")
	day := t.Format("20060102")
	req.Header.Set("x-amz-date", amzDate)
	req.Header.Set("x-amz-content-sha256", payloadSHA256)

	// Signed: host and every x-amz-* header.
	signed := map[string]string{"host": req.URL.Host}
	for k, v := range req.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") {
			signed[lk] = strings.Join(v, ",")
		}
	}
	names := make([]string, 0, len(signed))
	for k := range signed {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, k := range names {
		canonHeaders.WriteString(k + ":" + strings.TrimSpace(signed[k]) + "\n")
	}
	signedHeaders := strings.Join(names, ";")
	canonical := strings.Join([]string{
		req.Method,
		req.URL.EscapedPath(),
		req.URL.RawQuery,
		canonHeaders.String(),
		signedHeaders,
		payloadSHA256,
	}, "\n")
	scope := day + "/" + s.Region + "/s3/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+s.SecretAccessKey), day)
	key = hmacSHA256(key, s.Region)
	key = hmacSHA256(key, "s3")
	key = hmacSHA256(key, "aws4_request")
	sig := hex.EncodeToString(hmacSHA256(key, toSign))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.AccessKeyID+"/"+scope+", SignedHeaders="+signedHeaders+", Signature="+sig)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// uriEncode is SigV4's encoding: every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper case); '/'
// kept when keepSlash.
func uriEncode(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func encodePath(p string) string { return uriEncode(p, true) }

// canonicalQuery is the query sorted by name, names and values encoded; also what is sent.
func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, uriEncode(k, false)+"="+uriEncode(v, false))
		}
	}
	return strings.Join(parts, "&")
}

// check turns a refusal into an Error with the server's code and message.
func check(resp *http.Response, op, key string) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	e := &Error{Op: op, Key: key, Status: resp.StatusCode}
	var body struct {
		Code    string
		Message string
	}
	if b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); err == nil && len(b) > 0 && xml.Unmarshal(b, &body) == nil {
		e.Code, e.Message = body.Code, body.Message
	}
	return e
}
