/**
 * The commands a host's bootstrap runs, as data (see remote/shell.ts). Pure: tests assert the
 * exact strings.
 */
import { agentLink, agentPath } from "./release";
import { Command, chain } from "./remote/shell";

/** The last part of a host path (the host's paths are POSIX whatever runs the program). */
function baseName(p: string): string {
    return p.slice(p.lastIndexOf("/") + 1);
}

/** Waits until cloud-init has finished the host's first boot; fails when it reported errors. */
export function bootWaitCommand(): Command {
    return ["cloud-init", "status", "--wait"];
}

/**
 * Installs the host agent of `image`: its image holds nothing but the static binary, which
 * `install` copies to ROOT/bin/coop-agent-<digest> (owned by the deploy user). The host needs
 * only Docker; the path changes with the image, so a new agent never replaces a running one.
 */
export function installAgentCommand(root: string, image: string): Command {
    const dest = agentPath(root, image);
    return chain(
        ["mkdir", "-p", `${root}/bin`, `${root}/coops`],
        ["docker", "run", "--rm", "--network", "none", "--volume", `${root}/bin:/out`, image, "install", `/out/${baseName(dest)}`],
    );
}

/**
 * Removes that agent, the stable link `ROOT/bin/coop-agent` when it names that agent (the host's
 * `watch` runs it), and the directories once they are empty (never anything in them).
 */
export function uninstallAgentCommand(root: string, image: string): Command {
    const agent = agentPath(root, image);
    return chain(
        ["rm", "-f", agent],
        ["find", `${root}/bin`, "-maxdepth", "1", "-name", baseName(agentLink(root)), "-lname", baseName(agent), "-delete"],
        ["rmdir", "--ignore-fail-on-non-empty", `${root}/bin`, `${root}/coops`],
    );
}
