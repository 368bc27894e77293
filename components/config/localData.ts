/**
 * The local stack's data services (scripts/local-data.sh): the PostgreSQL cluster its co-ops'
 * databases live in and the S3 server their backups go to, as this machine runs them. What the
 * managed cluster and the Spaces bucket are to a cloud stack, read from .local/data.json and the
 * files it names (the admin password, the S3 keys).
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";

/** Written by scripts/local-data.sh, relative to the repository. */
export const LOCAL_DATA_FILE = path.join(".local", "data.json");

export interface LocalData {
    postgres: {
        /** Where the co-ops' containers reach the cluster (the docker0 bridge's address). */
        host: string;
        /** Where this machine reaches it (the program makes each co-op's role and database). */
        adminHost: string;
        port: number;
        adminUser: string;
        adminPassword: string;
    };
    store: { endpoint: string; region: string; bucket: string; accessKeyId: string; secretAccessKey: string };
}

/** Reads .local/data.json; undefined when scripts/local-data.sh never ran here. */
export function readLocalData(root: string): LocalData | undefined {
    let doc: {
        postgres?: { host?: string; adminHost?: string; port?: number; adminUser?: string; adminPasswordFile?: string };
        objectStore?: { endpoint?: string; region?: string; bucket?: string; keysFile?: string };
    };
    try {
        doc = JSON.parse(readFileSync(path.join(root, LOCAL_DATA_FILE), "utf8"));
    } catch {
        return undefined;
    }
    const file = (p: string | undefined) => readFileSync(path.resolve(root, ".local", p ?? ""), "utf8");
    const pg = doc.postgres ?? {};
    const s3 = doc.objectStore ?? {};
    const keys = Object.fromEntries(
        file(s3.keysFile)
            .split("\n")
            .filter((l) => l.includes("="))
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).trim()]),
    );
    return {
        postgres: {
            host: pg.host ?? "",
            adminHost: pg.adminHost ?? "127.0.0.1",
            port: pg.port ?? 5433,
            adminUser: pg.adminUser ?? "postgres",
            adminPassword: file(pg.adminPasswordFile).trim(),
        },
        store: {
            endpoint: s3.endpoint ?? "",
            region: s3.region ?? "us-east-1",
            bucket: s3.bucket ?? "",
            accessKeyId: keys.ROOT_ACCESS_KEY_ID ?? "",
            secretAccessKey: keys.ROOT_SECRET_ACCESS_KEY ?? "",
        },
    };
}
