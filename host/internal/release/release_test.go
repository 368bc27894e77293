package release

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const digest = "127.0.0.1:5001/coop-demo@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// doc is a valid release document with some fields replaced (a nil value removes the field).
func doc(t *testing.T, change map[string]any) string {
	t.Helper()
	m := map[string]any{
		"coop": "alpha", "image": digest, "port": 8080, "healthPath": "/health",
		"domains": []string{"alpha.localhost"}, "migrate": []string{"migrate"}, "memory": "128m", "cpus": "0.5",
		"network": "coop", "retain": 2, "tls": false, "healthTimeoutSeconds": 60, "drainTimeoutSeconds": 30, "rollbackWindowSeconds": 900,
	}
	for k, v := range change {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeRelease(t *testing.T) {
	got, err := DecodeRelease(strings.NewReader(doc(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := Release{
		Coop: "alpha", Image: digest, Port: 8080, HealthPath: "/health", Domains: []string{"alpha.localhost"},
		Migrate: []string{"migrate"}, Memory: "128m", CPUs: "0.5", Network: "coop", Retain: 2, TLS: false,
		HealthTimeoutSeconds: 60, DrainTimeoutSeconds: 30, RollbackWindowSeconds: 900,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	// Optional fields may be absent; migrate may be empty.
	got, err = DecodeRelease(strings.NewReader(doc(t, map[string]any{"memory": nil, "cpus": nil, "migrate": []string{}, "rollbackWindowSeconds": nil})))
	if err != nil {
		t.Fatal(err)
	}
	if got.Memory != "" || got.CPUs != "" || got.Migrate == nil || len(got.Migrate) != 0 || got.RollbackWindowSeconds != 0 {
		t.Fatalf("optional fields: %+v", got)
	}
}

func TestDecodeReleaseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"unknown field", doc(t, map[string]any{"imagee": "x"}), `release: unknown field "imagee"`},
		{"trailing data", doc(t, nil) + ` {}`, "release: trailing data after the document"},
		{"trailing garbage", doc(t, nil) + `x`, "release: trailing data after the document"},
		{"two documents", doc(t, nil) + "\n" + doc(t, nil), "release: trailing data"},
		{"empty stdin", "  \n", "release: no document on stdin"},
		{"not an object", `[1]`, "release: must be a JSON object"},
		{"broken JSON", `{"coop":`, "release: is not valid JSON"},
		{"duplicate key", `{"coop":"a","coop":"b"}`, "release.coop: is given more than once"},
		{"missing image", doc(t, map[string]any{"image": nil}), "release.image: is required"},
		{"tag", doc(t, map[string]any{"image": "127.0.0.1:5001/coop-demo:v1"}), "release.image: must be pinned by digest"},
		{"bad id", doc(t, map[string]any{"coop": "Alpha"}), "release.coop: must be DNS-safe"},
		{"port zero", doc(t, map[string]any{"port": 0}), "release.port: must be a whole number from 1 to 65535 (got 0)"},
		{"port fraction", doc(t, map[string]any{"port": 80.5}), "release.port: must be a whole number from 1 to 65535 (got 80.5)"},
		{"port string", doc(t, map[string]any{"port": "8080"}), "release.port: must be a whole number from 1 to 65535"},
		{"health path", doc(t, map[string]any{"healthPath": "health"}), "release.healthPath: must be an absolute URL path"},
		{"no domains", doc(t, map[string]any{"domains": []string{}}), "release.domains: must hold at least 1 item(s)"},
		{"bad domain", doc(t, map[string]any{"domains": []string{"a.b", "*.a.b"}}), `release.domains[1]: must be a lower-case domain name such as coop.example.org (got "*.a.b")`},
		{"domain twice", doc(t, map[string]any{"domains": []string{"a.b", "a.b"}}), `release.domains[1]: "a.b" is given twice`},
		{"migrate not a list", doc(t, map[string]any{"migrate": "migrate"}), "release.migrate: must be a list of strings"},
		{"migrate line break", doc(t, map[string]any{"migrate": []string{"a\nb"}}), "release.migrate[0]: must be a non-empty single-line argument"},
		{"memory", doc(t, map[string]any{"memory": "128MB"}), "release.memory: must be a size such as 512m or 1g"},
		{"memory null", doc(t, map[string]any{"memory": nil}) + "", ""},
		{"cpus number", doc(t, map[string]any{"cpus": 0.5}), "release.cpus: must be a string"},
		{"network", doc(t, map[string]any{"network": "Coop"}), "release.network: must be a DNS label"},
		{"retain zero", doc(t, map[string]any{"retain": 0}), "release.retain: must be a whole number from 1 to 20 (got 0)"},
		{"tls string", doc(t, map[string]any{"tls": "false"}), "release.tls: must be true or false"},
		{"health timeout", doc(t, map[string]any{"healthTimeoutSeconds": 0}), "release.healthTimeoutSeconds: must be a whole number from 1 to 3600"},
		{"drain timeout", doc(t, map[string]any{"drainTimeoutSeconds": -1}), "release.drainTimeoutSeconds: must be a whole number from 0 to 3600"},
		{"rollback window", doc(t, map[string]any{"rollbackWindowSeconds": 86401}), "release.rollbackWindowSeconds: must be a whole number from 0 to 86400 (got 86401)"},
		{"rollback window string", doc(t, map[string]any{"rollbackWindowSeconds": "900"}), "release.rollbackWindowSeconds: must be a whole number from 0 to 86400"},
		{"null", `{"coop":null}`, "release.coop: must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRelease(strings.NewReader(tc.in))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %s", tc.in)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\ndoes not say %q", err, tc.want)
			}
		})
	}
}

func TestDecodeReleaseListsEveryProblemUnknownFirst(t *testing.T) {
	_, err := DecodeRelease(strings.NewReader(doc(t, map[string]any{"port": 0, "imag": digest, "image": nil})))
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`release: unknown field "imag"`,
		"release.image: is required",
		"release.port: must be a whole number from 1 to 65535 (got 0)",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("got %q\nwant %q", lines, want)
	}
}

func TestDecodeHost(t *testing.T) {
	in := `{"network":"coop","proxy":{"image":"` + digest + `","bindAddress":"127.0.0.1","httpPort":8080,"httpsPort":8443}}`
	h, err := DecodeHost(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Host{Network: "coop", Proxy: Proxy{Image: digest, BindAddress: "127.0.0.1", HTTPPort: 8080, HTTPSPort: 8443}}
	if h != want {
		t.Fatalf("got %+v", h)
	}

	for _, tc := range []struct{ in, want string }{
		{`{"network":"coop","proxy":{"image":"` + digest + `","bindAddress":"127.0.0.1","httpPort":8080,"httpsPort":8443,"x":1}}`, `host.proxy: unknown field "x"`},
		{`{"network":"coop","proxy":{"image":"kamal-proxy:v1","bindAddress":"127.0.0.1","httpPort":8080,"httpsPort":8443}}`, "host.proxy.image: must be pinned by digest"},
		{`{"network":"coop","proxy":{"image":"` + digest + `","bindAddress":"localhost","httpPort":8080,"httpsPort":8443}}`, "host.proxy.bindAddress: must be an IP address"},
		{`{"network":"coop","proxy":{"image":"` + digest + `","bindAddress":"0.0.0.0","httpPort":80,"httpsPort":80}}`, "host.proxy.httpsPort: must differ from httpPort"},
		{`{"network":"coop","proxy":[]}`, "host.proxy: must be a JSON object"},
		{`{"network":"coop"}`, "host.proxy: is required"},
		{`{"network":"coop","proxy":{}, "extra":true}`, `host: unknown field "extra"`},
	} {
		_, err := DecodeHost(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeHost(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func backupSection(change map[string]any) map[string]any {
	store := map[string]any{"endpoint": "http://127.0.0.1:7070", "region": "us-east-1", "bucket": "coop-local-backups", "prefix": "local", "accessKeyId": "AK", "secretAccessKey": "sekrit-sentinel"}
	b := map[string]any{"image": digest, "keep": 7, "database": "postgresql://coop_alpha:pw-sentinel@172.17.0.1:5433/coop_alpha", "store": store}
	for k, v := range change {
		if strings.HasPrefix(k, "store.") {
			store[strings.TrimPrefix(k, "store.")] = v
		} else if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

func TestDecodeBackup(t *testing.T) {
	rel, err := DecodeRelease(strings.NewReader(doc(t, map[string]any{"backup": backupSection(nil)})))
	if err != nil {
		t.Fatal(err)
	}
	want := &Backup{Image: digest, Keep: 7, Database: "postgresql://coop_alpha:pw-sentinel@172.17.0.1:5433/coop_alpha",
		Store: Store{Endpoint: "http://127.0.0.1:7070", Region: "us-east-1", Bucket: "coop-local-backups", Prefix: "local", AccessKeyID: "AK", SecretAccessKey: "sekrit-sentinel"}}
	if !reflect.DeepEqual(rel.Backup, want) {
		t.Fatalf("got %+v", rel.Backup)
	}
	d, _ := ParseDatabaseURL(rel.Backup.Database)
	if got := strings.Join(d.Env(), " "); got != "PGHOST=172.17.0.1 PGPORT=5433 PGUSER=coop_alpha PGPASSWORD=pw-sentinel PGDATABASE=coop_alpha" {
		t.Fatalf("env: %s", got)
	}
	if rel, _ := DecodeRelease(strings.NewReader(doc(t, nil))); rel.Backup != nil {
		t.Fatal("no backup section, yet a backup")
	}
	for _, c := range []struct {
		change map[string]any
		want   string
	}{
		{map[string]any{"keep": 0}, "release.backup.keep: must be a whole number from 1 to 100"},
		{map[string]any{"database": "mysql://u:pw-sentinel@h/db"}, "release.backup.database: must be a postgresql://"},
		{map[string]any{"database": "postgresql://u:pw-sentinel@h/"}, "release.backup.database: names no database"},
		{map[string]any{"store.endpoint": "ftp://x"}, "release.backup.store.endpoint: must be an http:// or https:// URL"},
		{map[string]any{"store.bucket": "A"}, "release.backup.store.bucket: must be a bucket name"},
		{map[string]any{"store.prefix": "/x"}, "release.backup.store.prefix: must be empty or path segments"},
		{map[string]any{"store.secretAccessKey": "a\nsekrit-sentinel"}, "release.backup.store.secretAccessKey: must be a non-empty single line"},
		{map[string]any{"store.extra": 1}, `release.backup.store: unknown field "extra"`},
		{map[string]any{"image": "x:latest"}, "release.backup.image: "},
	} {
		_, err := DecodeRelease(strings.NewReader(doc(t, map[string]any{"backup": backupSection(c.change)})))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.change, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "sentinel") {
			t.Errorf("%v: the error shows a secret: %v", c.change, err)
		}
	}
}
