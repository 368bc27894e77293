// coop-agent is the co-op host agent: it runs on each host (ROOT/bin/coop-agent-<version>) and
// does what the Pulumi program asks of the host over SSH. See internal/cmd for its subcommands.
package main

import (
	"os"

	"coop/host/internal/cmd"
)

func main() {
	os.Exit(cmd.Execute(os.Args[1:]))
}
