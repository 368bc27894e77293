/**
 * A small pure parser for the co-op deploy command the project renders (components/coopCommands.ts
 * `deployCommand`, rendered by components/remote/shell.ts `render`):
 *
 *   /opt/coop/bin/coopctl-<hash> deploy alpha --image REPO@sha256:<64 hex> --port 8080 \
 *     --health-path /health --network coop --retain 2 ... --domain alpha.localhost --migrate migrate
 *
 * Values are bare when they only hold safe characters, else single-quoted with `'\''` for a quote;
 * shell operators (`&&`, `|`, ...) are separate bare tokens. The tokenizer below reads that and a
 * little more (double quotes, backslashes), enough for a hand-written command too.
 */

/** A word, or an unquoted shell operator. */
export type ShellToken = { word: string } | { op: string };

const OPERATORS = ["2>&1", "&&", "||", ">>", "|", ";", ">", "<"];

/**
 * Splits a shell command line into words and operators, the way a POSIX shell would before
 * expansions. Throws on an unterminated quote.
 */
export function tokenize(line: string): ShellToken[] {
    const out: ShellToken[] = [];
    let i = 0;
    while (i < line.length) {
        const c = line[i];
        if (c === " " || c === "\t" || c === "\n") {
            i++;
            continue;
        }
        const op = OPERATORS.find((o) => line.startsWith(o, i));
        if (op) {
            out.push({ op });
            i += op.length;
            continue;
        }
        let word = "";
        while (i < line.length) {
            const ch = line[i];
            if (ch === " " || ch === "\t" || ch === "\n" || OPERATORS.some((o) => o !== "2>&1" && line.startsWith(o, i))) {
                break;
            }
            if (ch === "'") {
                const end = line.indexOf("'", i + 1);
                if (end < 0) {
                    throw new Error("unterminated single quote");
                }
                word += line.slice(i + 1, end);
                i = end + 1;
            } else if (ch === '"') {
                i++;
                while (i < line.length && line[i] !== '"') {
                    if (line[i] === "\\" && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) {
                        i++;
                    }
                    word += line[i];
                    i++;
                }
                if (i >= line.length) {
                    throw new Error("unterminated double quote");
                }
                i++;
            } else if (ch === "\\" && i + 1 < line.length) {
                word += line[i + 1];
                i += 2;
            } else {
                word += ch;
                i++;
            }
        }
        out.push({ word });
    }
    return out;
}

/** A parsed `coopctl deploy ID ...` command. */
export interface DeployCommand {
    /** The program as written (`/opt/coop/bin/coopctl-<hash>`). */
    tool: string;
    /** The co-op id. */
    id: string;
    /** Every `--name value` option, values in order (`--domain` and `--migrate` repeat). */
    options: Record<string, string[]>;
    /** Options given without a value (`--tls`, `--only-if-retained`). */
    flags: string[];
}

/** coopctl options that take no value; every other `--name` takes the next word. */
const FLAGS = new Set(["tls", "only-if-retained", "delete-data"]);

/** `coopctl`, `coopctl-<hash>`, with any directory. */
const TOOL = /(^|\/)coopctl(-[0-9A-Za-z]+)?$/;

/**
 * Finds the `coopctl deploy` command in a rendered command line (alone or in a chain) and parses
 * its options. Returns undefined when the line holds no coopctl deploy, or cannot be tokenized.
 */
export function parseDeployCommand(line: string): DeployCommand | undefined {
    let tokens: ShellToken[];
    try {
        tokens = tokenize(line);
    } catch {
        return undefined;
    }
    // Simple commands are the words between operators.
    const commands: string[][] = [[]];
    for (const t of tokens) {
        if ("op" in t) {
            commands.push([]);
        } else {
            commands[commands.length - 1].push(t.word);
        }
    }
    const words = commands.find((c) => c.length >= 3 && TOOL.test(c[0]) && c[1] === "deploy");
    if (!words) {
        return undefined;
    }
    const options: Record<string, string[]> = {};
    const flags: string[] = [];
    for (let i = 3; i < words.length; i++) {
        const w = words[i];
        if (!w.startsWith("--")) {
            continue;
        }
        const name = w.slice(2);
        if (FLAGS.has(name) || i + 1 >= words.length) {
            flags.push(name);
            continue;
        }
        (options[name] ??= []).push(words[i + 1]);
        i++;
    }
    return { tool: words[0], id: words[2], options, flags };
}
