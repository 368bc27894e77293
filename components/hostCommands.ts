/**
 * The commands a host's bootstrap runs, as data (see remote/shell.ts). Pure: tests assert the
 * exact strings.
 */
import { agentPath } from "./release";
import { Command, chain } from "./remote/shell";

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
        ["docker", "run", "--rm", "--network", "none", "--volume", `${root}/bin:/out`, image, "install", `/out/${dest.slice(dest.lastIndexOf("/") + 1)}`],
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
        ["find", `${root}/bin`, "-maxdepth", "1", "-name", "coop-agent", "-lname", agent.slice(agent.lastIndexOf("/") + 1), "-delete"],
        ["rmdir", "--ignore-fail-on-non-empty", `${root}/bin`, `${root}/coops`],
    );
}
