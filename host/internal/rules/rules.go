// Package rules holds the value rules the agent shares with the TypeScript program
// (components/rules.ts): image digests, co-op ids, environment variable names, SSH public keys
// and domains. test/rules/cases.json is one table of accepted and refused values that the tests
// of both languages run, so a rule that drifts in one language fails there.
//
// Each rule is a predicate plus the hint an error message shows after the field's path.
package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

const (
	// pathComponent is one path component of an image name: lower-case alphanumerics joined
	// by '.', '_', '__' or runs of '-'.
	pathComponent = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	// registry is a registry host (letters may be upper case) or an IPv4 address, with an
	// optional port.
	registry = `(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?`
	tag      = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
	name     = `(?:(?:` + registry + `)/)?` + pathComponent + `(?:/` + pathComponent + `)*`
)

var (
	imageDigestRE = regexp.MustCompile(`^` + name + `(?::` + tag + `)?@sha256:[a-f0-9]{64}$`)
	coopIDRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	dnsLabelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	healthPathRE  = regexp.MustCompile(`^/[A-Za-z0-9._~\-/?=&%]*$`)
	memoryRE      = regexp.MustCompile(`^[0-9]+[bkmg]$`)
	cpusRE        = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	// The comment is printable: cloud-init's YAML refuses a control character in it.
	sshKeyLineRE = regexp.MustCompile(`^(\S+) ([A-Za-z0-9+/]+={0,2})(?: [^\p{Cc}]*)?$`)
)

// Hints: what an error message says after the field's path.
const (
	ImageDigestHint = "must be pinned by digest: REPOSITORY@sha256:<64 hex digits>"
	CoopIDHint      = "must be DNS-safe: lower-case letters, digits and '-', at most 32 characters"
	DNSLabelHint    = "must be a DNS label (lower-case letters, digits, '-')"
	EnvNameHint     = "is not a valid environment variable name (a letter or '_', then letters, digits and '_')"
	DomainHint      = "must be a lower-case domain name such as coop.example.org"
	HealthPathHint  = "must be an absolute URL path such as /health"
	MemoryHint      = "must be a size such as 512m or 1g"
	CPUsHint        = "must be a number of CPUs such as 0.5 or 2"
	IPAddressHint   = "must be an IP address such as 127.0.0.1 or 0.0.0.0"
)

// ImageNameLengthMax is the longest image name Docker takes (distribution/reference's NameTotalLengthMax).
const ImageNameLengthMax = 255

// ImageDigest: an image pinned by digest, [REGISTRY[:PORT]/]PATH[:TAG]@sha256:<64 lower-case hex>.
func ImageDigest(value string) bool {
	if !imageDigestRE.MatchString(value) {
		return false
	}
	// The registry part may carry upper case; the repository path may not.
	n := value[:strings.IndexByte(value, '@')]
	// Docker's limit on a name (registry and path, without the tag).
	name := n
	if colon := strings.LastIndexByte(n, ':'); colon > strings.LastIndexByte(n, '/') {
		name = n[:colon]
	}
	if len(name) > ImageNameLengthMax {
		return false
	}
	path := n
	if first, rest, ok := strings.Cut(n, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		// A registry's port, when it names one, is a TCP port: 1 to 65535.
		if colon := strings.LastIndexByte(first, ':'); colon >= 0 {
			if port, err := strconv.Atoi(first[colon+1:]); err != nil || port < 1 || port > 65535 {
				return false
			}
		}
		path = rest
	}
	return path == strings.ToLower(path)
}

// CoopID: a co-op id, which names its containers, volume and proxy service.
func CoopID(value string) bool {
	return coopIDRE.MatchString(value)
}

// DNSLabel: one DNS label, as the Docker network's name is.
func DNSLabel(value string) bool {
	return dnsLabelRE.MatchString(value)
}

// EnvName: an environment variable name. __proto__ is refused because the TypeScript side
// cannot hold it as an object key; refusing it here too keeps the two sides one rule.
func EnvName(value string) bool {
	return envNameRE.MatchString(value) && value != "__proto__"
}

// Domain: a lower-case host name of two labels or more, no wildcard, no trailing dot.
func Domain(value string) bool {
	if len(value) > 253 {
		return false
	}
	labels := strings.Split(value, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// HealthPath: the absolute URL path the proxy polls before it switches.
func HealthPath(value string) bool {
	return healthPathRE.MatchString(value)
}

// Memory: a memory limit as the stack config writes it (a number and b, k, m or g).
func Memory(value string) bool {
	return memoryRE.MatchString(value)
}

// CPUs: a CPU limit as the stack config writes it (a decimal number).
func CPUs(value string) bool {
	return cpusRE.MatchString(value)
}

// IPAddress: an IPv4 or IPv6 address, as the proxy's ports bind to.
func IPAddress(value string) bool {
	_, err := netip.ParseAddr(value)
	return err == nil && !strings.Contains(value, "%")
}

// SSH public keys.

// SSHKeyTypes are the key types accepted for host keys and the deploy key.
var SSHKeyTypes = []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"}

// MinRSABits: shorter RSA keys are refused (OpenSSH and DigitalOcean consider them weak).
const MinRSABits = 2048

var ecdsaPointBytes = map[string]int{"nistp256": 65, "nistp384": 97, "nistp521": 133}

// wire reads SSH wire-format strings (uint32 length, then bytes) from a key blob.
type wire struct{ b []byte }

func (w *wire) next() ([]byte, bool) {
	if len(w.b) < 4 {
		return nil, false
	}
	n := binary.BigEndian.Uint32(w.b)
	if uint64(n) > uint64(len(w.b)-4) {
		return nil, false
	}
	s := w.b[4 : 4+n]
	w.b = w.b[4+n:]
	return s, true
}

func (w *wire) done() bool { return len(w.b) == 0 }

// SSHPublicKeyProblem checks an OpenSSH public key line (TYPE BASE64 [COMMENT]): the base64
// must decode to a well-formed key of TYPE. It returns the problem, or "" for a good key.
func SSHPublicKeyProblem(line string) string {
	if strings.ContainsAny(line, "\r\n\x00") {
		return "must be one line"
	}
	m := sshKeyLineRE.FindStringSubmatch(line)
	if m == nil {
		return `must be "TYPE BASE64 [COMMENT]"`
	}
	typ, b64 := m[1], m[2]
	known := false
	for _, t := range SSHKeyTypes {
		known = known || t == typ
	}
	if !known {
		return fmt.Sprintf("type %q is not one of %s", typ, strings.Join(SSHKeyTypes, ", "))
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || base64.StdEncoding.EncodeToString(blob) != b64 {
		return "the key's base64 is malformed"
	}
	r := &wire{b: blob}
	if inner, ok := r.next(); !ok || string(inner) != typ {
		return fmt.Sprintf("the key's data is not a %s key", typ)
	}
	switch {
	case typ == "ssh-ed25519":
		if pk, ok := r.next(); ok && len(pk) == 32 && r.done() {
			return ""
		}
		return "the key's data is not a complete ed25519 key"
	case strings.HasPrefix(typ, "ecdsa-sha2-"):
		curve, ok1 := r.next()
		point, ok2 := r.next()
		want, known := ecdsaPointBytes[string(curve)]
		if ok1 && ok2 && known && string(curve) == strings.TrimPrefix(typ, "ecdsa-sha2-") && len(point) == want && point[0] == 4 && r.done() {
			return ""
		}
		return "the key's data is not a complete ECDSA key of its curve"
	default: // ssh-rsa
		_, ok1 := r.next()
		n, ok2 := r.next()
		if !ok1 || !ok2 || !r.done() {
			return "the key's data is not a complete RSA key"
		}
		bits := new(big.Int).SetBytes(bytes.TrimLeft(n, "\x00")).BitLen()
		if bits < MinRSABits {
			return fmt.Sprintf("an RSA key of %d bits is too short (%d or more)", bits, MinRSABits)
		}
		return ""
	}
}

// SSHPublicKey: an OpenSSH public key line of an accepted type, well formed.
func SSHPublicKey(line string) bool {
	return SSHPublicKeyProblem(line) == ""
}
