/**
 * The commands a host's bootstrap runs, as data (see remote/shell.ts). Pure: tests assert the
 * exact strings.
 */
import { createHash } from "crypto";
import { agentLink, agentPath } from "./release";
import { Command, SEMI, chain } from "./remote/shell";

/** The last part of a host path (the host's paths are POSIX whatever runs the program). */
function baseName(p: string): string {
    return p.slice(p.lastIndexOf("/") + 1);
}

/** Waits until cloud-init has finished the host's first boot; fails when it reported errors. */
export function bootWaitCommand(): Command {
    return ["cloud-init", "status", "--wait"];
}

/** The longest holder the agent takes (host/internal/cmd/holders.go). */
const HOLDER_MAX = 200;

/**
 * Who holds the agent a stack's host installs, as the agent records it (`install --holder`): the
 * project, the stack and the host's name, each kept to letters, digits and '-', every other
 * character written `_` and its UTF-8 bytes in hex (so that two names never give one holder),
 * joined by '.'. Two stacks on one host are two holders; the same stack's replacement is the same
 * holder again (the agent counts each install). A holder too long for a file name is cut, with
 * a hash of the whole.
 */
export function holderId(project: string, stack: string, host: string): string {
    const encode = (part: string, first: boolean): string =>
        Array.from(part)
            .map((c, i) =>
                /^[A-Za-z0-9]$/.test(c) || (c === "-" && !(first && i === 0)) ? c : Array.from(Buffer.from(c, "utf8"), (b) => `_${b.toString(16).padStart(2, "0")}`).join(""),
            )
            .join("");
    const id = [encode(project, true), encode(stack, false), encode(host, false)].join(".");
    if (id.length <= HOLDER_MAX) return id;
    return `${id.slice(0, HOLDER_MAX - 17)}_${createHash("sha256").update(id).digest("hex").slice(0, 16)}`;
}

/**
 * Installs the host agent of `image`: its image holds nothing but the static binary, which
 * `install` copies to ROOT/bin/coop-agent-<digest> (owned by the deploy user), recording
 * `holder`'s install of it (ROOT/bin/.holders/). The host needs only Docker; the path changes
 * with the image, so a new agent never replaces a running one.
 */
export function installAgentCommand(root: string, image: string, holder: string, withLogins = false): Command {
    const dest = agentPath(root, image);
    const config = withLogins ? ["--config", loginsDir(root, holder)] : [];
    return chain(
        ["mkdir", "-p", `${root}/bin`, `${root}/coops`],
        ["docker", ...config, "run", "--rm", "--network", "none", "--volume", `${root}/bin:/out`, image, "install", "--holder", holder, `/out/${baseName(dest)}`],
    );
}

/**
 * Where `holder`'s registry logins live on the host: a docker CLI config directory under
 * ROOT/registries (host/internal/engine: LoginsDir), read by `docker --config` for the agent's own
 * image and by the agent for every pull after.
 */
export function loginsDir(root: string, holder: string): string {
    return `${root}/registries/${holder}`;
}

/** The docker CLI config (config.json) holding each registry's login: what stdin carries to the host. */
export function dockerConfig(logins: ReadonlyArray<{ server: string; username: string; password: string }>): string {
    const auths = Object.fromEntries(logins.map((l) => [l.server, { auth: Buffer.from(`${l.username}:${l.password}`, "utf8").toString("base64") }]));
    return `${JSON.stringify({ auths }, null, 2)}\n`;
}

/**
 * Writes the config on stdin to `holder`'s logins: directories and file readable by the deploy
 * user only (umask 077), through a temporary file renamed into place, so a pull never reads half
 * a file. The token is in stdin only, never in the command.
 */
export function writeLoginsCommand(root: string, holder: string): Command {
    const dir = loginsDir(root, holder);
    return chain(
        ["install", "-d", "-m", "0700", `${root}/registries`, dir],
        ["umask", "077"],
        ["cat", { op: ">" }, `${dir}/config.json.new`],
        ["mv", "-f", `${dir}/config.json.new`, `${dir}/config.json`],
    );
}

/** Removes `holder`'s logins, then the directories left empty (another stack's logins stay). */
export function removeLoginsCommand(root: string, holder: string): Command {
    const base = `${root}/registries`;
    return chain(
        ["rm", "-f", `${loginsDir(root, holder)}/config.json`, `${loginsDir(root, holder)}/config.json.new`],
        ["if", "test", "-d", base, SEMI, "then", "find", base, "-depth", "-maxdepth", "1", "-type", "d", "-empty", "-delete", SEMI, "fi"],
    );
}

/**
 * Lets `holder`'s install of that agent go (`uninstall`): the agent removes the binary only once
 * nothing holds it and the stable link `ROOT/bin/coop-agent` (which the host's `watch` runs) does
 * not name it, and the link with the last agent when nothing else is left. Run by that agent, or
 * by the host's current one when that file is gone; by neither when both are, as there is then
 * nothing to remove. Then the directories, once they are empty (never anything in them), and
 * whether they are there or not (another stack on the host may have removed them).
 */
export function uninstallAgentCommand(root: string, image: string, holder: string): Command {
    const agent = agentPath(root, image);
    const current = agentLink(root);
    const args = ["uninstall", "--holder", holder, agent];
    return chain(
        ["if", "test", "-x", agent, SEMI, "then", agent, ...args, SEMI, "elif", "test", "-x", current, SEMI, "then", current, ...args, SEMI, "fi"],
        ["find", root, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "(", "-name", "bin", "-o", "-name", "coops", ")", "-empty", "-delete"],
    );
}
