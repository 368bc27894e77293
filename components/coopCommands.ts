/**
 * What a co-op instance runs on its host, as data: the coopctl subcommands and the env file.
 * Pure: tests assert the exact strings.
 */
import { CoopSpec } from "./config";
import { Command, options } from "./remote/shell";

/** Where a co-op's files live on a host. */
export function coopDir(root: string, id: string): string {
    return `${root}/coops/${id}`;
}

/** Options the deploy passes on to coopctl beyond the co-op's own spec. */
export interface DeployOptions {
    /** Docker network of the host. */
    network: string;
    /** Ask the proxy for a certificate for the co-op's domains. */
    tls: boolean;
    /** Seconds in-flight requests get to finish on the old slot. Default {@link DRAIN_SECONDS}. */
    drainTimeoutSeconds?: number;
    /** Only switch to the idle slot if it holds this release (rollback's fast path); coopctl exits 3 otherwise. */
    onlyIfRetained?: boolean;
}

/** Seconds in-flight requests get to finish on the old slot unless told otherwise. */
export const DRAIN_SECONDS = 30;

export function prepareCoopCommand(tool: string, id: string): Command {
    return [tool, "prepare", id];
}

/** The release, step by step: lock, pull, migrate, start the idle slot, health gate, switch, drain, keep, prune, record. */
export function deployCommand(tool: string, coop: CoopSpec, o: DeployOptions): Command {
    return [
        tool,
        "deploy",
        coop.id,
        ...options({
            image: coop.image,
            port: coop.port,
            "health-path": coop.healthPath,
            network: o.network,
            memory: coop.memory,
            cpus: coop.cpus,
            retain: coop.retain,
            "health-timeout": coop.healthTimeout,
            "drain-timeout": o.drainTimeoutSeconds ?? DRAIN_SECONDS,
            tls: o.tls,
            "only-if-retained": o.onlyIfRetained,
        }),
        ...coop.domains.flatMap((d) => ["--domain", d]),
        ...coop.migrate.flatMap((a) => ["--migrate", a]),
    ];
}

export function removeCommand(tool: string, coop: Pick<CoopSpec, "id" | "deleteDataOnRemove">): Command {
    return [tool, "remove", coop.id, ...options({ "delete-data": coop.deleteDataOnRemove })];
}

/**
 * The env file Docker reads (`--env-file`): one `NAME=value` a line, values taken literally.
 * Names and single-line values are checked by the config parser; this checks again because a
 * secret's value never passes through the parser.
 */
export function renderEnvFile(vars: Record<string, string>): string {
    return Object.keys(vars)
        .sort()
        .map((name) => {
            const value = vars[name];
            if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
                throw new Error(`environment variable name ${JSON.stringify(name)} is not valid`);
            }
            if (/[\r\n\0]/.test(value)) {
                throw new Error(`environment variable ${name}: the value spans lines, which an env file cannot hold`);
            }
            return `${name}=${value}\n`;
        })
        .join("");
}
