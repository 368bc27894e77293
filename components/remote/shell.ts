/**
 * Commands as data. A command is a list of tokens; values are quoted exactly once, where the
 * command is rendered, and shell operators are separate tokens that are never quoted.
 * Nothing here runs anything: tests compare the rendered strings.
 */

/** A shell operator kept as-is when a command is rendered (`&&`, `||`, `|`, `;`, redirections). */
export interface Operator {
    readonly op: "&&" | "||" | "|" | ";" | ">" | ">>" | "2>&1" | "<";
}

export type Token = string | Operator;
export type Command = readonly Token[];

export const AND: Operator = { op: "&&" };
export const OR: Operator = { op: "||" };
export const PIPE: Operator = { op: "|" };
export const SEMI: Operator = { op: ";" };

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one value for a POSIX shell: bare when it only has safe characters, else single-quoted. */
export function quote(value: string): string {
    if (value !== "" && SAFE.test(value)) {
        return value;
    }
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Renders a command to the string an SSH server hands to the user's shell. */
export function render(command: Command): string {
    return command.map((t) => (typeof t === "string" ? quote(t) : t.op)).join(" ");
}

/** Joins commands so that each runs only when the one before succeeded. */
export function chain(...commands: Command[]): Command {
    const out: Token[] = [];
    for (const c of commands) {
        if (out.length > 0) {
            out.push(AND);
        }
        out.push(...c);
    }
    return out;
}

/** `--name value` pairs for every defined option, in the order given. */
export function options(opts: Record<string, string | number | boolean | undefined>): string[] {
    const out: string[] = [];
    for (const [name, value] of Object.entries(opts)) {
        if (value === undefined || value === false) {
            continue;
        }
        out.push(`--${name}`);
        if (value !== true) {
            out.push(String(value));
        }
    }
    return out;
}
