// coop-proxy-start is the entrypoint of the kamal-proxy image built here: it clears the umask and
// becomes the command it is given (kamal-proxy run). kamal-proxy creates its command socket with
// the process's umask, which leaves a root-owned socket that only root may connect to; with the
// umask cleared, the socket's own mode lets the deploy user in, and the directory the agent
// mounts over the socket's (mode 0700, the deploy user's) keeps everyone else out. Files
// kamal-proxy writes with an explicit mode (its certificates, 0600) keep that mode.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: coop-proxy-start PROGRAM [ARG...]")
		os.Exit(2)
	}
	syscall.Umask(0)
	err := syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	fmt.Fprintf(os.Stderr, "coop-proxy-start: %s: %v\n", os.Args[1], err)
	os.Exit(127)
}
