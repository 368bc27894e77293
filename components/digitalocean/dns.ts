/**
 * Pure name arithmetic of the DigitalOcean layer: which zone a domain belongs to, the names the
 * load balancer's certificate covers, and the A records of the co-op domains. The config parser
 * and the components both use it.
 */

/** Whether the stack puts a load balancer in front of its hosts: more than one droplet. */
export function behindLoadBalancer(spec: { droplets: { count: number } } | undefined): boolean {
    return (spec?.droplets.count ?? 1) > 1;
}

/** The zone a domain is a record of: the longest listed zone it ends with. */
export function zoneOf(domain: string, zones: readonly string[]): string | undefined {
    return zones.filter((z) => domain === z || domain.endsWith(`.${z}`)).sort((a, b) => b.length - a.length)[0];
}

/** Let's Encrypt names on one DigitalOcean certificate, at most. */
export const MAX_CERTIFICATE_NAMES = 100;

/**
 * The names the load balancer's certificate covers: for each zone in use, the zone and its
 * wildcard (every co-op one label below it), plus any domain deeper than that. Throws when a
 * domain is in no zone (the config parser refuses that earlier, by path).
 */
export function certificateNames(domains: string[], zones: string[]): string[] {
    const names = new Set<string>();
    for (const d of domains) {
        const zone = zoneOf(d, zones);
        if (!zone) {
            throw new Error(`certificateNames: ${d} is in none of ${zones.join(", ")}`);
        }
        const relative = d === zone ? "" : d.slice(0, -(zone.length + 1));
        if (relative.includes(".")) {
            names.add(d);
        } else {
            names.add(zone).add(`*.${zone}`);
        }
    }
    return [...names].sort();
}

/** An A record in a zone: `@` for its apex, `*` for every name one label below it, or a deeper name. */
export interface RecordSpec {
    zone: string;
    name: string;
    /** The name it answers for, written out (`*.coophost.example` for a wildcard). */
    domain: string;
}

/**
 * The A records the co-op domains need, all pointing at the same address: per zone in use, one
 * wildcard for every co-op one label below it (as the certificate's wildcard covers them) and the
 * apex when a co-op is the apex; a deeper domain by name. The count follows the zones, not the
 * co-ops: adding a co-op under a zone touches no DNS. Pure; throws when a domain is in no zone (the
 * config parser refuses that earlier, by path).
 */
export function dnsRecords(domains: string[], zones: string[]): RecordSpec[] {
    const records = new Map<string, RecordSpec>();
    for (const domain of domains) {
        const zone = zoneOf(domain, zones);
        if (!zone) {
            throw new Error(`dnsRecords: ${domain} is in none of ${zones.join(", ")}`);
        }
        const relative = domain === zone ? "@" : domain.slice(0, -(zone.length + 1));
        const r = relative === "@" ? { zone, name: "@", domain } : relative.includes(".") ? { zone, name: relative, domain } : { zone, name: "*", domain: `*.${zone}` };
        records.set(r.domain, r);
    }
    return [...records.values()].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
}
