package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// binSetup is an agents' directory and an agent executable to install from.
func binSetup(t *testing.T) (src, bin string) {
	t.Helper()
	dir := t.TempDir()
	src = filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("#!agent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return src, bin
}

func mustInstall(t *testing.T, src, dest, holder string) InstallReport {
	t.Helper()
	rep, err := install(src, dest, holder)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func mustUninstall(t *testing.T, dest, holder string) UninstallReport {
	t.Helper()
	rep, err := uninstall(dest, holder)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// names is what the directory holds, hidden entries included.
func names(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return strings.Join(out, " ")
}

func TestAnAgentTwoHoldersInstalledStaysUntilBothLetGo(t *testing.T) {
	src, bin := binSetup(t)
	a := filepath.Join(bin, "coop-agent-aaaaaaaaaaaa")
	// A user's stack and the test suite's stack on one host: the same agent, the same path.
	rep := mustInstall(t, src, a, "coop.local.local")
	if !strings.HasPrefix(rep.Holder, filepath.Join(bin, HoldersDir, "coop-agent-aaaaaaaaaaaa", "coop.local.local+")) {
		t.Fatalf("holder %q", rep.Holder)
	}
	mustInstall(t, src, a, "coop.suite.suite")
	// Another agent, installed later: the link names it, not a.
	b := filepath.Join(bin, "coop-agent-bbbbbbbbbbbb")
	mustInstall(t, src, b, "coop.other.h1")

	u := mustUninstall(t, a, "coop.suite.suite")
	if !exists(a) || u.Removed || u.Kept != "another holder still has it" || u.Released == "" {
		t.Fatalf("one holder let go, the other still holds it: %+v (%s)", u, names(t, bin))
	}
	// Letting go twice lets nothing else go.
	if u := mustUninstall(t, a, "coop.suite.suite"); u.Released != "" || !exists(a) {
		t.Fatalf("a second uninstall by the same holder: %+v", u)
	}
	u = mustUninstall(t, a, "coop.local.local")
	if exists(a) || !u.Removed || exists(filepath.Join(bin, HoldersDir, "coop-agent-aaaaaaaaaaaa")) {
		t.Fatalf("no holder left: the agent must go: %+v (%s)", u, names(t, bin))
	}
	if !exists(b) || !exists(filepath.Join(bin, LinkName)) {
		t.Fatalf("the other agent and the link stay: %s", names(t, bin))
	}
}

func TestReplacingAnInstallKeepsTheAgent(t *testing.T) {
	src, bin := binSetup(t)
	a := filepath.Join(bin, "coop-agent-aaaaaaaaaaaa")
	other := filepath.Join(bin, "coop-agent-bbbbbbbbbbbb")
	mustInstall(t, src, other, "coop.suite.h1")
	mustInstall(t, src, a, "coop.local.h1")
	// `up --replace h1/agent`: the new resource installs (same holder, same path), then the old
	// one is deleted.
	mustInstall(t, src, a, "coop.local.h1")
	if u := mustUninstall(t, a, "coop.local.h1"); !exists(a) || u.Removed {
		t.Fatalf("the replacement's agent went with the old resource: %+v", u)
	}
	// Once the replacement goes too (and the link names another agent), it goes.
	mustInstall(t, src, other, "coop.suite.h1")
	if u := mustUninstall(t, a, "coop.local.h1"); exists(a) || !u.Removed {
		t.Fatalf("the agent outlived its last holder: %+v", u)
	}
}

func TestTheAgentTheLinkNamesStaysWhileAnythingElseIsThere(t *testing.T) {
	src, bin := binSetup(t)
	a := filepath.Join(bin, "coop-agent-aaaaaaaaaaaa")
	b := filepath.Join(bin, "coop-agent-bbbbbbbbbbbb")
	mustInstall(t, src, b, "coop.suite.h1")
	mustInstall(t, src, a, "coop.local.h1") // the link names a
	u := mustUninstall(t, a, "coop.local.h1")
	if !exists(a) || u.Removed || !strings.Contains(u.Kept, "current agent") {
		t.Fatalf("the agent the link names went while another stack holds an agent here: %+v", u)
	}
	if target, _ := os.Readlink(filepath.Join(bin, LinkName)); target != "coop-agent-aaaaaaaaaaaa" {
		t.Fatalf("the link names %q", target)
	}
	// Once nothing else is left on the host, the last agent goes, with the link.
	u = mustUninstall(t, b, "coop.suite.h1")
	if exists(a) || exists(b) || exists(filepath.Join(bin, LinkName)) || !u.Swept.Link {
		t.Fatalf("left: %s; report %+v", names(t, bin), u)
	}
	if got := names(t, bin); got != "" {
		t.Fatalf("the directory still holds %q", got)
	}
}

func TestAnAgentInstalledBeforeHoldersWereRecordedStays(t *testing.T) {
	src, bin := binSetup(t)
	a := filepath.Join(bin, "coop-agent-aaaaaaaaaaaa")
	// Installed by an older agent: no holders.
	mustInstall(t, src, a, "")
	if exists(filepath.Join(bin, HoldersDir)) {
		t.Fatal("an install without a holder recorded holders")
	}
	mustInstall(t, src, filepath.Join(bin, "coop-agent-bbbbbbbbbbbb"), "coop.x.h1")
	if u := mustUninstall(t, a, "coop.local.h1"); !exists(a) || u.Removed || !strings.Contains(u.Kept, "before its holders were recorded") {
		t.Fatalf("an uncounted agent was removed: %+v", u)
	}
	// A stack of this version installs it too (its first up after the upgrade): the agent was
	// there uncounted, so whoever else runs it is not known, and it stays when that stack goes.
	mustInstall(t, src, a, "coop.local.h1")
	mustInstall(t, src, filepath.Join(bin, "coop-agent-bbbbbbbbbbbb"), "coop.x.h1")
	if u := mustUninstall(t, a, "coop.local.h1"); !exists(a) || u.Removed || u.Released == "" {
		t.Fatalf("an agent an older install put there was removed: %+v", u)
	}
	// Even when it is all that is left.
	mustUninstall(t, filepath.Join(bin, "coop-agent-bbbbbbbbbbbb"), "coop.x.h1")
	if !exists(a) {
		t.Fatal("an agent an older install put there was removed")
	}
}

func TestAHolderMovingToANewAgentLetsTheOldOneGo(t *testing.T) {
	src, bin := binSetup(t)
	a := filepath.Join(bin, "coop-agent-aaaaaaaaaaaa")
	b := filepath.Join(bin, "coop-agent-bbbbbbbbbbbb")
	mustInstall(t, src, a, "coop.local.h1")
	mustInstall(t, src, a, "coop.suite.h1")
	// The local stack's new agent version: its hold on a ends; the suite still holds a.
	rep := mustInstall(t, src, b, "coop.local.h1")
	if !exists(a) || rep.Swept == nil || len(rep.Swept.Agents) != 0 {
		t.Fatalf("a is still held by the suite: %+v", rep)
	}
	rep = mustInstall(t, src, b, "coop.suite.h1")
	if exists(a) || rep.Swept == nil || len(rep.Swept.Agents) != 1 || rep.Swept.Agents[0] != a {
		t.Fatalf("nothing holds a any more: %+v (%s)", rep, names(t, bin))
	}
}

func TestUninstallAsTheCommand(t *testing.T) {
	src, bin := binSetup(t)
	a := filepath.Join(bin, "coop-agent-aaaaaaaaaaaa")
	e, out, errb := agent(t, "")
	e.exe = src
	if code := e.run([]string{"install", "--holder", "coop.local.h1", a}); code != 0 {
		t.Fatalf("install: exit %d: %s", code, errb)
	}
	out.Reset()
	if code := e.run([]string{"uninstall", "--holder", "coop.local.h1", a}); code != 0 {
		t.Fatalf("uninstall: exit %d: %s", code, errb)
	}
	var rep UninstallReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.Removed || rep.Path != a || exists(a) {
		t.Fatalf("report %s", out)
	}
	for _, bad := range [][]string{{"uninstall", a}, {"uninstall", "--holder", "../x", a}, {"install", "--holder", "a b", a}} {
		errb.Reset()
		if code := e.run(bad); code == 0 || !strings.Contains(errb.String(), "invalid holder") {
			t.Fatalf("%v: exit %d: %s", bad, code, errb)
		}
	}
	// Nothing there at all (the directory went): nothing to do.
	if rep, err := uninstall(filepath.Join(t.TempDir(), "gone", "coop-agent-x"), "coop.local.h1"); err != nil || !rep.Removed {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestALinkThatNamesNothingGoesWhenNothingElseIsLeft(t *testing.T) {
	src, bin := binSetup(t)
	a := filepath.Join(bin, "coop-agent-aaaaaaaaaaaa")
	tool := filepath.Join(bin, "coop-agent-tool")
	mustInstall(t, src, a, "coop.suite.h1")
	// A tool installed without a holder takes the link, and is removed by hand.
	mustInstall(t, src, tool, "")
	if err := os.Remove(tool); err != nil {
		t.Fatal(err)
	}
	u := mustUninstall(t, a, "coop.suite.h1")
	if !u.Removed || !u.Swept.Link || names(t, bin) != "" {
		t.Fatalf("left %q; report %+v", names(t, bin), u)
	}
}

func TestInstallsAndUninstallsAtOnceTakeTurns(t *testing.T) {
	src, bin := binSetup(t)
	a := filepath.Join(bin, "coop-agent-aaaaaaaaaaaa")
	holders := []string{"s1.h", "s2.h", "s3.h", "s4.h", "s5.h", "s6.h"}
	var wg sync.WaitGroup
	for _, h := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := install(src, a, h); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if entries, _ := os.ReadDir(filepath.Join(bin, HoldersDir, filepath.Base(a))); len(entries) != len(holders) {
		t.Fatalf("holders recorded: %d", len(entries))
	}
	// All but the last let go at once: the last still holds it.
	for _, h := range holders[:len(holders)-1] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := uninstall(a, h); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if !exists(a) {
		t.Fatal("the agent went while a holder still has it")
	}
	if u := mustUninstall(t, a, holders[len(holders)-1]); !u.Removed || names(t, bin) != "" {
		t.Fatalf("left %q; %+v", names(t, bin), u)
	}
}
