/**
 * The commands the host bootstrap runs, as data (see remote/shell.ts). Pure: tests assert the
 * exact strings.
 */
import { createHash } from "crypto";
import { ProxySpec } from "./config";
import { Command, options } from "./remote/shell";

/** Where a given version of the deploy tool lives: the path changes whenever its content does. */
export function toolPath(root: string, toolSource: string): string {
    const hash = createHash("sha256").update(toolSource).digest("hex").slice(0, 12);
    return `${root}/bin/coopctl-${hash}`;
}

/** Waits until cloud-init has finished the host's first boot; fails when it reported errors. */
export function bootWaitCommand(): Command {
    return ["cloud-init", "status", "--wait"];
}

/** Creates the directories for the deploy tool's versions and for co-op files. */
export function prepareCommand(root: string): Command {
    return ["mkdir", "-p", `${root}/bin`, `${root}/coops`];
}

/** Removes those directories once they are empty (never anything in them). */
export function unprepareCommand(root: string): Command {
    return ["rmdir", "--ignore-fail-on-non-empty", `${root}/bin`, `${root}/coops`];
}

/** Brings up the engine network and the reverse proxy. Idempotent on the host. */
export function hostUpCommand(tool: string, network: string, proxy: ProxySpec): Command {
    return [
        tool,
        "host-up",
        ...options({
            network,
            "proxy-image": proxy.image,
            bind: proxy.bindAddress,
            "http-port": proxy.httpPort,
            "https-port": proxy.httpsPort,
        }),
    ];
}

/** Removes the proxy, its state volume and the network. */
export function hostDownCommand(tool: string, network: string): Command {
    return [tool, "host-down", ...options({ network })];
}
