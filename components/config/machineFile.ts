/**
 * Where a local stack's machine facts are kept (see localMachine.ts). Apart, with nothing
 * imported: the commands that read a stack ask it first, before anything heavy has loaded.
 */
import * as path from "node:path";

/** Written by scripts/local-hosts.sh, relative to the repository: the `local` stack's machine facts. */
export const LOCAL_MACHINE_FILE = path.join(".local", "machine.json");

/**
 * The machine file of a stack whose environment is local: .local/machine.json for the `local`
 * stack, .local/machine.STACK.json for another (scripts/netns-hosts.sh writes machine.multi.json).
 */
export function machineFile(stack: string): string {
    return stack === "local" ? LOCAL_MACHINE_FILE : path.join(".local", `machine.${stack}.json`);
}
