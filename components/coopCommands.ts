/**
 * What a co-op's release puts on a host besides its release document: the env file, and the
 * agent's `remove` command, as data. Pure: tests assert the exact strings.
 */
import { Command, options } from "./remote/shell";

/** Stops and removes the co-op and its route; its data volume too when `deleteData`. */
export function removeCommand(agent: string, id: string, deleteData: boolean): Command {
    return [agent, "remove", id, ...options({ "delete-data": deleteData })];
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
