package rules

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// casesFile is the table the TypeScript tests run too (test/rules/cases.json).
const casesFile = "../../../test/rules/cases.json"

type ruleCases struct {
	Accept []string `json:"accept"`
	Refuse []string `json:"refuse"`
}

// sharedRules maps each rule of the shared table to its Go predicate. A rule in the table that
// is missing here fails the test, so a rule added on one side is added on the other.
var sharedRules = map[string]func(string) bool{
	"imageDigest":  ImageDigest,
	"coopId":       CoopID,
	"envName":      EnvName,
	"sshPublicKey": SSHPublicKey,
	"domain":       Domain,
	"ipAddress":    IPAddress,
}

func TestSharedTable(t *testing.T) {
	raw, err := os.ReadFile(casesFile)
	if err != nil {
		t.Fatalf("reading the shared table: %v", err)
	}
	var table map[string]json.RawMessage
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatalf("%s: %v", casesFile, err)
	}
	seen := 0
	for name, body := range table {
		if strings.HasPrefix(name, "_") {
			continue
		}
		rule, ok := sharedRules[name]
		if !ok {
			t.Errorf("%s has rule %q, which the agent does not implement", casesFile, name)
			continue
		}
		var c ruleCases
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatalf("%s: %s: %v", casesFile, name, err)
		}
		if len(c.Accept) == 0 || len(c.Refuse) == 0 {
			t.Errorf("%s: %s needs accepted and refused values", casesFile, name)
		}
		for _, v := range c.Accept {
			if !rule(v) {
				t.Errorf("%s refuses %q; the table accepts it", name, v)
			}
		}
		for _, v := range c.Refuse {
			if rule(v) {
				t.Errorf("%s accepts %q; the table refuses it", name, v)
			}
		}
		seen++
	}
	if seen != len(sharedRules) {
		t.Errorf("the table has %d rules; the agent implements %d", seen, len(sharedRules))
	}
}

// Rules the agent checks that the shared table does not (yet) hold.
func TestAgentOnlyRules(t *testing.T) {
	for _, tc := range []struct {
		rule   string
		fn     func(string) bool
		accept []string
		refuse []string
	}{
		{"HealthPath", HealthPath, []string{"/health", "/", "/up?full=1", "/a/b-c_d.e~f%20"}, []string{"", "health", "/a b", "/a\n", "//x\"y"}},
		{"Memory", Memory, []string{"128m", "1g", "512k", "1048576b"}, []string{"", "128", "128M", "1.5g", "-1m", "128mb"}},
		{"CPUs", CPUs, []string{"1", "0.5", "2.25"}, []string{"", ".5", "1.", "-1", "1e3", "one"}},
		{"DNSLabel", DNSLabel, []string{"coop", "a", "coop-net"}, []string{"", "Coop", "-a", "a_b", "a.b"}},
	} {
		for _, v := range tc.accept {
			if !tc.fn(v) {
				t.Errorf("%s refuses %q", tc.rule, v)
			}
		}
		for _, v := range tc.refuse {
			if tc.fn(v) {
				t.Errorf("%s accepts %q", tc.rule, v)
			}
		}
	}
}

func TestSSHPublicKeyProblemSaysWhy(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"ssh-dss AAAA", `type "ssh-dss" is not one of`},
		{"ssh-ed25519 AAAA", "not a ssh-ed25519 key"},
		{"a\nb", "must be one line"},
		{"ssh-ed25519", `must be "TYPE BASE64 [COMMENT]"`},
	} {
		if got := SSHPublicKeyProblem(tc.line); !strings.Contains(got, tc.want) {
			t.Errorf("SSHPublicKeyProblem(%q) = %q, want it to say %q", tc.line, got, tc.want)
		}
	}
}
