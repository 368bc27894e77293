// npm run bench:cutover — 20 cutovers back to back under a fixed-rate keep-alive load through
// the proxy, plus 10 five-second requests in flight during one cutover; then a run against a real
// threaded WSGI app (app/django: Django under gunicorn's gthread workers, a migration each
// release): cutovers under load, every request's outcome and the slowest one (django_*).
// Prints figures last.
import { localHostsUp, installTool } from "../test/support";
import { BenchCoop, buildLoadgen, get, images, median, printFigures, sleep, startLoad } from "./common";

const RATE = Number(process.env.BENCH_RATE ?? 2000);
const CUTOVERS = Number(process.env.BENCH_CUTOVERS ?? 20);
const DJANGO_RATE = Number(process.env.BENCH_DJANGO_RATE ?? 300);
const DJANGO_CUTOVERS = Number(process.env.BENCH_DJANGO_CUTOVERS ?? 10);
/** What each request asks the app: a name lookup, as an app that connects to its database per request does. */
const DJANGO_PATH = process.env.BENCH_DJANGO_PATH ?? "/lookup";

/**
 * Cutovers of the threaded app under load: each a new release (a new env) of the same image, with
 * its migration, a new container started and switched to. The load's timeout is long (30 s), so
 * that a request that hangs is measured (max_ms) rather than cut at 5 s.
 */
async function threadedApp(loadgen: string, tool: string): Promise<Record<string, number>> {
    const img = images();
    const coop = new BenchCoop(tool, "bench-django", { migrate: true });
    await coop.reset();
    await coop.env(0);
    await coop.deploy(img.django);
    await coop.env(-1);
    await coop.deploy(img.django);
    const load = startLoad(loadgen, [
        "-url",
        `http://127.0.0.1:8080${DJANGO_PATH}`,
        "-host",
        coop.domain,
        "-rate",
        String(DJANGO_RATE),
        "-duration",
        "30m",
        "-connections",
        "64",
        "-timeout",
        "30s",
    ]);
    await sleep(3000);
    const cutoverMs: number[] = [];
    for (let i = 1; i <= DJANGO_CUTOVERS; i++) {
        await coop.env(i);
        cutoverMs.push((await coop.deploy(img.django)).wallMs);
        await sleep(1500);
    }
    await sleep(3000);
    const r = await load.stop();
    await coop.remove();
    return {
        django_rate_target_rps: DJANGO_RATE,
        django_requests: r.requests,
        django_ok_2xx: r.ok_2xx,
        django_cutovers: cutoverMs.length,
        django_cutover_wall_ms_median: median(cutoverMs),
        django_p50_ms: r.p50_ms,
        django_p99_ms: r.p99_ms,
        django_non_2xx: r.non_2xx,
        django_socket_errors: r.socket_errors,
        django_timeouts: r.timeouts,
        django_failed_requests: r.failed_requests,
        django_max_ms: r.max_ms,
    };
}

async function main(): Promise<void> {
    localHostsUp();
    const loadgen = buildLoadgen();
    const img = images();
    const coop = new BenchCoop(await installTool("coop-agent-bench"), "bench-cutover");
    await coop.reset();
    await coop.env(0);
    await coop.deploy(img["demo:v1"]);
    await coop.env(-1);
    await coop.deploy(img["demo:v2"]); // both images are on the host from here on

    const load = startLoad(loadgen, ["-url", "http://127.0.0.1:8080/version", "-host", coop.domain, "-rate", String(RATE), "-duration", "30m", "-connections", "64"]);
    await sleep(2000);
    const cutoverMs: number[] = [];
    let slowOk = 0;
    const SLOW = 10;
    for (let i = 1; i <= CUTOVERS; i++) {
        await coop.env(i);
        let slow: Promise<number[]> | undefined;
        if (i === Math.ceil(CUTOVERS / 2)) {
            slow = Promise.all(Array.from({ length: SLOW }, () => get("/slow?ms=5000", coop.domain)));
            await sleep(300); // they are in flight on the live slot before the cutover starts
        }
        const { wallMs } = await coop.deploy(img[i % 2 ? "demo:v1" : "demo:v2"]);
        cutoverMs.push(wallMs);
        if (slow) {
            slowOk = (await slow).filter((s) => s === 200).length;
        }
    }
    await sleep(2000);
    const r = await load.stop();
    await coop.remove({ keepTool: true });
    const django = process.env.BENCH_DJANGO === "0" ? {} : await threadedApp(loadgen, coop.tool);
    if (process.env.BENCH_DJANGO === "0") await coop.remove();

    printFigures({
        rate_target_rps: RATE,
        achieved_rps: r.achieved_rps,
        requests: r.requests,
        ok_2xx: r.ok_2xx,
        non_2xx: r.non_2xx,
        socket_errors: r.socket_errors,
        p50_ms: r.p50_ms,
        p99_ms: r.p99_ms,
        max_ms: r.max_ms,
        cutovers: cutoverMs.length,
        cutover_wall_ms_median: median(cutoverMs),
        cutover_wall_ms_max: Math.max(...cutoverMs),
        inflight_5s_requests: SLOW,
        inflight_5s_completed_ok: slowOk,
        failed_requests: r.failed_requests + (SLOW - slowOk),
        ...django,
    });
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
