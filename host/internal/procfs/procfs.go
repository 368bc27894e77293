// Package procfs reads what the agent needs to know about processes from /proc: whether a
// process is alive, and its start time, so that a pid reused by another process is not taken
// for the one that was recorded.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Root is where the process table is mounted (tests point it elsewhere).
var Root = "/proc"

// Stat is what the agent reads from /proc/PID/stat.
type Stat struct {
	State     byte   // R, S, D, Z, ...
	PPID      int    // the parent's pid
	StartTime uint64 // clock ticks since boot when the process started
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", Root, pid))
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(string(b))
}

// ParseStat parses the text of /proc/PID/stat. The command name (field 2) is in parentheses
// and may hold spaces and parentheses itself, so fields are counted from the last ')'.
func ParseStat(text string) (Stat, error) {
	end := strings.LastIndexByte(text, ')')
	if end < 0 {
		return Stat{}, fmt.Errorf("malformed stat: no command name")
	}
	f := strings.Fields(text[end+1:])
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("malformed stat: %d fields after the command name", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat: ppid %q", f[1])
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat: starttime %q", f[19])
	}
	return Stat{State: f[0][0], PPID: ppid, StartTime: start}, nil
}

// StartTime is the process's start time in clock ticks since boot.
func StartTime(pid int) (uint64, error) {
	s, err := ReadStat(pid)
	return s.StartTime, err
}

// Alive: the process pid exists, is not a zombie, and (when start is not 0) started at start.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, err := ReadStat(pid)
	if err != nil || s.State == 'Z' || s.State == 'X' {
		return false
	}
	return start == 0 || s.StartTime == start
}
