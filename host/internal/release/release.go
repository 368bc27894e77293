// Package release holds the documents the agent is given as data on stdin: the release of a
// co-op (deploy) and the host's shape (host-up, host-down). Both are decoded strictly: unknown
// or repeated fields, trailing data, a missing required field and every invalid value are
// refused, each with its path (release.image: must be pinned by digest ...).
package release

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"coop/host/internal/rules"
)

// Limits of the release document's numbers, the same as the stack config's.
const (
	MaxRetain             = 20
	MaxHealthTimeout      = 3600
	MaxDrainTimeout       = 3600
	MaxRollbackWindow     = 86400
	MinPort, MaxPort      = 1, 65535
	maxDomains, maxArgLen = 100, 4096
)

// Release is one co-op's release on a host: what it runs and how it is switched to.
//
// JSON: {"coop":"alpha","image":"REPO@sha256:<64 hex>","port":8080,"healthPath":"/health",
// "domains":["alpha.example.org"],"migrate":["migrate"],"memory":"128m","cpus":"0.5",
// "network":"coop","retain":2,"tls":false,"healthTimeoutSeconds":60,"drainTimeoutSeconds":30,
// "rollbackWindowSeconds":900}
// memory, cpus and rollbackWindowSeconds are optional; every other field is required.
type Release struct {
	// Coop is the co-op's id; it names the containers, the volume and the proxy service.
	Coop string `json:"coop"`
	// Image is the image to run, pinned by digest.
	Image string `json:"image"`
	// Port is the port the app listens on inside its container.
	Port int `json:"port"`
	// HealthPath is polled by the proxy on the new slot before it switches.
	HealthPath string `json:"healthPath"`
	// Domains the proxy routes to the co-op.
	Domains []string `json:"domains"`
	// Migrate is the argv run in a one-off container of the new image before it serves; empty: none.
	Migrate []string `json:"migrate"`
	// Memory is the container's memory limit (512m, 1g); empty: none.
	Memory string `json:"memory,omitempty"`
	// CPUs is the container's CPU limit (0.5, 2); empty: none.
	CPUs string `json:"cpus,omitempty"`
	// Network is the Docker network the proxy and the co-ops share.
	Network string `json:"network"`
	// Retain is how many previous releases' images are kept for rollback.
	Retain int `json:"retain"`
	// TLS asks the proxy for a certificate for the domains.
	TLS bool `json:"tls"`
	// HealthTimeoutSeconds is how long the new slot has to become healthy.
	HealthTimeoutSeconds int `json:"healthTimeoutSeconds"`
	// DrainTimeoutSeconds is how long in-flight requests get on the old slot.
	DrainTimeoutSeconds int `json:"drainTimeoutSeconds"`
	// RollbackWindowSeconds is how long the previous release keeps running, idle, after the
	// switch, so that a rollback inside the window is a proxy switch alone; 0 (or absent): it
	// is stopped as soon as it has drained.
	RollbackWindowSeconds int `json:"rollbackWindowSeconds,omitempty"`
	// Backup: when set and the release runs migrations, a dump of the co-op's database is taken
	// and stored off the host first. It holds secrets: never saved on the host, never printed.
	Backup *Backup `json:"backup,omitempty"`
}

// Backup is where and how a co-op's database is dumped before migrations.
//
// JSON: {"image":"REPO@sha256:<64 hex>","keep":7,"database":"postgresql://USER:PASSWORD@HOST:PORT/NAME",
// "store":{"endpoint":"https://ams3.digitaloceanspaces.com","region":"ams3","bucket":"coop-dev-backups",
// "prefix":"dev","accessKeyId":"...","secretAccessKey":"..."}}
type Backup struct {
	// Image holds pg_dump and pg_restore (coop-pgtools), pinned by digest.
	Image string `json:"image"`
	// Keep is how many backups of the co-op the store keeps (the oldest beyond go).
	Keep int `json:"keep"`
	// Database is the co-op's database URL (a secret): a direct connection, not a pool.
	Database string `json:"database"`
	// Store is the S3-compatible bucket the dumps go to.
	Store Store `json:"store"`
}

// Store is an S3-compatible bucket (DigitalOcean Spaces; versitygw on the local stack).
type Store struct {
	Endpoint        string `json:"endpoint"`
	Region          string `json:"region"`
	Bucket          string `json:"bucket"`
	Prefix          string `json:"prefix"`
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// MaxKeep bounds Backup.Keep (the stack config's limit).
const MaxKeep = 100

// Host is the host's shape: its network and its proxy.
//
// JSON: {"network":"coop","proxy":{"image":"REPO@sha256:<64 hex>","bindAddress":"127.0.0.1",
// "httpPort":8080,"httpsPort":8443}}; every field is required.
type Host struct {
	// Network is the Docker network the proxy and the co-ops share.
	Network string `json:"network"`
	// Proxy is the reverse proxy in front of the co-ops.
	Proxy Proxy `json:"proxy"`
}

// Proxy is kamal-proxy as the host runs it.
type Proxy struct {
	// Image is the kamal-proxy image, pinned by digest.
	Image string `json:"image"`
	// BindAddress is the host address its ports are published on.
	BindAddress string `json:"bindAddress"`
	// HTTPPort is the host port for HTTP (the container's 80).
	HTTPPort int `json:"httpPort"`
	// HTTPSPort is the host port for HTTPS (the container's 443).
	HTTPSPort int `json:"httpsPort"`
}

func singleLine(s string) bool {
	return s != "" && len(s) <= maxArgLen && !strings.ContainsAny(s, "\r\n\x00")
}

// DecodeRelease reads a release document from r.
func DecodeRelease(r io.Reader) (Release, error) {
	o, err := readDocument(r, "release")
	if err != nil {
		return Release{}, err
	}
	var rel Release
	rel.Coop, _ = o.string("coop", true, rules.CoopID, rules.CoopIDHint)
	rel.Image, _ = o.string("image", true, rules.ImageDigest, rules.ImageDigestHint)
	rel.Port, _ = o.integer("port", MinPort, MaxPort)
	rel.HealthPath, _ = o.string("healthPath", true, rules.HealthPath, rules.HealthPathHint)
	if domains, ok := o.strings("domains", 1, rules.Domain, rules.DomainHint); ok {
		if len(domains) > maxDomains {
			o.fail("domains", "holds %d domains; at most %d", len(domains), maxDomains)
		}
		for i, d := range domains {
			for _, e := range domains[:i] {
				if d == e {
					o.fail(fmt.Sprintf("domains[%d]", i), "%q is given twice", d)
				}
			}
		}
		rel.Domains = domains
	}
	rel.Migrate, _ = o.strings("migrate", 0, singleLine, "must be a non-empty single-line argument")
	rel.Memory, _ = o.string("memory", false, rules.Memory, rules.MemoryHint)
	rel.CPUs, _ = o.string("cpus", false, rules.CPUs, rules.CPUsHint)
	rel.Network, _ = o.string("network", true, rules.DNSLabel, rules.DNSLabelHint)
	rel.Retain, _ = o.integer("retain", 1, MaxRetain)
	rel.TLS, _ = o.boolean("tls")
	rel.HealthTimeoutSeconds, _ = o.integer("healthTimeoutSeconds", 1, MaxHealthTimeout)
	rel.DrainTimeoutSeconds, _ = o.integer("drainTimeoutSeconds", 0, MaxDrainTimeout)
	rel.RollbackWindowSeconds, _ = o.optionalInteger("rollbackWindowSeconds", 0, MaxRollbackWindow)
	if _, present := o.members["backup"]; present {
		if b, ok := o.child("backup"); ok {
			rel.Backup = decodeBackup(b)
			o.merge(b)
		}
	}
	if err := o.finish(); err != nil {
		return Release{}, err
	}
	if rel.Migrate == nil {
		rel.Migrate = []string{}
	}
	return rel, nil
}

// DecodeHost reads a host document from r.
func DecodeHost(r io.Reader) (Host, error) {
	o, err := readDocument(r, "host")
	if err != nil {
		return Host{}, err
	}
	var h Host
	h.Network, _ = o.string("network", true, rules.DNSLabel, rules.DNSLabelHint)
	if p, ok := o.child("proxy"); ok {
		h.Proxy.Image, _ = p.string("image", true, rules.ImageDigest, rules.ImageDigestHint)
		h.Proxy.BindAddress, _ = p.string("bindAddress", true, rules.IPAddress, rules.IPAddressHint)
		h.Proxy.HTTPPort, _ = p.integer("httpPort", MinPort, MaxPort)
		h.Proxy.HTTPSPort, _ = p.integer("httpsPort", MinPort, MaxPort)
		o.merge(p)
	}
	if err := o.finish(); err != nil {
		return Host{}, err
	}
	if h.Proxy.HTTPPort == h.Proxy.HTTPSPort {
		return Host{}, &FieldError{"host.proxy.httpsPort", fmt.Sprintf("must differ from httpPort (both %d)", h.Proxy.HTTPPort)}
	}
	return h, nil
}

// decodeBackup reads the backup section; secret values are never quoted in an error.
func decodeBackup(b *object) *Backup {
	var out Backup
	out.Image, _ = b.string("image", true, rules.ImageDigest, rules.ImageDigestHint)
	out.Keep, _ = b.integer("keep", 1, MaxKeep)
	if v, ok := b.string("database", true, nil, ""); ok {
		if _, err := ParseDatabaseURL(v); err != nil {
			b.fail("database", "%v", err)
		}
		out.Database = v
	}
	if s, ok := b.child("store"); ok {
		out.Store.Endpoint, _ = s.string("endpoint", true, isHTTPURL, "must be an http:// or https:// URL with a host and no path, query or credentials")
		out.Store.Region, _ = s.string("region", true, rules.DNSLabel, rules.DNSLabelHint)
		out.Store.Bucket, _ = s.string("bucket", true, isBucket, "must be a bucket name: 3 to 63 lower-case letters, digits, '-' and '.'")
		out.Store.Prefix, _ = s.string("prefix", true, isPrefix, "must be empty or path segments of letters, digits, '-', '_' and '.' joined by '/' (no leading or trailing '/')")
		out.Store.AccessKeyID, _ = s.string("accessKeyId", true, nil, "")
		if out.Store.AccessKeyID == "" || !singleLine(out.Store.AccessKeyID) {
			s.fail("accessKeyId", "must be a non-empty single line")
		}
		out.Store.SecretAccessKey, _ = s.string("secretAccessKey", true, nil, "")
		if out.Store.SecretAccessKey == "" || !singleLine(out.Store.SecretAccessKey) {
			s.fail("secretAccessKey", "must be a non-empty single line (its value is not shown)")
		}
		b.merge(s)
	}
	return &out
}

// DatabaseURL is a postgres:// URL taken apart, as libpq's PG* variables name its parts.
type DatabaseURL struct {
	Host, Port, User, Password, Name, SSLMode string
}

// Env is the URL as libpq's environment (PGHOST, ...): how pg_dump and pg_restore are given it,
// so that no part of it is an argument.
func (d DatabaseURL) Env() []string {
	env := []string{"PGHOST=" + d.Host, "PGPORT=" + d.Port, "PGUSER=" + d.User, "PGPASSWORD=" + d.Password, "PGDATABASE=" + d.Name}
	if d.SSLMode != "" {
		env = append(env, "PGSSLMODE="+d.SSLMode)
	}
	return env
}

// ParseDatabaseURL reads postgres[ql]://USER:PASSWORD@HOST[:PORT]/NAME[?sslmode=MODE]. Its
// errors never quote the URL (it holds a password).
func ParseDatabaseURL(s string) (DatabaseURL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return DatabaseURL{}, errors.New("must be a postgresql://USER:PASSWORD@HOST[:PORT]/NAME URL (its value is not shown)")
	}
	d := DatabaseURL{Host: u.Hostname(), Port: u.Port(), User: u.User.Username(), Name: strings.TrimPrefix(u.Path, "/"), SSLMode: u.Query().Get("sslmode")}
	d.Password, _ = u.User.Password()
	if d.Port == "" {
		d.Port = "5432"
	}
	switch {
	case d.Host == "":
		return d, errors.New("names no host (a postgresql://USER:PASSWORD@HOST[:PORT]/NAME URL is expected; its value is not shown)")
	case d.User == "":
		return d, errors.New("names no user (a postgresql://USER:PASSWORD@HOST[:PORT]/NAME URL is expected; its value is not shown)")
	case d.Name == "" || strings.Contains(d.Name, "/"):
		return d, errors.New("names no database (a postgresql://USER:PASSWORD@HOST[:PORT]/NAME URL is expected; its value is not shown)")
	}
	for _, v := range []string{d.Host, d.Port, d.User, d.Password, d.Name, d.SSLMode} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return d, errors.New("holds a line break or NUL (its value is not shown)")
		}
	}
	return d, nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && (u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == ""
}

var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func isBucket(s string) bool { return bucketPattern.MatchString(s) }

var prefixPattern = regexp.MustCompile(`^([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?$`)

func isPrefix(s string) bool {
	return prefixPattern.MatchString(s) && !strings.Contains("/"+s+"/", "/../") && !strings.Contains("/"+s+"/", "/./")
}

// DecodeBackup reads a backup section alone (the document of `backups` and `restore`), its
// errors by path (backup.store.bucket: ...).
func DecodeBackup(r io.Reader) (Backup, error) {
	o, err := readDocument(r, "backup")
	if err != nil {
		return Backup{}, err
	}
	b := decodeBackup(o)
	if err := o.finish(); err != nil {
		return Backup{}, err
	}
	return *b, nil
}
