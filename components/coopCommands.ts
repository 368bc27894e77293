/**
 * What a co-op's release puts on a host besides its release document: the env file, and the
 * agent's commands, as data. Pure: tests assert the exact strings. Imported by the CoopRelease
 * provider, whose code is serialized into the state: nothing here imports anything but shell.ts.
 */
import { Command, SEMI, Token, options } from "./remote/shell";

/**
 * The host's current agent beside the agent at `agent` (ROOT/bin/coop-agent-<digest>): the stable
 * link ROOT/bin/coop-agent that the last install made (release.ts: agentLink).
 */
export function currentAgentBeside(agent: string): string {
    return `${agent.slice(0, agent.lastIndexOf("/") + 1)}coop-agent`;
}

/**
 * Runs the agent at `agent` with `args`, or the host's current agent (currentAgentBeside) when
 * that file is gone: a stack's state names the agent its last `up` installed, and another
 * stack's destroy on the same host, with an agent from before holders were counted, could have
 * removed it. Any agent runs any release (the documents are the same).
 */
export function agentCommand(agent: string, args: readonly Token[]): Command {
    const current = currentAgentBeside(agent);
    return ["if", "test", "-x", agent, SEMI, "then", agent, ...args, SEMI, "else", current, ...args, SEMI, "fi"];
}

/** Stops and removes the co-op and its route; its data volume too when `deleteData`. */
export function removeCommand(agent: string, id: string, deleteData: boolean): Command {
    return agentCommand(agent, ["remove", id, ...options({ "delete-data": deleteData })]);
}

/**
 * The env file Docker reads: one `NAME=value` a line, values taken literally. The config parser
 * refuses names and values an env file cannot hold, including secrets' values (by their facts);
 * this checks again, naming the variable and never its value.
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
                throw new Error(`environment variable ${name}: the value spans lines or holds a NUL byte, which an env file cannot hold`);
            }
            return `${name}=${value}\n`;
        })
        .join("");
}
