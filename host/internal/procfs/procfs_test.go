package procfs

import (
	"os"
	"os/exec"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Stat
		ok   bool
	}{
		{"42 (bash) S 1 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 123456 1 2 3\n", Stat{'S', 1, 123456}, true},
		// A command name with spaces and parentheses.
		{"7 (a) b (c)) R 3 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n", Stat{'R', 3, 99}, true},
		{"7 (x) Z 3 7", Stat{}, false},
		{"garbage", Stat{}, false},
	} {
		got, err := ParseStat(tc.text)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseStat(%q) = %+v, %v", tc.text, got, err)
		}
	}
}

func TestAlive(t *testing.T) {
	self, err := StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !Alive(os.Getpid(), self) || !Alive(os.Getpid(), 0) {
		t.Error("this process is not alive")
	}
	if Alive(os.Getpid(), self+1) {
		t.Error("a different start time is taken for the same process")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if Alive(cmd.Process.Pid, 0) {
		t.Error("a finished process is alive")
	}
	if Alive(0, 0) || Alive(-1, 0) {
		t.Error("pid 0 or -1 is alive")
	}
}
