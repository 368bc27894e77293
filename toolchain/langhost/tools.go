//go:build tools

// Package tools pins the Node.js language host. It is built from the sdk/v3
// module at v3.68.0, the last release that carried the host inside sdk/v3: the
// standalone module that holds it in later releases is not served by the module
// proxy this project can reach. See README "Toolchain".
package tools

import (
	_ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
)
